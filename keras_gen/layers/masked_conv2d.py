"""MaskedConv2D: the causal convolution of PixelCNN (van den Oord et al., 2016)."""
import keras
import numpy as np
from keras import ops


def causal_mask(kernel_size, in_channels, out_channels, mask_type, color_channels):
    """The 0/1 mask `[kh, kw, in, out]` that makes a convolution causal in raster order.

    Pixels are ordered row by row, left to right, and the `color_channels` sub-pixels of a
    pixel in channel order (R before G before B). Feature maps are split into
    `color_channels` contiguous groups; group g of a layer may only see sub-pixels < g of the
    current pixel (type "A", the first layer, which must not see its own input) or <= g
    (type "B", every later layer). All earlier pixels are visible; later ones never are.
    """
    kh, kw = kernel_size
    cy, cx = kh // 2, kw // 2
    mask = np.zeros((kh, kw, in_channels, out_channels), dtype="float32")
    mask[:cy, :, :, :] = 1.0  # rows above
    mask[cy, :cx, :, :] = 1.0  # left of the centre in the centre row
    in_group = np.arange(in_channels) * color_channels // in_channels
    out_group = np.arange(out_channels) * color_channels // out_channels
    if mask_type == "A":
        centre = in_group[:, None] < out_group[None, :]
    else:
        centre = in_group[:, None] <= out_group[None, :]
    mask[cy, cx, :, :] = centre.astype("float32")
    return mask


@keras.saving.register_keras_serializable(package="keras_gen")
class MaskedConv2D(keras.layers.Conv2D):
    """A 2-D convolution whose kernel is multiplied by a causal mask in every forward pass.

    The mask is applied in `call` (not once at initialisation), so the layer is causal from
    its first step and stays causal whatever the optimizer does to the raw kernel.

    Args:
      mask_type: "A" (excludes the current sub-pixel: the first layer) or "B" (includes it).
      color_channels: sub-pixels per pixel of the modelled image (1 grey, 3 RGB); the input
        and output feature counts must be multiples of it.
      Other arguments as `keras.layers.Conv2D`; padding is always "same", strides 1.

    Shapes: `[B, H, W, in]` -> `[B, H, W, filters]`.
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, **kwargs):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        kwargs["padding"] = "same"
        kwargs.pop("strides", None)
        super().__init__(filters, kernel_size, **kwargs)
        if any(k % 2 == 0 for k in self.kernel_size):
            # "same" padding centres an even kernel at (k - 1) // 2, the mask at k // 2: the
            # layer would see its own pixel and the next ones.
            raise ValueError(f"kernel_size must be odd in both directions (the mask needs a centre), "
                             f"got {self.kernel_size}")
        if filters % color_channels:
            raise ValueError(f"filters={filters} is not a multiple of color_channels={color_channels}")
        self.mask_type = mask_type
        self.color_channels = color_channels

    def build(self, input_shape):
        super().build(input_shape)
        in_channels = input_shape[-1]
        if in_channels % self.color_channels:
            raise ValueError(
                f"input channels {in_channels} not a multiple of color_channels={self.color_channels}"
            )
        # Kept as numpy: a constant in every traced graph, never a variable to save or train.
        self.mask = causal_mask(
            self.kernel_size, in_channels, self.filters, self.mask_type, self.color_channels
        )

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.convert_to_tensor(self.mask, dtype=kernel.dtype))

    def masked_kernel(self):
        """The kernel `call` convolves with, `[kh, kw, in, filters]`: the mask times the kernel,
        in the compute dtype (cached sampling contracts it one pixel at a time)."""
        kernel = ops.cast(self.kernel, self.compute_dtype)
        return kernel * ops.convert_to_tensor(self.mask, dtype=kernel.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mask_type=self.mask_type, color_channels=self.color_channels)
        config.pop("padding", None)
        config.pop("strides", None)
        return config
