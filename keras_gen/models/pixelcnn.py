"""PixelCNN: an autoregressive image model with masked convolutions (van den Oord et al., 2016).

    log p(x) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c})

Pixels are ordered row by row, sub-pixels R, G, B within a pixel; each factor is a 256-way
categorical (`tfp.distributions.Categorical`) over the sub-pixel's integer value. Training
minimises the exact negative log-likelihood in one parallel pass (the masks hide the future);
sampling draws the sub-pixels in raster order, evaluating the network a pixel at a time from
cached activations (Ramachandran et al. 2017; `keras_gen.networks.cached`).

Network (input uint8 `[B, H, W, C]` -> logits float32 `[B, H, W, C, 256]`):
  MaskedConv2D type A (7x7) -> num_layers x residual [ReLU -> MaskedConv2D type B (3x3)]
  -> ReLU -> 1x1 type B (hidden) -> ReLU -> 1x1 type B (C*256 logits).

With `head="bernoulli"` the model is over binarised images (the lecture's binarised MNIST):
every sub-pixel is 0 or 1 (given as uint8 0 / 255; any image is binarised at 128 first), the
network's last layer gives one log-odds l per sub-pixel (`[B, H, W, C, 1]`), and
p(x_{i,c} = 1 | x_{<(i,c)}) = σ(l): log p sums the Bernoulli log-probabilities, bits/dim
count binary dimensions, and samples are 0 / 255.
"""
from __future__ import annotations

import keras

from keras_gen import likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import check_size
from keras_gen.networks import pixelcnn as networks


# The heads a PixelCNN can have: outputs per sub-pixel.
HEADS = {"categorical": likelihoods.NUM_LEVELS, "bernoulli": 1}


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelCNN(AutoregressiveModel):
    """PixelCNN over uint8 images.

    Args:
      image_shape: `(H, W, C)`.
      filters: feature maps per layer (a multiple of C).
      num_layers: residual masked 3x3 layers after the first 7x7 layer.
      kernel_size, first_kernel_size: odd kernel sizes of the type-B and type-A layers.
      head: "categorical" (256 values per sub-pixel) or "bernoulli" (binarised images: 0 or
        255, images binarised at 128 before any likelihood or completion).
      precision: "auto" (mixed_bfloat16 on a CPU with native bfloat16, else float32), "float32" or
        "mixed_bfloat16".

    `model(images)` returns logits `[B, H, W, C, 256]` (Bernoulli: log-odds `[B, H, W, C, 1]`);
    `log_prob(images)` nats per image `[B]`;
    `pixel_log_prob(images)` nats per sub-pixel `[B, H, W, C]`.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        filters=64,
        num_layers=5,
        kernel_size=3,
        first_kernel_size=7,
        head="categorical",
        precision="auto",
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        if head not in HEADS:
            raise KerasGenError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        self.head = head
        self.filters = check_size("filters", filters)
        self.num_layers = check_size("num_layers", num_layers, minimum=0)
        self.kernel_size = check_size("kernel_size", kernel_size)
        self.first_kernel_size = check_size("first_kernel_size", first_kernel_size)
        if self.kernel_size % 2 == 0 or self.first_kernel_size % 2 == 0:
            raise KerasGenError(
                f"PixelCNN kernel sizes must be odd, got kernel_size={kernel_size!r}, first_kernel_size={first_kernel_size!r}"
            )
        if self.filters % self.image_shape[2]:
            raise KerasGenError(f"filters must be a multiple of the {self.image_shape[2]} colour channels, got {filters!r}")
        self.network = networks.network(
            self.image_shape, self.filters, self.num_layers, self.kernel_size, self.first_kernel_size, self.precision,
            outputs_per_subpixel=HEADS[self.head],
        )
        # How many rows above a pixel can reach its logits: the masks never look down, and
        # each k x k layer looks k // 2 rows up (1x1 layers none).
        self.rows_seen_above = self.first_kernel_size // 2 + self.num_layers * (self.kernel_size // 2)
        self.built = True

    def call(self, images, training=False):
        """uint8 (or integer-valued) images `[B, H, W, C]` -> logits float32 `[B, H, W, C, 256]`
        (Bernoulli: the log-odds `[B, H, W, C, 1]` of a 1, given the binarised images)."""
        return self.network(self.images_to_float(self.observed(self.call_images(images))), training=training)

    # -- the Bernoulli head (the categorical one is the base's) ------------------------------------
    @property
    def num_levels(self) -> int:
        return 2 if self.head == "bernoulli" else likelihoods.NUM_LEVELS

    def observed(self, images):
        return likelihoods.binarised(images) if self.head == "bernoulli" else images

    def pixel_log_prob_from(self, outputs, images):
        if self.head == "bernoulli":
            return likelihoods.bernoulli_pixel_log_prob(outputs[..., 0], images)
        return super().pixel_log_prob_from(outputs, images)

    def subpixel_logits(self, pixel_outputs, pixel_values, channel):
        if self.head == "bernoulli":  # 0 and 255 only
            return likelihoods.bernoulli_levels_log_prob(pixel_outputs[:, channel, 0])
        return super().subpixel_logits(pixel_outputs, pixel_values, channel)

    def cached_sampler(self, labels=None):
        """The network a pixel at a time from cached activations (fast sampling)."""
        return networks.CachedSampler(self.network, self.image_shape, self.num_layers)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size,
            head=self.head,
        )
        return config
