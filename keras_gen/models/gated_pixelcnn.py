"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"), optionally class-conditional.

    log p(x | y) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c}, y)

The same exact likelihood as PixelCNN, from a network without PixelCNN's blind spot: a
vertical stack that sees every row above and a horizontal stack that sees the current row to
the left, both of gated units tanh(W_f * x + V_f y) ⊙ σ(W_g * x + V_g y) (see
`keras_gen.networks.gated_pixelcnn`). Each factor is a 256-way categorical. With
`num_classes`, the label y shifts every gate (a learned bias per class and layer):
`log_prob(images, labels)`, `sample(n, seed, labels=)`, and by Bayes' rule with a uniform
prior, `classify(images)` = argmax_y log p(x | y). Sampling evaluates the network a pixel at a
time from cached activations (`keras_gen.networks.cached`): V a row at a time, H a pixel at a
time.
"""
from __future__ import annotations

import keras

from keras_gen import likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import check_size
from keras_gen.networks import gated_pixelcnn as networks


@keras.saving.register_keras_serializable(package="keras_gen")
class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN over uint8 images, unconditional or class-conditional.

    Args:
      image_shape: `(H, W, C)`.
      num_classes: classes of the conditional model (labels 0..num_classes-1); None for an
        unconditional one.
      filters: feature maps per stack and layer (a multiple of C).
      num_layers: gated layers after the first.
      kernel_size, first_kernel_size: odd kernel widths (k: (k//2 + 1) x k vertical and
        1 x k horizontal convolutions). The defaults reach every earlier pixel of a 28x28
        image (`networks.gated_pixelcnn.vertical_reach`).
      precision: "auto", "float32" or "mixed_bfloat16".

    `model(images)` (or `model([images, labels])`) returns logits `[B, H, W, C, 256]`.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=None,
        filters=64,
        num_layers=12,
        kernel_size=5,
        first_kernel_size=7,
        precision="auto",
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, num_classes=num_classes, precision=precision, **kwargs)
        self.filters = check_size("filters", filters)
        self.num_layers = check_size("num_layers", num_layers, minimum=0)
        self.kernel_size = check_size("kernel_size", kernel_size)
        self.first_kernel_size = check_size("first_kernel_size", first_kernel_size)
        if self.kernel_size % 2 == 0 or self.first_kernel_size % 2 == 0:
            raise KerasGenError(f"kernel sizes must be odd, got kernel_size={kernel_size!r}, "
                                f"first_kernel_size={first_kernel_size!r}")
        if self.filters % self.image_shape[2]:
            raise KerasGenError(f"filters must be a multiple of the {self.image_shape[2]} colour channels, got {filters!r}")
        self.network = networks.network(
            self.image_shape, self.filters, self.num_layers, self.kernel_size, self.first_kernel_size,
            self.image_shape[2] * likelihoods.NUM_LEVELS, self.precision, num_classes=self.num_classes,
        )
        self.rows_seen_above = networks.vertical_reach(self.first_kernel_size, self.kernel_size, self.num_layers)
        self.built = True

    def call(self, inputs, training=False):
        """uint8 images `[B, H, W, C]` (conditional: `[images, labels int [B]]`) -> logits float32
        `[B, H, W, C, 256]`."""
        images, labels = self.split_inputs(inputs)
        x = self.images_to_float(images)
        return self.network([x, labels] if self.conditional else x, training=training)

    def cached_sampler(self, labels=None):
        """The network a pixel at a time from cached activations (fast sampling)."""
        return networks.CachedSampler(self.network, self.image_shape, self.num_layers,
                                      labels=labels if self.conditional else None)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_layers=self.num_layers, kernel_size=self.kernel_size,
                      first_kernel_size=self.first_kernel_size)
        return config
