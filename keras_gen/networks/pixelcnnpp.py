"""PixelCNN++ network (Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving the
PixelCNN with discretized logistic mixture likelihood and other modifications", Fig. 2).

Two streams replace PixelCNN's masks by shifts; both are causal by construction:

- the **down** stream u: u(i, j) depends on rows < i only. It starts from a 2x3 convolution
  of the rows at and above each row, shifted down one row; every later convolution
  (`down_shifted_conv`) reads rows at and above, never below.
- the **down-right** stream ul: ul(i, j) depends on pixels strictly before (i, j) in raster
  order. It starts from the row above (a 1x3 convolution shifted down one row) plus the
  pixel to the left (a 2x1 convolution shifted right one column); every later convolution
  (`down_right_shifted_conv`) reads rows at and above and columns at and to the left, and
  ul also reads u at the same pixel.

Neither stream ever sees pixel (i, j) itself: the sub-pixels of a pixel are coupled by the
head (`keras_gen.likelihoods`' discretised logistic mixture with linear RGB coupling).

The streams are built from gated ResNet blocks,

    c = conv(concat_elu(x)) [+ nin(concat_elu(a))];  c = dropout(concat_elu(c))
    x + conv_v(c) ⊙ σ(conv_g(c))                       [+ per-class biases inside]

(`a`: the other stream and/or a U-net skip; `nin` a 1x1 convolution; with classes, each block
adds a learned bias per class to both gate halves), in a U-net of three resolutions: a first
pass of `blocks` blocks per resolution, stride-2 shifted convolutions between them (28 → 14
→ 7 for mnist), then a second pass back up through shifted stride-2 transposed convolutions,
whose blocks read the first pass's outputs of the same resolution in reverse order (the skip
connections of Fig. 2). A stride-2 convolution keeps the invariants above for the block a
coarse pixel stands for: coarse u(i, j) reads fine rows < 2i, coarse ul(i, j) fine pixels
strictly before (2i, 2j); the transposed convolutions hand coarse (i, j) only to fine pixels
at or after (2i, 2j), and the down stream's only to fine rows 2i and 2i + 1.

Input: float `[B, rows, W', C + 1]` from `network_inputs` (images in [-1, 1], a channel of
ones marking the image, zero-padded below and right to multiples of `STRIDE_MULTIPLE`: the
zeros of the padding and of every convolution's border then read alike, as "outside");
and int labels `[B]` when conditional. Output: float32 `[B, rows, W', P]` head parameters.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen.layers import ConcatELU, GlobalBatchDropout

NUM_RESOLUTIONS = 3
STRIDE_MULTIPLE = 2 ** (NUM_RESOLUTIONS - 1)  # rows and columns must divide by this: 4


def padded_size(size: int) -> int:
    """`size` rounded up to a multiple of `STRIDE_MULTIPLE`."""
    return -(-size // STRIDE_MULTIPLE) * STRIDE_MULTIPLE


def network_inputs(images, width: int):
    """Float images `[B, rows, width, C]` in [-1, 1] -> the network's input `[B, rows', W', C + 1]`.

    A channel of ones marks the image; rows and columns are zero-padded (below and to the
    right) up to multiples of `STRIDE_MULTIPLE`. Padding below a row, or to the right of a row
    (constants, before the next row in raster order), cannot change any output at a real
    pixel that comes before it, so outputs for the real pixels only depend on real pixels before them.
    """
    x = tf.concat([images, tf.ones_like(images[..., :1])], axis=-1)
    rows = tf.shape(x)[1]
    extra_rows = (STRIDE_MULTIPLE - rows % STRIDE_MULTIPLE) % STRIDE_MULTIPLE
    x = tf.pad(x, [[0, 0], [0, extra_rows], [0, padded_size(width) - width], [0, 0]])
    return tf.ensure_shape(x, [None, None, padded_size(width), images.shape[-1] + 1])


# -- shifted convolutions ------------------------------------------------------------------------

def down_shifted_conv(x, filters, dtype, name, kernel_size=(2, 3), strides=1, kernel_initializer="glorot_uniform"):
    """Output (i, j) reads rows i − kh + 1 .. i and columns j − kw//2 .. j + kw//2: nothing below."""
    kh, kw = kernel_size
    x = keras.layers.ZeroPadding2D(((kh - 1, 0), (kw // 2, kw // 2)), dtype=dtype, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", dtype=dtype, name=name,
                               kernel_initializer=kernel_initializer)(x)


def down_right_shifted_conv(x, filters, dtype, name, kernel_size=(2, 2), strides=1,
                            kernel_initializer="glorot_uniform"):
    """Output (i, j) reads rows i − kh + 1 .. i and columns j − kw + 1 .. j: nothing below or right."""
    kh, kw = kernel_size
    x = keras.layers.ZeroPadding2D(((kh - 1, 0), (kw - 1, 0)), dtype=dtype, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", dtype=dtype, name=name,
                               kernel_initializer=kernel_initializer)(x)


def down_shifted_upsample(x, filters, dtype, name):
    """Stride-2 2x3 transposed convolution: coarse (i, j) -> fine rows 2i, 2i + 1, columns
    2j − 1 .. 2j + 1 (the valid output is 2w + 1 wide; the first column is cropped)."""
    x = keras.layers.Conv2DTranspose(filters, (2, 3), strides=2, padding="valid", dtype=dtype, name=name)(x)
    return keras.layers.Cropping2D(((0, 0), (1, 0)), dtype=dtype, name=f"{name}_crop")(x)


def down_right_shifted_upsample(x, filters, dtype, name):
    """Stride-2 2x2 transposed convolution: coarse (i, j) -> fine rows 2i, 2i + 1, columns 2j, 2j + 1."""
    return keras.layers.Conv2DTranspose(filters, (2, 2), strides=2, padding="valid", dtype=dtype, name=name)(x)


def shift_down(x, dtype, name):
    """Row i takes row i − 1 (row 0 zeros)."""
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 0)), dtype=dtype, name=f"{name}_pad")(x)
    return keras.layers.Cropping2D(((0, 1), (0, 0)), dtype=dtype, name=name)(x)


def shift_right(x, dtype, name):
    """Column j takes column j − 1 (column 0 zeros)."""
    x = keras.layers.ZeroPadding2D(((0, 0), (1, 0)), dtype=dtype, name=f"{name}_pad")(x)
    return keras.layers.Cropping2D(((0, 0), (0, 1)), dtype=dtype, name=name)(x)


# -- the gated ResNet block ----------------------------------------------------------------------

def gated_resnet(x, skip, conv, filters, dropout, labels, num_classes, dtype, name):
    """x + conv_v(c) ⊙ σ(conv_g(c)), c = dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip)))).

    `conv` is the stream's shifted convolution, so the block is as causal as its stream; the
    skip is read at the same pixel only (1x1), so it must be at least as causal.
    """
    c = conv(ConcatELU(dtype=dtype, name=f"{name}_in_elu")(x), filters, dtype, f"{name}_conv")
    if skip is not None:
        link = ConcatELU(dtype=dtype, name=f"{name}_skip_elu")(skip)
        c = keras.layers.Add(dtype=dtype, name=f"{name}_add_skip")(
            [c, keras.layers.Conv2D(filters, 1, dtype=dtype, name=f"{name}_skip_nin")(link)])
    c = ConcatELU(dtype=dtype, name=f"{name}_mid_elu")(c)
    if dropout:
        # Masks drawn for the global batch: they do not repeat across tf.distribute replicas.
        c = GlobalBatchDropout(dropout, dtype=dtype, name=f"{name}_dropout")(c)
    # The residual branch starts at about a tenth of the input's scale (the paper's init_scale
    # 0.1), so that a deep stack of blocks starts near the identity.
    small = keras.initializers.VarianceScaling(scale=0.01, mode="fan_in")
    value = conv(c, filters, dtype, f"{name}_value", kernel_initializer=small)
    gate = conv(c, filters, dtype, f"{name}_gate", kernel_initializer=small)
    if labels is not None:  # the conditional variant: a learned bias per class on each half
        value = keras.layers.Add(dtype=dtype, name=f"{name}_class_value")(
            [value, _class_bias(labels, num_classes, filters, dtype, f"{name}_class_value_bias")])
        gate = keras.layers.Add(dtype=dtype, name=f"{name}_class_gate")(
            [gate, _class_bias(labels, num_classes, filters, dtype, f"{name}_class_gate_bias")])
    gated = keras.layers.Multiply(dtype=dtype, name=f"{name}_gated")(
        [value, keras.layers.Activation("sigmoid", dtype=dtype, name=f"{name}_sigmoid")(gate)])
    return keras.layers.Add(dtype=dtype, name=name)([x, gated])


def _class_bias(labels, num_classes, filters, dtype, name):
    """A learned `[B, 1, 1, filters]` bias per class."""
    bias = keras.layers.Embedding(num_classes, filters, embeddings_initializer="zeros", dtype=dtype,
                                  name=f"{name}_embed")(labels)
    return keras.layers.Reshape((1, 1, filters), dtype=dtype, name=name)(bias)


def _down_conv(x, filters, dtype, name, **kwargs):
    return down_shifted_conv(x, filters, dtype, name, (2, 3), **kwargs)


def _down_right_conv(x, filters, dtype, name, **kwargs):
    return down_right_shifted_conv(x, filters, dtype, name, (2, 2), **kwargs)


# -- the network -----------------------------------------------------------------------------

def network(width, channels, filters, blocks, outputs_per_pixel, dropout, dtype, num_classes=None,
            name="pixelcnnpp_network"):
    """The two-stream U-net of `blocks` gated ResNet blocks per resolution and pass.

    Args:
      width: the images' width (the network reads `padded_size(width)` columns).
      channels: the images' channels C (the input has C + 1, see `network_inputs`).
      filters: feature maps of every block, both streams.
      blocks: gated ResNet blocks per resolution in the first pass, 0 or more (the second pass
        has one more at the two finer resolutions, to read the stride-2 convolutions' outputs too).
      outputs_per_pixel: the head's parameters P per pixel (computed in float32).
      dropout: the rate inside every block (training only).
      dtype: the layers' dtype policy ("float32" or "mixed_bfloat16").
      num_classes: with classes, a second input of int labels `[B]`.
    """
    inputs = keras.Input((None, padded_size(width), channels + 1), name="images")
    model_inputs = [inputs]
    labels = None
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        model_inputs.append(labels)

    def block(x, skip, conv, tag):
        return gated_resnet(x, skip, conv, filters, dropout, labels, num_classes, dtype, tag)

    # The first features: u sees the rows above, ul the rows above and the pixel to the left.
    u = shift_down(down_shifted_conv(inputs, filters, dtype, "u_first", (2, 3)), dtype, "u_first_shift")
    above = shift_down(down_shifted_conv(inputs, filters, dtype, "ul_first_above", (1, 3)), dtype,
                       "ul_first_above_shift")
    left = shift_right(down_right_shifted_conv(inputs, filters, dtype, "ul_first_left", (2, 1)), dtype,
                       "ul_first_left_shift")
    ul = keras.layers.Add(dtype=dtype, name="ul_first")([above, left])

    # First pass, fine to coarse; every output is kept for the second pass.
    u_skips, ul_skips = [u], [ul]
    for level in range(NUM_RESOLUTIONS):
        for b in range(blocks):
            u = block(u, None, _down_conv, f"first_r{level}_b{b}_u")
            ul = block(ul, u, _down_right_conv, f"first_r{level}_b{b}_ul")
            u_skips.append(u)
            ul_skips.append(ul)
        if level < NUM_RESOLUTIONS - 1:
            u = down_shifted_conv(u, filters, dtype, f"down{level}_u", (2, 3), strides=2)
            ul = down_right_shifted_conv(ul, filters, dtype, f"down{level}_ul", (2, 2), strides=2)
            u_skips.append(u)
            ul_skips.append(ul)

    # Second pass, coarse to fine, reading the first pass's outputs in reverse (U-net skips).
    u, ul = u_skips.pop(), ul_skips.pop()
    for level in reversed(range(NUM_RESOLUTIONS)):
        if level < NUM_RESOLUTIONS - 1:
            u = down_shifted_upsample(u, filters, dtype, f"up{level}_u")
            ul = down_right_shifted_upsample(ul, filters, dtype, f"up{level}_ul")
        for b in range(blocks if level == NUM_RESOLUTIONS - 1 else blocks + 1):
            u = block(u, u_skips.pop(), _down_conv, f"second_r{level}_b{b}_u")
            both = keras.layers.Concatenate(dtype=dtype, name=f"second_r{level}_b{b}_ul_skip")([u, ul_skips.pop()])
            ul = block(ul, both, _down_right_conv, f"second_r{level}_b{b}_ul")
    assert not u_skips and not ul_skips  # every first-pass output read exactly once

    x = keras.layers.ELU(dtype=dtype, name="out_elu")(ul)
    # Distribution parameters in float32: the mixture's log-probabilities need the precision.
    x = keras.layers.Conv2D(outputs_per_pixel, 1, dtype="float32", name="outputs")(x)
    return keras.Model(model_inputs, x, name=name)
