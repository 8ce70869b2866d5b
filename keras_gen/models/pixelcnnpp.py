"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving the PixelCNN
with discretized logistic mixture likelihood and other modifications"), optionally
class-conditional.

    log p(x | y) = sum_{i=1}^{H*W} log p(x_i | x_{<i}, y)

One factor per **pixel**: a mixture of K discretised logistics over its C sub-pixels,

    p(x_i | x_{<i}) = sum_k π_k prod_c Logistic_d(x_{i,c}; μ_{k,c}(x_{i,<c}), s_{k,c}),
    μ_{k,G} = m_{k,G} + α_k x_{i,R},   μ_{k,B} = m_{k,B} + β_k x_{i,R} + γ_k x_{i,G},

where Logistic_d puts on level v the logistic's mass over (v − ½, v + ½] (the edge levels 0
and 255 take the tails) and π, m, log s, α, β, γ — K(1 + 2C + C(C−1)/2) numbers per pixel,
e.g. 10K for RGB — come from a network that reads pixels before x_i only, and no part of x_i
(`keras_gen.networks.pixelcnnpp`: down and down-right shifted streams of gated ResNet blocks
with concat_elu and dropout, in a U-net of three resolutions; at the defaults it reaches 97%
of the pixels before a pixel of a 28x28 image, all of those four or more rows above). The head alone couples the
sub-pixels of a pixel, so one network pass gives the whole pixel's distribution
(`keras_gen.likelihoods.logistic_mixture_*`); `pixel_log_prob` splits it by the chain rule
into log p(x_{i,c} | x_{<i}, x_{i,<c}) per sub-pixel. With `num_classes`, each block adds a
learned bias per class (the paper's conditional model), and `classify` is Bayes' rule.

Training minimises −log p(x | y) with Adam(1e-3), its learning rate multiplied by a constant
factor after every step, as the paper's (`DecayingAdam`).

Sampling and completion run the network a pixel at a time from cached activations
(`networks.CachedSampler`: every activation of both streams at each of the three resolutions
computed once, as soon as what it reads is final) when the height and width are multiples of
4, and once per pixel on the rows above otherwise (`cached=False` gives that naive sampler for
any size; in float32 both draw the same images).

Shapes: `model(images uint8 [B, rows, W, C])` (rows ≤ H; conditional: `[images, labels]`)
-> mixture parameters float32 `[B, rows, W, K(1 + 2C + C(C−1)/2)]`.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import check_size, stateless_seed
from keras_gen.networks import pixelcnnpp as networks

# The default optimizer's learning-rate factor per step. The paper's 0.999995 shrinks the rate
# about 150-fold over its runs of about 10^6 steps; the zoo's CPU runs take hundreds (62 per
# epoch of mnist5k at batch 64), and at a constant rate the narrow logistics the head learns
# keep the loss jumping: 0.995 halves the rate every 139 steps (1e-3 -> 4.5e-5 over 10 epochs
# of mnist5k). For longer runs, give a factor nearer 1 (`compile(optimizer=DecayingAdam(...))`).
LEARNING_RATE_DECAY = 0.995


@keras.saving.register_keras_serializable(package="keras_gen")
class DecayingAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied by `decay` after every step: lr_t = lr_0 · decay^t.

    Unlike a `LearningRateSchedule`, the rate stays settable: setting it (as
    `keras.callbacks.ReduceLROnPlateau` does) sets the current rate, which then keeps
    decaying from the new value. `learning_rate` reads the current (decayed) rate.
    """

    def __init__(self, learning_rate=1e-3, decay=LEARNING_RATE_DECAY, **kwargs):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
            raise KerasGenError(f"decay must be a factor in (0, 1], got {decay!r}")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.decay = float(decay)

    def _decayed_by(self, dtype="float32"):
        return keras.ops.power(keras.ops.cast(self.decay, dtype), keras.ops.cast(self.iterations, dtype))

    def _get_current_learning_rate(self):
        return super()._get_current_learning_rate() * self._decayed_by()

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if not callable(learning_rate) and hasattr(self, "decay"):  # a number: the rate from now on
            learning_rate = learning_rate / self._decayed_by()
        keras.optimizers.Adam.learning_rate.fset(self, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay)
        return config


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelCNNPlusPlus(AutoregressiveModel):
    """PixelCNN++ over uint8 images, unconditional or class-conditional.

    Args:
      image_shape: `(H, W, C)`, any size (padded inside to multiples of 4 for the strides).
      num_classes: classes of the conditional model; None for an unconditional one.
      filters: feature maps of every gated ResNet block (the paper: 160 on CIFAR-10).
      blocks_per_resolution: gated ResNet blocks per resolution in the first pass (the paper: 5;
        0 leaves one block per stream at each of the two finer resolutions of the second pass).
      num_mixtures: logistics per pixel, K (the paper: 10 on CIFAR-10).
      dropout: rate inside every block during training (the paper: 0.5 on CIFAR-10).
      precision: "auto", "float32" or "mixed_bfloat16".

    The defaults are sized for 10 epochs of mnist5k (4,000 28x28 grey digits) on 2 CPU cores
    (67 s of training an epoch at load 1.5, 130 s at load 5; 1.23 test bits/dim): 48 filters
    and 1 block per resolution (8 blocks per stream in all; 32 filters with K = 5 trained
    about 1.4x faster, to 1.25), the paper's K = 10, and no dropout: after 10 epochs train and
    test bits/dim differ by 0.01, so the model underfits and dropout would only slow it (the
    paper's 0.5 is for a 160-filter model trained for days on CIFAR-10).
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=None,
        filters=48,
        blocks_per_resolution=1,
        num_mixtures=10,
        dropout=0.0,
        precision="auto",
        **kwargs,
    ):
        if isinstance(kwargs.get("name"), str):
            # Training names a model as the registry does, and "pixelcnn++" is no valid
            # TensorFlow name scope: the pluses are spelled "p".
            kwargs["name"] = kwargs["name"].replace("+", "p")
        super().__init__(image_shape=image_shape, num_classes=num_classes, precision=precision, **kwargs)
        self.filters = check_size("filters", filters)
        self.blocks_per_resolution = check_size("blocks_per_resolution", blocks_per_resolution, minimum=0)
        self.num_mixtures = check_size("num_mixtures", num_mixtures)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise KerasGenError(f"dropout must be a rate in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        h, w, c = self.image_shape
        self.network = networks.network(
            w, c, self.filters, self.blocks_per_resolution, likelihoods.logistic_mixture_size(c, self.num_mixtures),
            self.dropout, self.precision, num_classes=self.num_classes,
        )
        # The stride-2 levels make a cropped window's result depend on where it starts, so
        # the naive sampler always runs from row 0 (on rows 0..i, padded below: exact, since
        # no output depends on a row below its own).
        self.rows_seen_above = h
        self.built = True

    def call(self, inputs, training=False):
        """uint8 images `[B, rows, W, C]`, rows ≤ H (conditional: `[images, labels int [B]]`) ->
        mixture parameters float32 `[B, rows, W, P]`."""
        images, labels = self.split_inputs(inputs)  # checked: [batch, rows <= H, W, C]
        w = self.image_shape[1]
        x = networks.network_inputs(self.images_to_float(images), w)
        params = self.network([x, labels] if self.conditional else x, training=training)
        return params[:, :tf.shape(images)[1], :w]

    def cached_sampler(self, labels=None):
        """The network a pixel at a time from cached activations (fast sampling,
        `networks.CachedSampler`), for heights and widths that are multiples of 4; None (the
        naive sampler) for other sizes."""
        h, w, _ = self.image_shape
        if h % networks.STRIDE_MULTIPLE or w % networks.STRIDE_MULTIPLE:
            return None
        return networks.CachedSampler(self.network, self.image_shape, self.blocks_per_resolution, labels)

    def compile(self, optimizer=None, **keras_args):
        """Default optimizer `DecayingAdam(1e-3, decay=LEARNING_RATE_DECAY)`: the paper's Adam
        with its per-step decay, at a rate for runs of hundreds of steps."""
        if optimizer is None:
            optimizer = DecayingAdam(1e-3, decay=LEARNING_RATE_DECAY)
        super().compile(optimizer, **keras_args)

    # -- the head: a discretised logistic mixture per pixel ----------------------------------------
    def pixel_log_prob_from(self, outputs, images):
        return likelihoods.logistic_mixture_pixel_log_prob(outputs, images, self.num_mixtures)

    def subpixel_logits(self, pixel_outputs, pixel_values, channel):
        """log p(x_c = v | x_{<c}) for the 256 values v, float32 `[B, 256]` (normalised); the
        mixture's weights are the posterior given the pixel's sub-pixels already drawn."""
        return self._by_channel(channel, lambda ch: likelihoods.logistic_mixture_subpixel_log_probs(
            pixel_outputs, pixel_values, ch, self.num_mixtures, self.image_shape[2]))

    def draw_subpixel(self, pixel_outputs, pixel_values, channel, k, seed, temperature):
        """At temperature 1, PixelCNN++'s own draw: a component, then a logistic binned
        (`likelihoods.logistic_mixture_subpixel_sample`), a few operations on K numbers instead
        of the 256-value table, which took most of the sampling time. Other temperatures
        reshape the 256 probabilities, p^(1/T), so they draw from the table."""
        def direct():
            return self._by_channel(channel, lambda ch: likelihoods.logistic_mixture_subpixel_sample(
                pixel_outputs, pixel_values, ch, self.num_mixtures, self.image_shape[2], stateless_seed(seed, k)))

        def tempered():
            return super(PixelCNNPlusPlus, self).draw_subpixel(pixel_outputs, pixel_values, channel, k, seed,
                                                               temperature)

        if not tf.is_tensor(temperature):  # known when tracing (`sample_uint8`, `complete`)
            return direct() if temperature == 1.0 else tempered()
        return tf.cond(tf.equal(temperature, 1.0), direct, tempered)  # an input (the serving signatures)

    def _by_channel(self, channel, head):
        """`head(c)` for sub-pixel `channel`: the head slices by a Python int, and the naive
        sampler's channel is a tensor."""
        if isinstance(channel, int):
            return head(channel)
        if self.image_shape[2] == 1:
            return head(0)
        return tf.switch_case(tf.cast(channel, tf.int32), [lambda c=c: head(c) for c in range(self.image_shape[2])])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, blocks_per_resolution=self.blocks_per_resolution,
                      num_mixtures=self.num_mixtures, dropout=self.dropout)
        return config
