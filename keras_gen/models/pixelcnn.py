"""PixelCNN: an autoregressive image model with masked convolutions (van den Oord et al., 2016).

    log p(x) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c})

Pixels are ordered row by row, sub-pixels R, G, B within a pixel; each factor is a 256-way
categorical (`tfp.distributions.Categorical`) over the sub-pixel's integer value. Training
minimises the exact negative log-likelihood in one parallel pass (the masks hide the future);
sampling runs the network once per sub-pixel in raster order.

Network (input uint8 `[B, H, W, C]` -> logits float32 `[B, H, W, C, 256]`):
  MaskedConv2D type A (7x7) -> num_layers x residual [ReLU -> MaskedConv2D type B (3x3)]
  -> ReLU -> 1x1 type B (hidden) -> ReLU -> 1x1 type B (C*256 logits).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.layers import MaskedConv2D
from keras_gen.seeds import check_seed
from keras_gen.models.base import (
    DEFAULT_JIT_COMPILE,
    SAMPLE_SIGNATURE,
    Endpoint,
    GenerativeModel,
    stateless_seed,
)


def build_network(image_shape, filters, num_layers, kernel_size, first_kernel_size, dtype):
    _, w, c = image_shape
    levels = likelihoods.NUM_LEVELS
    # Any number of rows: sampling runs the network on the few rows a pixel can see.
    inputs = keras.Input((None, w, c))
    x = MaskedConv2D(filters, first_kernel_size, "A", c, dtype=dtype, name="conv_a")(inputs)
    for i in range(num_layers):
        y = keras.layers.ReLU(dtype=dtype)(x)
        y = MaskedConv2D(filters, kernel_size, "B", c, dtype=dtype, name=f"conv_b{i}")(y)
        x = keras.layers.Add(dtype=dtype)([x, y])
    x = keras.layers.ReLU(dtype=dtype)(x)
    x = MaskedConv2D(filters, 1, "B", c, dtype=dtype, name="head")(x)
    x = keras.layers.ReLU(dtype=dtype)(x)
    # Logits in float32: softmax over 256 values loses precision in bf16.
    x = MaskedConv2D(c * levels, 1, "B", c, dtype="float32", name="logits")(x)
    outputs = keras.layers.Reshape((-1, w, c, levels), dtype="float32")(x)
    return keras.Model(inputs, outputs, name="pixelcnn_network")


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelCNN(GenerativeModel):
    """PixelCNN over uint8 images.

    Args:
      image_shape: `(H, W, C)`.
      filters: feature maps per layer (a multiple of C).
      num_layers: residual masked 3x3 layers after the first 7x7 layer.
      kernel_size, first_kernel_size: odd kernel sizes of the type-B and type-A layers.
      precision: "float32" or "mixed_bfloat16".

    `model(images)` returns logits `[B, H, W, C, 256]`; `log_prob(images)` nats per image `[B]`;
    `pixel_log_prob(images)` nats per sub-pixel `[B, H, W, C]`.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        filters=64,
        num_layers=5,
        kernel_size=3,
        first_kernel_size=7,
        precision="float32",
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        if kernel_size % 2 == 0 or first_kernel_size % 2 == 0:
            raise KerasGenError("PixelCNN kernel sizes must be odd")
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        self.network = build_network(
            self.image_shape, self.filters, self.num_layers, self.kernel_size, self.first_kernel_size, precision
        )
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.num_dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        # How many rows above a pixel can reach its logits: the masks never look down, and
        # each k x k layer looks k // 2 rows up (1x1 layers none).
        self.rows_seen_above = self.first_kernel_size // 2 + self.num_layers * (self.kernel_size // 2)
        self._sample_fn = None
        self.built = True

    @property
    def metrics(self):
        return [self.nll_tracker, self.bits_tracker]

    def compile(self, optimizer=None, jit_compile=DEFAULT_JIT_COMPILE, **kwargs):
        """Default optimizer Adam(1e-3); built here so a saved model restores its state."""
        optimizer = keras.optimizers.get(optimizer) if optimizer else keras.optimizers.Adam(1e-3)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.optimizer.build(self.trainable_variables)
        self._remember_compile(optimizer=self.optimizer, jit_compile=jit_compile, **kwargs)

    def call(self, images, training=False):
        """uint8 (or integer-valued) images `[B, H, W, C]` -> logits float32 `[B, H, W, C, 256]`."""
        return self.network(self.images_to_float(images), training=training)

    def _pixel_log_prob(self, images, training=False):
        return likelihoods.categorical_pixel_log_prob(self(images, training=training), images)

    def pixel_log_prob(self, images):
        """log p(x_{i,c} | x_{<(i,c)}) in nats, float32 `[B, H, W, C]`, for uint8 `[B, H, W, C]`."""
        return self._pixel_log_prob(self.check_images(images))

    def log_prob(self, images):
        """log p(x) in nats per image, float32 `[B]`, for uint8 images `[B, H, W, C]`."""
        return self._image_log_prob(self.check_images(images))

    def _image_log_prob(self, images, training=False):
        return tf.reduce_sum(self._pixel_log_prob(images, training=training), axis=[1, 2, 3])

    def _step_metrics(self, image_nll):
        # Per-image values, so a short last batch weighs by its images, not as a whole batch.
        self.nll_tracker.update_state(image_nll)
        self.bits_tracker.update_state(likelihoods.bits_per_dim(-image_nll, self.num_dims))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            image_nll = -self._image_log_prob(images, training=True)
            loss = tf.reduce_mean(image_nll)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._step_metrics(image_nll)

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self._step_metrics(-self._image_log_prob(images))

    def _sample_graph(self, n, seed):
        """Raster-order ancestral sampling; sub-pixel k draws with stateless seed (seed, k).

        The network runs once per sub-pixel, on rows `i - rows_seen_above .. i` only: the
        logits of row i depend on nothing else, so this is exact and about
        H / (rows_seen_above + 1) times cheaper than running on the whole image.
        """
        h, w, c = self.image_shape
        n = tf.cast(n, tf.int32)
        images = tf.zeros([n, h, w, c], tf.int32)
        batch_index = tf.range(n)

        def step(k, images):
            i, j, ch = k // (w * c), (k // c) % w, k % c
            top = tf.maximum(i - self.rows_seen_above, 0)
            logits = self(images[:, top:i + 1], training=False)[:, i - top, j, ch, :]
            values = tf.random.stateless_categorical(logits, 1, seed=stateless_seed(seed, k), dtype=tf.int32)[:, 0]
            index = tf.stack([batch_index, tf.fill([n], i), tf.fill([n], j), tf.fill([n], ch)], axis=1)
            return k + 1, tf.tensor_scatter_nd_update(images, index, values)

        _, images = tf.while_loop(lambda k, _: k < h * w * c, step, [tf.constant(0), images])
        return tf.cast(images, tf.uint8)

    def sample_uint8(self, n, seed=0):
        """`n` images uint8 `[n, H, W, C]`; the same seed always gives the same images."""
        check_seed(seed)
        if self._sample_fn is None:
            self._sample_fn = tf.function(
                self._sample_graph,
                input_signature=SAMPLE_SIGNATURE,
                # Not XLA: XLA draws different random bits for the same stateless seed, and
                # the export (run by TF Serving without XLA) must give the same images.
                jit_compile=False,
            )
        return self._sample_fn(tf.constant(n, tf.int32), tf.constant(seed, tf.int32))

    def sample(self, n, seed=0):
        return tf.cast(self.sample_uint8(n, seed), tf.float32) / 255.0

    def serving_endpoints(self):
        h, w, c = self.image_shape

        def log_prob(images):
            lp = self._image_log_prob(images)
            return {"log_prob": lp, "bits_per_dim": likelihoods.bits_per_dim(lp, self.num_dims)}


        return [
            Endpoint(
                "log_prob",
                log_prob,
                [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")],
                f"images uint8 [batch, {h}, {w}, {c}] -> log_prob float32 [batch] (nats per image), "
                "bits_per_dim float32 [batch]",
            ),
            self.sample_endpoint(
                self._sample_graph, "raster order, sub-pixel k drawn with stateless seed (seed, k)"
            ),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
        )
        return config
