"""Cached evaluation of causal convolutional networks in raster order, for fast sampling
(Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models").

Ancestral sampling needs the network's output at one pixel at a time. Running the network on
the image once per sub-pixel (the naive sampler) recomputes every activation of every earlier
pixel again and again. But every layer of the PixelCNN networks is causal in raster order: its
output at pixel p = (i, j) depends on its input at pixels up to p only. An activation, once
computed, therefore never changes, and a step only has to compute what the new pixel adds: one
output vector `[B, C_out]` per layer at p. The total work is one pass of the network over the
image instead of H·W·C partial passes.

A causal convolution with a kh x kw kernel K, mask M and centre (cy, cx) = (kh//2, kw//2)
splits into the rows above the current one, which are finished, and the current row:

    y(i, j) = sum_{a < cy, b < kw} x(i - cy + a, j - cx + b) K(a, b)        rows above
            + sum_{b <= cx}        x(i, j - cx + b) (K ⊙ M)(cy, b)           current row, up to j
            + bias

(the mask keeps every tap above the centre row and none after the centre). `CausalConv`
computes the first sum for a whole row when the row starts, as one matrix product of the
patches of a cache of its input in the cy rows above (zero-padded on the left and right as
the network's "same" padding); and the second sum per pixel, as one matrix product of the
inputs at j - cx .. j (a window carried from column to column, zeros left of the image) with
the flattened centre-row kernel, in which the masked taps are zeros. `RowConv` computes a
convolution that sees rows above only (the Gated PixelCNN's vertical stack) for a whole row
at a time. Elementwise layers (ReLU, sums, gates, label biases) act on the vectors at p.

Precision: each layer's products are summed in float32 from operands in the layer's compute
dtype, the bias is added, and the result is rounded to the compute dtype once: what the
network computes in a traced graph, where TensorFlow fuses each convolution with its bias
(eager execution rounds before adding the bias, which differs under `mixed_bfloat16`). The
results then equal the network's up to the order of the float32 sums: in float32 the last
bits; under `mixed_bfloat16` bit for bit for PixelCNN, while the Gated PixelCNN's traced
graph rounds some values differently again (bfloat16 rounding, ~1e-3 of the logits).

A network's sampler follows the protocol of `RasterSampler`; `raster_outputs` drives it over
a known image (teacher forcing), which is how the tests compare it with the network.
"""
from __future__ import annotations

import tensorflow as tf

ACCUMULATOR = tf.float32  # the dtype products are summed in, whatever the compute dtype


def accumulated(x):
    """`x` as the float32 operand of a sum of products."""
    return x if x.dtype == ACCUMULATOR else tf.cast(x, ACCUMULATOR)


def rounded(x, dtype):
    """A float32 sum rounded once to the layer's compute dtype."""
    return x if x.dtype == dtype else tf.cast(x, dtype)


def concat_layers(layers, weight):
    """One weight of several layers that share an input, concatenated along the outputs."""
    values = [tf.cast(weight(layer), layers[0].compute_dtype) for layer in layers]
    return values[0] if len(values) == 1 else tf.concat(values, axis=-1)


def concat_bias(layers):
    """The biases of layers that share an input, concatenated (None when none has one)."""
    if not all(layer.use_bias for layer in layers):
        if any(layer.use_bias for layer in layers):
            raise ValueError("layers sharing a cached convolution must all have a bias or none")
        return None
    return concat_layers(layers, lambda layer: layer.bias)


def gate(pre_activation):
    """tanh(f) ⊙ σ(g) for `pre_activation` = [f, g] along the last axis (the gated unit)."""
    f, g = tf.split(pre_activation, 2, axis=-1)
    return tf.tanh(f) * tf.sigmoid(g)


def with_bias(total, bias, dtype):
    """A convolution's float32 sum of products plus its bias, rounded once to `dtype`: what
    the fused convolution + bias of a traced graph gives (TensorFlow's graph rewrites fuse
    them for oneDNN; eager execution rounds before adding the bias, which differs in
    bfloat16)."""
    return rounded(total if bias is None else total + accumulated(bias), dtype)


class Pointwise:
    """1x1 convolutions (`keras.layers.Conv2D`) sharing an input, concatenated along their
    outputs: `Pointwise(layers)(x)` maps `x` `[..., C_in]` -> `[..., C_out]`. The kernel and bias
    are read once, when the sampler is built, not in every step of its loops."""

    def __init__(self, layers):
        layers = list(layers)
        self.dtype = layers[0].compute_dtype
        self.kernel = accumulated(concat_layers(layers, lambda layer: layer.kernel))[0, 0]
        self.bias = concat_bias(layers)

    def __call__(self, x):
        return with_bias(tf.linalg.matmul(accumulated(tf.cast(x, self.dtype)), self.kernel), self.bias, self.dtype)


def column(x, j):
    """`x[:, j]` for a tensor index j: one gather, where slicing adds a strided slice and the
    ops that pack its bounds to every loop step's graph."""
    return tf.gather(x, j, axis=1)


def entry(x, j):
    """`x[j]` for a tensor index j (see `column`)."""
    return tf.gather(x, j)


class CausalConv:
    """`MaskedConv2D` layers that share one input, evaluated a pixel at a time in raster order.

    Several layers (e.g. the two halves of a gate) are concatenated along their outputs, so
    that a pixel costs one matrix product. State, all float32 (values of the compute dtype):
    - `cache` `[cy, W + 2cx, B, C_in]`: the input in the cy rows above, zero-padded on the
      left and right, column-major (none when cy = 0: 1 x k and 1x1 layers); the next row's
      comes from `next_cache` with the finished row's inputs;
    - `window`: a tuple of the cx latest inputs `[B, C_in]` of the current row (columns
      j - cx .. j - 1 before pixel j), zeros at the start of a row (the padding left of the
      image).
    """

    def __init__(self, layers, width):
        layers = list(layers)
        first = layers[0]
        if any(layer.kernel_size != first.kernel_size for layer in layers):
            raise ValueError("layers sharing a cached convolution must have one kernel size")
        self.dtype = first.compute_dtype
        self.width = width
        kh, kw = first.kernel_size
        self.cy, self.cx = kh // 2, kw // 2
        kernel = accumulated(concat_layers(layers, lambda layer: layer.masked_kernel()))  # [kh, kw, in, out]
        self.in_channels, self.out_channels = int(kernel.shape[2]), int(kernel.shape[3])
        self.bias = concat_bias(layers)
        # The rows above as one product with the cy·kw patches: [cy·kw·in, out].
        self.kernel_above = tf.reshape(kernel[:self.cy], [-1, self.out_channels]) if self.cy else None
        # Columns j - cx .. j of the centre row, flattened like a window's concatenation; the
        # taps the mask zeroes (all of the centre for a type-A layer on one colour) add zeros.
        self.kernel_row = tf.reshape(kernel[self.cy, :self.cx + 1], [-1, self.out_channels])

    def initial_cache(self, batch_size):
        if not self.cy:
            return None
        return tf.zeros([self.cy, self.width + 2 * self.cx, batch_size, self.in_channels], ACCUMULATOR)

    def initial_window(self, batch_size):
        return (tf.zeros([batch_size, self.in_channels], ACCUMULATOR),) * self.cx

    def rows_above(self, cache):
        """The rows-above part of a whole row, float32 `[W, B, out]` (column-major: a pixel reads
        one slice), or None when the layer sees no rows above."""
        if cache is None:
            return None
        # Patches [W, B, cy·kw·in] from shifted slices of the cache (no transposes).
        width = self.width
        patches = [cache[a, b:b + width] for a in range(self.cy) for b in range(2 * self.cx + 1)]
        patches = patches[0] if len(patches) == 1 else tf.concat(patches, axis=-1)
        above = tf.linalg.matmul(tf.reshape(patches, [-1, self.kernel_above.shape[0]]), self.kernel_above)
        return tf.reshape(above, [width, -1, self.out_channels])

    def at(self, window, x, above=None, bias=True):
        """`(y, window)`: the output `[B, out]` at the pixel whose input is `x` `[B, in]`, given the
        window of the cx inputs before it in the row and the row's `rows_above` at its column;
        and the window for the next column (`x` pushed in, the oldest dropped). `bias` False:
        the caller's `above` holds the bias already."""
        inputs = (*window, accumulated(tf.cast(x, self.dtype)))  # columns j - cx .. j
        total = tf.linalg.matmul(inputs[0] if len(inputs) == 1 else tf.concat(inputs, axis=1), self.kernel_row)
        if above is not None:
            total = total + above
        return with_bias(total, self.bias if bias else None, self.dtype), inputs[1:]

    def with_latest(self, window, x):
        """A window from `at` with its newest input (the pixel's) replaced by `x`."""
        return (*window[:-1], accumulated(tf.cast(x, self.dtype))) if window else window

    def next_cache(self, cache, inputs):
        """The cache for the next row: the finished row's inputs `[W, B, in]` pushed in, the
        oldest row dropped."""
        row = tf.pad(accumulated(tf.cast(inputs, self.dtype)), [[self.cx, self.cx], [0, 0], [0, 0]])
        return tf.concat([cache[1:], row[None]], axis=0)


class RowConv:
    """`keras.layers.Conv2D` layers sharing one input that see the rows at and above the current
    one: a "valid" kh x kw convolution after zero padding of kh - 1 rows on top and kw // 2
    columns either side (the Gated PixelCNN's vertical stack). Computed a whole row at a time
    from the current input row and a cache `[B, kh - 1, W + kw - 1, C_in]` of the rows above."""

    def __init__(self, layers, width):
        layers = list(layers)
        self.dtype = layers[0].compute_dtype
        self.width = width
        self.kernel = accumulated(concat_layers(layers, lambda layer: layer.kernel))  # [kh, kw, in, out]
        self.kh, self.kw, self.in_channels, self.out_channels = (int(d) for d in self.kernel.shape)
        self.bias = concat_bias(layers)

    def initial_cache(self, batch_size):
        return tf.zeros([batch_size, self.kh - 1, self.width + self.kw - 1, self.in_channels], ACCUMULATOR)

    def row(self, cache, x):
        """`(y, next_cache)`: the outputs `[B, W, out]` for the input row `x` `[B, W, in]`."""
        x = accumulated(tf.cast(x, self.dtype))
        pad = self.kw // 2
        rows = tf.concat([cache, tf.pad(x, [[0, 0], [pad, pad], [0, 0]])[:, None]], axis=1)
        y = tf.nn.conv2d(rows, self.kernel, strides=1, padding="VALID")  # [B, 1, W, out]
        return with_bias(y[:, 0], self.bias, self.dtype), rows[:, 1:]


class RasterSampler:
    """What a network provides for cached sampling; the sampler drives it in raster order.

    Protocol (every method builds graph ops; `state` and `carry` are nests of tensors):

        state = sampler.initial_state(batch_size)            # carried from row to row
        for each row i (a `tf.while_loop`):
            row = sampler.begin_row(state)                   # the row's parts from rows above
            carry = row.initial_carry(batch_size)            # carried from column to column
            for each column j (a nested `tf.while_loop`):
                for each channel c:
                    outputs, after = row.pixel(j, pixel, carry)  # the network's outputs at (i, j)
                    ...draw sub-pixel c into `pixel`...
                carry = row.finish_pixel(pixel, after)       # the final value later pixels see
            state = row.end(carry, image_row)                # image_row: the finished row [W, B, C]

    `pixel` is the image's float value `[B, C]` at (i, j) as the network takes it (channels
    not yet drawn hold anything: the masks hide them); `outputs` are the network's outputs at
    that pixel (`[B, C, 256]` logits for a categorical head). `row.pixel` is called once per
    sub-pixel on the same `carry` (once per pixel when `reads_the_pixel` is False); the activations in the last call's `after` stay, because
    they never depend on the pixel's last sub-pixel (the first layer's mask is type A), but the
    image itself enters the first layer's window only in `finish_pixel`.

    Networks whose work differs from row to row or column to column (strided layers that
    compute at every second or fourth pixel, PixelCNN++) set `row_period` and `column_period`
    above 1: the image's height and width are then multiples of them, the driver unrolls that
    many rows per step of its row loop and a multiple of that many columns per step of its
    column loop, and passes each call its phase as a Python int: `begin_row(state, i %
    row_period)`, `pixel(j, pixel, carry, j % column_period)` and `finish_pixel(pixel, after,
    j % column_period)`.
    """

    row_period = 1
    column_period = 1
    # Whether a pixel's outputs read its own sub-pixels drawn so far (the categorical heads'
    # masks: sub-pixel c sees c' < c). False (a head that couples the sub-pixels itself, as
    # PixelCNN++'s mixture): `pixel` is called once per pixel, not once per sub-pixel.
    reads_the_pixel = True

    def initial_state(self, batch_size):
        raise NotImplementedError

    def begin_row(self, state):
        raise NotImplementedError


def begin_row(sampler, state, row_phase):
    """`sampler.begin_row`, with the phase when its `row_period` is above 1."""
    return sampler.begin_row(state, row_phase) if sampler.row_period > 1 else sampler.begin_row(state)


def pixel_outputs(sampler, row, j, pixel, carry, column_phase):
    """`row.pixel`, with the phase when the sampler's `column_period` is above 1."""
    if sampler.column_period > 1:
        return row.pixel(j, pixel, carry, column_phase)
    return row.pixel(j, pixel, carry)


def finish_pixel(sampler, row, pixel, after, column_phase):
    """`row.finish_pixel`, with the phase when the sampler's `column_period` is above 1."""
    if sampler.column_period > 1:
        return row.finish_pixel(pixel, after, column_phase)
    return row.finish_pixel(pixel, after)


def raster_outputs(sampler, images):
    """Drive `sampler` over known float images `[B, H, W, C]` (teacher forcing), with the
    sampler's loops: the network's outputs at every pixel, `[B, H, W, ...]`, computed a pixel
    at a time from the caches."""
    height, width = int(images.shape[1]), int(images.shape[2])
    rows_per_step, columns_per_step = sampler.row_period, sampler.column_period
    batch_size = tf.shape(images)[0]
    pixels = tf.transpose(images, [1, 2, 0, 3])  # [H, W, B, C]

    def one_row(i, row_phase, state, outputs):
        row = begin_row(sampler, state, row_phase)

        def column_step(j, carry, row_outputs):
            for phase in range(columns_per_step):
                pixel = pixels[i, j + phase]
                outputs_here, carry = pixel_outputs(sampler, row, j + phase, pixel, carry, phase)
                carry = finish_pixel(sampler, row, pixel, carry, phase)
                row_outputs = row_outputs.write(j + phase, outputs_here)
            return j + columns_per_step, carry, row_outputs

        _, carry, row_outputs = tf.while_loop(
            lambda j, *_: j < width, column_step,
            [tf.constant(0), row.initial_carry(batch_size), tf.TensorArray(tf.float32, size=width)])
        return row.end(carry, pixels[i]), outputs.write(i, row_outputs.stack())

    def row_step(i, state, outputs):
        for phase in range(rows_per_step):
            state, outputs = one_row(i + phase, phase, state, outputs)
        return i + rows_per_step, state, outputs

    _, _, outputs = tf.while_loop(lambda i, *_: i < height, row_step,
                                  [tf.constant(0), sampler.initial_state(batch_size),
                                   tf.TensorArray(tf.float32, size=height)])
    outputs = outputs.stack()  # [H, W, B, ...]
    return tf.transpose(outputs, [2, 0, 1, *range(3, len(outputs.shape))])
