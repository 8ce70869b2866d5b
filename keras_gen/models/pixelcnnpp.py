"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving the PixelCNN
with discretized logistic mixture likelihood and other modifications"), optionally
class-conditional.

    log p(x | y) = sum_{i=1}^{H*W} log p(x_i | x_{<i}, y)

One factor per **pixel**: a mixture of K discretised logistics over its C sub-pixels,

    p(x_i | x_{<i}) = sum_k π_k prod_c Logistic_d(x_{i,c}; μ_{k,c}(x_{i,<c}), s_{k,c}),
    μ_{k,G} = m_{k,G} + α_k x_{i,R},   μ_{k,B} = m_{k,B} + β_k x_{i,R} + γ_k x_{i,G},

where Logistic_d puts on level v the logistic's mass over (v − ½, v + ½] (the edge levels 0
and 255 take the tails) and π, m, log s, α, β, γ — K(1 + 2C + C(C−1)/2) numbers per pixel,
e.g. 10K for RGB — come from a network that sees every pixel before x_i and no part of x_i
(`keras_gen.networks.pixelcnnpp`: down and down-right shifted streams of gated ResNet blocks
with concat_elu and dropout, in a U-net of three resolutions). The head alone couples the
sub-pixels of a pixel, so one network pass gives the whole pixel's distribution
(`keras_gen.likelihoods.logistic_mixture_*`); `pixel_log_prob` splits it by the chain rule
into log p(x_{i,c} | x_{<i}, x_{i,<c}) per sub-pixel. With `num_classes`, each block adds a
learned bias per class (the paper's conditional model), and `classify` is Bayes' rule.

Shapes: `model(images uint8 [B, rows, W, C])` (rows ≤ H; conditional: `[images, labels]`)
-> mixture parameters float32 `[B, rows, W, K(1 + 2C + C(C−1)/2)]`.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import check_size
from keras_gen.networks import pixelcnnpp as networks


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

    The defaults are sized for 28x28 grey digits on 2 CPU cores: 64 filters, 1 block per
    resolution (10 blocks per stream in all), K = 5 (grey pixels need no RGB coupling, and
    digits are mostly at the two edge levels), and dropout 0.1 (for the 4,000 images of
    mnist5k in 10 epochs the model underfits rather than overfits; the paper's 0.5 is for
    a 160-filter model trained for days on CIFAR-10).
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=None,
        filters=64,
        blocks_per_resolution=1,
        num_mixtures=5,
        dropout=0.1,
        precision="auto",
        **kwargs,
    ):
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
        # the sampler always runs from row 0 (on rows 0..i, padded below: exact, since no
        # output depends on a row below its own).
        self.rows_seen_above = h
        self.built = True

    def call(self, inputs, training=False):
        """uint8 images `[B, rows, W, C]`, rows ≤ H (conditional: `[images, labels int [B]]`) ->
        mixture parameters float32 `[B, rows, W, P]`."""
        images, labels = self.split_inputs(inputs)
        h, w, c = self.image_shape
        rows, width, channels = images.shape[1:4]
        if (rows is not None and rows > h) or width != w or channels != c:
            raise KerasGenError(f"{type(self).__name__} reads images [batch, rows <= {h}, {w}, {c}], "
                                f"got {list(images.shape)}")
        x = networks.network_inputs(self.images_to_float(images), w)
        params = self.network([x, labels] if self.conditional else x, training=training)
        return params[:, :tf.shape(images)[1], :w]

    # -- the head: a discretised logistic mixture per pixel ----------------------------------------
    def pixel_log_prob_from(self, outputs, images):
        return likelihoods.logistic_mixture_pixel_log_prob(outputs, images, self.num_mixtures)

    def subpixel_logits(self, pixel_outputs, pixel_values, channel):
        """log p(x_c = v | x_{<c}) for the 256 values v, float32 `[B, 256]` (normalised); the
        mixture's weights are the posterior given the pixel's sub-pixels already drawn."""
        c = self.image_shape[2]

        def given(channel_index):
            return likelihoods.logistic_mixture_subpixel_log_probs(
                pixel_outputs, pixel_values, channel_index, self.num_mixtures, c)

        if isinstance(channel, int):
            return given(channel)
        if c == 1:
            return given(0)
        # The sampler's channel is a tensor; the head slices by a Python int.
        return tf.switch_case(tf.cast(channel, tf.int32), [lambda k=k: given(k) for k in range(c)])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, blocks_per_resolution=self.blocks_per_resolution,
                      num_mixtures=self.num_mixtures, dropout=self.dropout)
        return config
