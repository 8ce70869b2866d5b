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

`CachedSampler` evaluates the same network a pixel at a time for fast sampling, every
activation once: u a row at a time (it reads rows above only), ul a position at a time, the
coarser resolutions at every second or fourth row and column.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen.layers import ConcatELU, GlobalBatchDropout
from keras_gen.layers.concat_elu import concat_elu
from keras_gen.networks import cached

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


# -- cached sampling -----------------------------------------------------------------------------

class _CornerConv:
    """A down-right shifted 2x2 convolution (`down_right_shifted_conv`, stride 1 or 2) at one
    position: output (a, b) reads its input X at (a−1, b−1), (a−1, b), (a, b−1) and (a, b),
    in X's own positions (stride 2: X's (2a', 2b') for the output's (a', b')). Layers that
    share the input are one product, their kernels side by side. The two taps in the row
    above are final when the row begins: `above_row` computes their terms for the whole row
    in one product, and `at` adds the two taps in the row itself."""

    def __init__(self, layers):
        layers = list(layers)
        self.dtype = layers[0].compute_dtype
        kernel = cached.accumulated(cached.concat_layers(layers, lambda layer: layer.kernel))  # [2, 2, in, out]
        self.above_kernel = tf.reshape(kernel[0], [-1, kernel.shape[-1]])  # rows: (a−1, b−1), (a−1, b)
        self.kernel = tf.reshape(kernel[1], [-1, kernel.shape[-1]])  # rows: (a, b−1), (a, b)
        self.bias = cached.concat_bias(layers)

    def above_row(self, grid):
        """The row-above taps' terms at every column b of a row, float32 `[W, B, out]`, from the
        input's finished row above, `grid` `[W + 1, B, in]` (entry b + 1 is column b; entry 0
        the padding's zero column)."""
        pairs = tf.concat([grid[:-1], grid[1:]], axis=-1)  # (b − 1, b) at column b
        width, batch = tf.shape(pairs)[0], tf.shape(pairs)[1]
        terms = tf.linalg.matmul(tf.reshape(pairs, [-1, pairs.shape[-1]]), self.above_kernel)
        return tf.reshape(terms, [width, batch, self.above_kernel.shape[-1]])

    def at(self, above, left, now):
        """The output at one position from its `above_row` terms `[B, out]` and its input at the
        position before it and at itself."""
        parts = [cached.accumulated(tf.cast(x, self.dtype)) for x in (left, now)]
        return cached.with_bias(above + tf.linalg.matmul(tf.concat(parts, axis=-1), self.kernel), self.bias,
                                self.dtype)


class _StridedRowConv:
    """`down_shifted_conv` with stride 2 (2x3, rows 2a−1 and 2a, columns 2b−1 .. 2b+1) for a whole
    coarse row from its input's two fine rows `[B, W, C]`."""

    def __init__(self, layer):
        self.dtype = layer.compute_dtype
        self.kernel = cached.accumulated(tf.cast(layer.kernel, self.dtype))
        self.bias = layer.bias if layer.use_bias else None

    def row(self, above, now):
        rows = tf.stack([cached.accumulated(tf.cast(x, self.dtype)) for x in (above, now)], axis=1)
        rows = tf.pad(rows, [[0, 0], [0, 0], [1, 1], [0, 0]])
        y = tf.nn.conv2d(rows, self.kernel, strides=[1, 1, 2, 1], padding="VALID")[:, 0]
        return cached.with_bias(y, self.bias, self.dtype)


class _Upsample:
    """A stride-2 transposed convolution (`down_shifted_upsample` or `down_right_shifted_upsample`)."""

    def __init__(self, layer):
        self.dtype = layer.compute_dtype
        self.kernel = cached.accumulated(tf.cast(layer.kernel, self.dtype))  # [kh, kw, out, in]
        self.bias = layer.bias if layer.use_bias else None

    def rows(self, coarse_row):
        """`down_shifted_upsample` of a coarse row `[B, W', C]` -> fine rows `[B, 2, 2W', F]`."""
        x = cached.accumulated(tf.cast(coarse_row, self.dtype))[:, None]
        batch, width = tf.shape(x)[0], int(coarse_row.shape[1])
        kh, kw, out, _ = self.kernel.shape
        y = tf.nn.conv2d_transpose(x, self.kernel, [batch, kh, 2 * (width - 1) + kw, out], strides=2, padding="VALID")
        return cached.with_bias(y[:, :, 1:2 * width + 1], self.bias, self.dtype)

    def at(self, coarse_value, dy, dx):
        """`down_right_shifted_upsample` at the fine pixel (2a + dy, 2b + dx) of coarse (a, b)."""
        x = cached.accumulated(tf.cast(coarse_value, self.dtype))
        return cached.with_bias(tf.linalg.matmul(x, self.kernel[dy, dx], transpose_b=True), self.bias, self.dtype)


class _Block:
    """One gated ResNet block's layers (`gated_resnet`), for a stream: its convolution, the
    skip's 1x1, the value and gate halves as one convolution, and the label's biases."""

    def __init__(self, network, tag, conv, labels):
        layer = network.get_layer
        self.conv = conv([layer(f"{tag}_conv")])
        self.value_gate = conv([layer(f"{tag}_value"), layer(f"{tag}_gate")])
        has_skip = any(existing.name == f"{tag}_skip_nin" for existing in network.layers)
        self.nin = cached.Pointwise([layer(f"{tag}_skip_nin")]) if has_skip else None
        self.label_bias = None
        if labels is not None:
            self.label_bias = tf.concat([layer(f"{tag}_class_{half}_bias_embed")(labels) for half in ("value", "gate")],
                                        axis=-1)  # [B, 2F]

    def gated(self, x, value_gate):
        """x + value ⊙ σ(gate), the label's biases added to both halves."""
        if self.label_bias is not None:  # [B, 2F], for a position `[B, 2F]` or a row `[B, W, 2F]`
            bias = tf.cast(self.label_bias, value_gate.dtype)
            value_gate = value_gate + (bias if value_gate.shape.rank == 2 else bias[:, None])
        value, gate = tf.split(value_gate, 2, axis=-1)
        return x + value * tf.sigmoid(gate)

    def with_skip(self, c, skip):
        return c if skip is None else c + self.nin(concat_elu(skip))


class CachedSampler(cached.RasterSampler):
    """`network`'s outputs a pixel at a time from cached activations (Ramachandran et al. 2017),
    for images whose height and width are multiples of `STRIDE_MULTIPLE`.

    Every activation is computed once, as soon as what it reads is final:
    - the down stream u (rows above only) a whole row at a time when the row begins: fine row i;
      the middle resolution's row i/2 when i is even; the coarsest's row i/4 when 4 divides i
      (both passes, with the stride-2 convolution and transposed convolution between them);
    - the down-right stream ul a position at a time, before pixel (i, j) is drawn: fine (i, j);
      the middle resolution's (i/2, j/2) when i and j are even, the coarsest's (i/4, j/4) when 4
      divides both. A coarse position's first pass reads the finer one's value at the pixel
      itself (the stride-2 convolution's last tap), its second pass hands the finer resolution
      its transposed convolution's output for the 2x2 pixels it covers, all at or after it.
    Each ul convolution reads its input at (a−1, b−1), (a−1, b), (a, b−1) and (a, b): the
    finished row above (kept per input and resolution) and the position before it in the row.
    Dropout is off, as in every use of a trained network.
    """

    row_period = column_period = STRIDE_MULTIPLE
    reads_the_pixel = False  # the mixture head couples a pixel's sub-pixels; the network sees none

    def __init__(self, network, image_shape, blocks, labels=None):
        height, width, channels = image_shape
        if height % STRIDE_MULTIPLE or width % STRIDE_MULTIPLE:
            raise ValueError(f"the cached PixelCNN++ sampler needs a height and width that are multiples of "
                             f"{STRIDE_MULTIPLE}, got {height}x{width}")
        layer = network.get_layer
        self.blocks = blocks
        self.channels = channels
        self.widths = [width // 2 ** level for level in range(NUM_RESOLUTIONS)]
        self.dtype = layer("u_first").compute_dtype
        self.filters = int(layer("u_first").kernel.shape[-1])
        self.u_first = cached.RowConv([layer("u_first")], width)
        self.ul_above = cached.RowConv([layer("ul_first_above")], width)
        left = layer("ul_first_left")  # 2x1: (i − 1, j − 1) and (i, j − 1), shifted right
        self.ul_left = (tf.reshape(cached.accumulated(tf.cast(left.kernel, self.dtype)), [-1, self.filters]),
                        left.bias)
        self.down_u = [_StridedRowConv(layer(f"down{level}_u")) for level in range(NUM_RESOLUTIONS - 1)]
        self.down_ul = [_CornerConv([layer(f"down{level}_ul")]) for level in range(NUM_RESOLUTIONS - 1)]
        self.up_u = [_Upsample(layer(f"up{level}_u")) for level in range(NUM_RESOLUTIONS - 1)]
        self.up_ul = [_Upsample(layer(f"up{level}_ul")) for level in range(NUM_RESOLUTIONS - 1)]
        self.u_blocks, self.ul_blocks = {}, {}
        for level in range(NUM_RESOLUTIONS):
            w = self.widths[level]
            for tag in self.block_tags(level):
                self.u_blocks[tag] = _Block(network, f"{tag}_u", lambda ls, w=w: cached.RowConv(ls, w), labels)
                self.ul_blocks[tag] = _Block(network, f"{tag}_ul", _CornerConv, labels)
        self.outputs = cached.Pointwise([layer("outputs")])
        # The grids (inputs of ul's 2x2 convolutions, and the values the next resolution reads)
        # and the resolution of each: `f"{tag}/in"`, `f"{tag}/mid"` per block, `down{level}`,
        # `up{level}`.
        self.grid_levels = {}
        for level in range(NUM_RESOLUTIONS):
            for tag in self.block_tags(level):
                self.grid_levels[f"{tag}/in"] = self.grid_levels[f"{tag}/mid"] = level
            if level:
                self.grid_levels[f"up{level}"] = level
            if level < NUM_RESOLUTIONS - 1:
                self.grid_levels[f"down{level}"] = level
        # The 2x2 convolution that reads each grid and the resolution whose rows run it: the
        # grid's own, or the next one for `down{level}` (the `up` grids feed transposed
        # convolutions).
        self.corner_convs = {f"down{level}": (self.down_ul[level], level + 1) for level in range(NUM_RESOLUTIONS - 1)}
        for tag, block in self.ul_blocks.items():
            level = self.grid_levels[f"{tag}/in"]
            self.corner_convs[f"{tag}/in"] = (block.conv, level)
            self.corner_convs[f"{tag}/mid"] = (block.value_gate, level)

    def first_tags(self, level):
        return [f"first_r{level}_b{b}" for b in range(self.blocks)]

    def second_tags(self, level):
        count = self.blocks if level == NUM_RESOLUTIONS - 1 else self.blocks + 1
        return [f"second_r{level}_b{b}" for b in range(count)]

    def block_tags(self, level):
        return self.first_tags(level) + self.second_tags(level)

    # -- state from row to row -------------------------------------------------------------------
    def initial_state(self, batch_size):
        f, zeros = self.filters, tf.zeros
        state = {
            "row": tf.constant(0),
            "image_above": zeros([batch_size, self.widths[0], self.channels + 1], self.dtype),
            "u_first": self.u_first.initial_cache(batch_size),
            "ul_above": self.ul_above.initial_cache(batch_size),
            "u_rows": {}, "u_caches": {}, "u_down_above": {}, "u_up": {}, "grids": {},
        }
        for level in range(NUM_RESOLUTIONS):
            w = self.widths[level]
            for tag in self.block_tags(level):
                block = self.u_blocks[tag]
                state["u_caches"][tag] = (block.conv.initial_cache(batch_size),
                                          block.value_gate.initial_cache(batch_size))
                if level:  # the finest resolution's u rows are made anew every row
                    state["u_rows"][tag] = zeros([batch_size, w, f], self.dtype)
            if level:
                state["u_up"][level - 1] = zeros([batch_size, 2, self.widths[level - 1], f], self.dtype)
            if level < NUM_RESOLUTIONS - 1:
                state["u_down_above"][level] = zeros([batch_size, w, f], self.dtype)
        for key, level in self.grid_levels.items():  # the row above row 0: the padding's zeros
            channels = 2 * f if key.endswith(("/in", "/mid")) else f  # concat_elu doubles
            state["grids"][key] = zeros([self.widths[level] + 1, batch_size, channels], cached.ACCUMULATOR)
        return state

    def begin_row(self, state, row_phase):
        return _CachedRow(self, state, row_phase)


def _built(level, phase) -> bool:
    """Whether fine row phase `phase` (i mod 4) computes a row of resolution `level`."""
    return phase % (2 ** level) == 0


class _CachedRow:
    """One fine row of `CachedSampler` (phase i mod 4): u for the row at every resolution that
    has a row here, computed when it begins; ul a pixel at a time; the state for the next row."""

    def __init__(self, sampler, state, row_phase):
        self.sampler, self.state, self.phase = sampler, state, row_phase
        self.grids_built = [key for key, level in sampler.grid_levels.items() if _built(level, row_phase)]
        s = sampler
        image_above = state["image_above"]  # the image's row i − 1 with its channel of ones (zeros above row 0)
        self.new = {"u_rows": dict(state["u_rows"]), "u_caches": dict(state["u_caches"]),
                    "u_down_above": dict(state["u_down_above"]), "u_up": dict(state["u_up"])}
        u_first, self.new["u_first"] = s.u_first.row(state["u_first"], image_above)
        above, self.new["ul_above"] = s.ul_above.row(state["ul_above"], image_above)
        # Row 0 of u and of ul's first term is the shift's zero row, not a convolution of the padding.
        not_first = tf.cast(state["row"] > 0, s.dtype)
        self.u_rows = {}  # this row's u at every resolution: tag -> [B, W_level, F]
        self.ul_above_row = above * not_first
        self.u_level(0, u_first * not_first)
        # ul's 2x2 convolutions that run in this row, their taps in the row above for the whole row.
        self.above_terms = {key: conv.above_row(state["grids"][key]) for key, (conv, level) in s.corner_convs.items()
                            if _built(level, row_phase)}

    def u_block(self, tag, x, skip):
        block = self.sampler.u_blocks[tag]
        conv_cache, value_cache = self.new["u_caches"][tag]
        c, conv_cache = block.conv.row(conv_cache, concat_elu(x))
        c = block.with_skip(c, skip)
        value_gate, value_cache = block.value_gate.row(value_cache, concat_elu(c))
        self.new["u_caches"][tag] = (conv_cache, value_cache)
        out = block.gated(x, value_gate)
        self.u_rows[tag] = out
        return out

    def u_level(self, level, entry):
        """u's first pass at `level` from its entry row, the coarser levels built here, then u's
        second pass at `level`."""
        s = self.sampler
        u = entry
        for tag in s.first_tags(level):
            u = self.u_block(tag, u, None)
        if level < NUM_RESOLUTIONS - 1:
            above = self.new["u_down_above"][level]
            self.new["u_down_above"][level] = u
            if _built(level + 1, self.phase):
                self.u_level(level + 1, s.down_u[level].row(above, u))
        skips = [entry] + [self.u_rows[tag] for tag in s.first_tags(level)]
        if level == NUM_RESOLUTIONS - 1:
            u = skips.pop()
        else:
            row_in_pair = (self.phase // 2 ** level) % 2  # this level's row index, mod 2
            u = self.new["u_up"][level][:, row_in_pair]
        for tag in s.second_tags(level):
            u = self.u_block(tag, u, skips.pop())
        assert not skips
        if level:
            for tag in s.block_tags(level):
                self.new["u_rows"][tag] = self.u_rows[tag]
            self.new["u_up"][level - 1] = s.up_u[level - 1].rows(u)

    def u_at(self, level, key, b):
        """u's value `[B, F]` of block `key` at column b of `level`'s current row."""
        rows = self.u_rows if _built(level, self.phase) else self.state["u_rows"]
        return cached.column(rows[key], b)

    # -- the down-right stream, a position at a time -------------------------------------------------
    def initial_carry(self, batch_size):
        windows = {key: tf.zeros_like(self.state["grids"][key][0]) for key in self.grids_built}
        rows = {key: tf.TensorArray(cached.ACCUMULATOR, size=self.sampler.widths[self.sampler.grid_levels[key]])
                for key in self.grids_built}
        image_left = tf.zeros([batch_size, self.sampler.channels + 1], self.sampler.dtype)
        return {"windows": windows, "rows": rows, "image_left": image_left}

    def corner(self, conv, key, b, now, carry):
        """`conv` at column b of grid `key`'s row, its input there `now`; `now` joins the grid."""
        now = cached.accumulated(tf.cast(now, self.sampler.dtype))
        out = conv.at(cached.entry(self.above_terms[key], b), carry["windows"][key], now)
        self.push(key, b, now, carry)
        return out

    def push(self, key, b, now, carry):
        carry["windows"][key] = now
        carry["rows"][key] = carry["rows"][key].write(b, now)

    def ul_block(self, tag, x, skip, b, carry):
        block = self.sampler.ul_blocks[tag]
        c = self.corner(block.conv, f"{tag}/in", b, concat_elu(x), carry)
        c = block.with_skip(c, skip)
        return block.gated(x, self.corner(block.value_gate, f"{tag}/mid", b, concat_elu(c), carry))

    def ul_level(self, level, entry, b, column_phase, carry):
        """ul at column b of `level`'s current row (both passes; the coarser levels whose
        position this is too, in between): its value `[B, F]` after the second pass."""
        s = self.sampler
        skips, ul = [entry], entry
        for tag in s.first_tags(level):
            ul = self.ul_block(tag, ul, self.u_at(level, tag, b), b, carry)
            skips.append(ul)
        if level < NUM_RESOLUTIONS - 1:
            down_key = f"down{level}"
            if _built(level + 1, self.phase) and column_phase % 2 ** (level + 1) == 0:
                value = s.down_ul[level].at(cached.entry(self.above_terms[down_key], b), carry["windows"][down_key],
                                            cached.accumulated(tf.cast(ul, s.dtype)))
                self.ul_level(level + 1, value, b // 2, column_phase, carry)
            self.push(down_key, b, cached.accumulated(tf.cast(ul, s.dtype)), carry)
            # The coarser level's second-pass value over this position: in this row's grid
            # (being built: the latest value) or the finished row's.
            up_key = f"up{level + 1}"
            if _built(level + 1, self.phase):
                coarse = carry["windows"][up_key]
            else:
                coarse = cached.entry(self.state["grids"][up_key], b // 2 + 1)
            dy = (self.phase // 2 ** level) % 2
            dx = (column_phase // 2 ** level) % 2
            ul = s.up_ul[level].at(coarse, dy, dx)
        else:
            ul = skips.pop()
        for tag in s.second_tags(level):
            u = self.u_at(level, tag, b)
            ul = self.ul_block(tag, ul, tf.concat([u, skips.pop()], axis=-1), b, carry)
        assert not skips
        if level:
            self.push(f"up{level}", b, cached.accumulated(tf.cast(ul, s.dtype)), carry)
        return ul

    def pixel(self, j, image_pixel, carry, column_phase):
        del image_pixel  # a pixel's parameters never read the pixel
        s = self.sampler
        carry = {"windows": dict(carry["windows"]), "rows": dict(carry["rows"]), "image_left": carry["image_left"]}
        kernel, bias = s.ul_left
        above_left = tf.gather(self.state["image_above"], tf.maximum(j - 1, 0), axis=1)  # unused at j = 0
        left = tf.linalg.matmul(tf.concat([cached.accumulated(above_left), cached.accumulated(carry["image_left"])],
                                          axis=-1), kernel)
        left = cached.with_bias(left, bias, s.dtype) * tf.cast(j > 0, s.dtype)  # the shift's zero column
        entry = cached.column(self.ul_above_row, j) + left
        ul = self.ul_level(0, entry, j, column_phase, carry)
        outputs = s.outputs(tf.nn.elu(ul))  # out_elu, then the 1x1 head
        return outputs, carry

    def finish_pixel(self, image_pixel, after, column_phase):
        del column_phase
        ones = tf.ones_like(image_pixel[:, :1])
        return {**after, "image_left": tf.cast(tf.concat([image_pixel, ones], axis=-1), self.sampler.dtype)}

    def end(self, carry, image_row):
        """The state for the next row: the grids of the levels built here, u's, the image row."""
        image_row = tf.transpose(image_row, [1, 0, 2])  # [B, W, C]
        grids = dict(self.state["grids"])
        for key in self.grids_built:
            grids[key] = tf.pad(carry["rows"][key].stack(), [[1, 0], [0, 0], [0, 0]])
        return {
            "row": self.state["row"] + 1,
            "image_above": tf.cast(tf.concat([image_row, tf.ones_like(image_row[..., :1])], axis=-1), self.sampler.dtype),
            "u_first": self.new["u_first"], "ul_above": self.new["ul_above"],
            "u_rows": self.new["u_rows"], "u_caches": self.new["u_caches"],
            "u_down_above": self.new["u_down_above"], "u_up": self.new["u_up"], "grids": grids,
        }
