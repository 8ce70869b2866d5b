"""PixelCNN network (van den Oord et al., 2016): masked convolutions, causal in raster order.

MaskedConv2D type A (first_kernel_size) -> num_layers x residual [ReLU -> MaskedConv2D type B
(kernel_size)] -> ReLU -> 1x1 type B (filters) -> ReLU -> 1x1 type B (C*P outputs).
Input float images `[B, rows, W, C]` in [-1, 1] (any number of rows), output float32
`[B, rows, W, C, P]`: P = 256 logits per sub-pixel (categorical), or 1 log-odds (Bernoulli).

`CachedSampler` evaluates the same network one pixel at a time from cached activations
(`keras_gen.networks.cached`), for fast sampling.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.layers import MaskedConv2D
from keras_gen.networks import cached


def network(image_shape, filters, num_layers, kernel_size, first_kernel_size, dtype,
            outputs_per_subpixel=likelihoods.NUM_LEVELS):
    _, w, c = image_shape
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
    x = MaskedConv2D(c * outputs_per_subpixel, 1, "B", c, dtype="float32", name="logits")(x)
    outputs = keras.layers.Reshape((-1, w, c, outputs_per_subpixel), dtype="float32")(x)
    return keras.Model(inputs, outputs, name="pixelcnn_network")


class CachedSampler(cached.RasterSampler):
    """`network`'s outputs a pixel at a time (`cached.RasterSampler`). State from row to row:
    the caches of the type-A and the residual type-B convolutions' inputs in the rows above;
    from column to column: every convolution's window of the row's latest inputs, and the
    residual convolutions' inputs so far (for the next row's caches)."""

    def __init__(self, network, image_shape, num_layers):
        _, self.width, self.channels = image_shape
        self.first = cached.CausalConv([network.get_layer("conv_a")], self.width)
        self.residual = [cached.CausalConv([network.get_layer(f"conv_b{i}")], self.width) for i in range(num_layers)]
        self.head = cached.CausalConv([network.get_layer("head")], self.width)
        self.logits = cached.CausalConv([network.get_layer("logits")], self.width)
        self.convs = [self.first, *self.residual, self.head, self.logits]

    def initial_state(self, batch_size):
        return [conv.initial_cache(batch_size) for conv in self.convs if conv.cy]

    def begin_row(self, state):
        return _CachedRow(self, state)


class _CachedRow:
    def __init__(self, sampler, state):
        self.sampler = sampler
        caches = iter(state)
        self.caches = [next(caches) if conv.cy else None for conv in sampler.convs]
        self.above = [conv.rows_above(cache) for conv, cache in zip(sampler.convs, self.caches)]

    def initial_carry(self, batch_size):
        sampler = self.sampler
        return {
            "windows": [conv.initial_window(batch_size) for conv in sampler.convs],
            # Inputs of the residual convolutions along the row, for their next caches.
            "inputs": [tf.TensorArray(conv.dtype, size=sampler.width) for conv in sampler.residual if conv.cy],
        }

    def pixel(self, j, image_pixel, carry):
        """As `network`: type A -> residual [ReLU -> type B] -> ReLU -> 1x1 -> ReLU -> logits."""
        sampler = self.sampler
        windows = list(carry["windows"])
        inputs = list(carry["inputs"])
        above = [None if part is None else cached.entry(part, j) for part in self.above]
        x, windows[0] = sampler.first.at(windows[0], image_pixel, above[0])
        recorded = 0
        for index, conv in enumerate(sampler.residual, start=1):
            y = tf.nn.relu(x)
            if conv.cy:
                inputs[recorded] = inputs[recorded].write(j, y)
                recorded += 1
            y, windows[index] = conv.at(windows[index], y, above[index])
            x = x + y
        x, windows[-2] = sampler.head.at(windows[-2], tf.nn.relu(x))
        logits, windows[-1] = sampler.logits.at(windows[-1], tf.nn.relu(x))
        outputs = tf.reshape(logits, [-1, sampler.channels, sampler.logits.out_channels // sampler.channels])
        return outputs, {"windows": windows, "inputs": inputs}

    def finish_pixel(self, image_pixel, carry):
        windows = list(carry["windows"])
        windows[0] = self.sampler.first.with_latest(windows[0], image_pixel)
        return {"windows": windows, "inputs": carry["inputs"]}

    def end(self, carry, image_row):
        sampler = self.sampler
        rows = iter([inputs.stack() for inputs in carry["inputs"]])  # [W, B, in]
        caches = []
        for conv, cache in zip(sampler.convs, self.caches):
            if cache is not None:
                caches.append(conv.next_cache(cache, image_row if conv is sampler.first else next(rows)))
        return caches
