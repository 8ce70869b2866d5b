"""PixelRNN network with Row LSTM or Diagonal BiLSTM layers (van den Oord, Kalchbrenner,
Kavukcuoglu 2016, Table 1).

    7x7 MaskedConv2D type A (2h features)
    -> num_layers x residual [RowLSTM (h units; K_is 1 x k masked B, K_ss 1 x k unmasked)
                              or DiagonalBiLSTM (h units per direction; K_is 1x1, K_ss 2x1)
                              -> 1x1 MaskedConv2D type B back to 2h, added to the layer's input]
    -> ReLU -> 1x1 type B (2h) -> ReLU -> 1x1 type B (C*256 logits)

As in the paper (§3.3, Figure 5), the residual stream has 2h feature maps and each Row LSTM h
units per gate, its output brought back to 2h by the 1x1 convolution. Class-conditional:
a learned bias per class and layer added to the four gates' pre-activations (the
`V^T y` term of conditional PixelCNN, here on the LSTM gates).

Input float images `[B, rows, W, C]` in [-1, 1] (any number of rows; and int labels `[B]`
when conditional); output logits float32 `[B, rows, W, C, 256]`.

`CachedSampler` evaluates the same network a pixel at a time (`keras_gen.networks.cached`):
the Row LSTM is causal in raster order too, its state at (i, j) a function of the row above's
states (carried from row to row) and of its input at columns <= j of row i (carried from
column to column), so sampling costs one pass of the network instead of one per sub-pixel.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.layers import DiagonalBiLSTM, MaskedConv2D, RowLSTM
from keras_gen.networks import cached

RNNS = ("row_lstm", "diagonal_bilstm")  # the recurrent layers a PixelRNN can stack


def network(image_shape, hidden_size, num_layers, first_kernel_size, input_kernel_size, state_kernel_size, dtype,
            num_classes=None, rnn="row_lstm", name="pixelrnn_network"):
    _, w, c = image_shape
    features = 2 * hidden_size
    levels = likelihoods.NUM_LEVELS
    images = keras.Input((None, w, c), name="images")
    inputs = [images]
    labels = None
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)

    x = MaskedConv2D(features, first_kernel_size, "A", c, dtype=dtype, name="conv_a")(images)
    for layer in range(num_layers):
        tag = f"{rnn}{layer}"
        gate_bias = None
        if labels is not None:
            gate_bias = keras.layers.Embedding(num_classes, 4 * hidden_size, dtype=dtype,
                                               name=f"{tag}_class_bias")(labels)
        if rnn == "row_lstm":
            recurrent = RowLSTM(hidden_size, input_kernel_size, state_kernel_size, c, dtype=dtype, name=tag)
        else:
            recurrent = DiagonalBiLSTM(hidden_size, c, dtype=dtype, name=tag)
        h = recurrent(x, gate_bias=gate_bias)
        h = MaskedConv2D(features, 1, "B", c, dtype=dtype, name=f"{tag}_out")(h)
        x = keras.layers.Add(dtype=dtype, name=f"{tag}_residual")([x, h])

    x = keras.layers.ReLU(dtype=dtype)(x)
    x = MaskedConv2D(features, 1, "B", c, dtype=dtype, name="head")(x)
    x = keras.layers.ReLU(dtype=dtype)(x)
    # Logits in float32: a softmax over 256 values loses precision in bf16.
    x = MaskedConv2D(c * levels, 1, "B", c, dtype="float32", name="logits")(x)
    outputs = keras.layers.Reshape((-1, w, c, levels), dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


class _StateInput:
    """A `RowLSTM`'s masked input-to-state convolution K_is, shaped as `cached.CausalConv`
    reads a layer (its bias is added in float32 afterwards, as the layer adds it)."""

    use_bias = False

    def __init__(self, lstm):
        self.lstm = lstm
        self.kernel_size = (1, lstm.input_kernel_size)
        self.compute_dtype = lstm.compute_dtype

    def masked_kernel(self):
        kernel = tf.cast(self.lstm.input_kernel, self.compute_dtype)
        return kernel * tf.convert_to_tensor(self.lstm.input_mask, self.compute_dtype)


class CachedSampler(cached.RasterSampler):
    """`network`'s logits a pixel at a time (`cached.RasterSampler`), with `labels` int `[B]`
    for a conditional network.

    State from row to row: the type-A convolution's cache of the image rows above and, per
    Row LSTM, the row above's hidden state h `[B, W, h]` and cell state c `[W, B, h]` (float32,
    as the layer keeps them). A row begins with K_ss ⊛ h_{i-1} for the whole row (the layer's
    own 1-D convolution). From column to column: the windows of the type-A convolution and of
    every K_is, and each layer's h and c so far (the next row's state). At a pixel: the gates
    from K_is (its window and the pixel's input) + bias + class bias + K_ss ⊛ h_{i-1} at the
    column, in the layer's order of float32 sums; then the cell, the 1x1 output convolution,
    the residual sum and the head.
    """

    def __init__(self, network, image_shape, num_layers, labels=None):
        _, self.width, self.channels = image_shape
        layer = network.get_layer
        self.first = cached.CausalConv([layer("conv_a")], self.width)
        self.layers = []
        for index in range(num_layers):
            lstm = layer(f"row_lstm{index}")
            self.layers.append({
                "lstm": lstm,
                "input": cached.CausalConv([_StateInput(lstm)], self.width),
                "out": cached.CausalConv([layer(f"row_lstm{index}_out")], self.width),
                "label": None if labels is None else tf.cast(layer(f"row_lstm{index}_class_bias")(labels), tf.float32),
            })
        self.head = cached.CausalConv([layer("head")], self.width)
        self.logits = cached.CausalConv([layer("logits")], self.width)
        self.dtype = self.first.dtype

    def initial_state(self, batch_size):
        states = []
        for stack in self.layers:
            units = stack["lstm"].units
            states += [tf.zeros([batch_size, self.width, units]), tf.zeros([self.width, batch_size, units])]
        return [self.first.initial_cache(batch_size), *states]

    def begin_row(self, state):
        return _CachedRow(self, state)


class _CachedRow:
    def __init__(self, sampler, state):
        self.sampler = sampler
        self.cache, *states = state
        self.above = sampler.first.rows_above(self.cache)
        self.cells_above, self.recurrent = [], []
        for index, stack in enumerate(sampler.layers):
            hidden, cells = states[2 * index], states[2 * index + 1]
            lstm = stack["lstm"]
            recurrent = keras.ops.conv(hidden, tf.cast(lstm.state_kernel, tf.float32), padding="same")  # [B, W, 4h]
            self.recurrent.append(tf.transpose(recurrent, [1, 0, 2]))  # [W, B, 4h]
            self.cells_above.append(cells)

    def initial_carry(self, batch_size):
        sampler = self.sampler
        return {
            "windows": [sampler.first.initial_window(batch_size),
                        *(stack["input"].initial_window(batch_size) for stack in sampler.layers)],
            "hidden": [tf.TensorArray(tf.float32, size=sampler.width) for _ in sampler.layers],
            "cells": [tf.TensorArray(tf.float32, size=sampler.width) for _ in sampler.layers],
        }

    def pixel(self, j, image_pixel, carry):
        """As `network`: type A -> residual [Row LSTM -> 1x1 B] -> ReLU -> 1x1 B -> ReLU -> logits."""
        sampler = self.sampler
        windows, hidden, cells = list(carry["windows"]), list(carry["hidden"]), list(carry["cells"])
        x, windows[0] = sampler.first.at(windows[0], image_pixel, None if self.above is None else self.above[j])
        for index, stack in enumerate(sampler.layers):
            lstm = stack["lstm"]
            pre, windows[index + 1] = stack["input"].at(windows[index + 1], x)
            pre = tf.cast(pre, tf.float32) + tf.cast(lstm.bias, tf.float32)
            if stack["label"] is not None:
                pre = pre + stack["label"]
            o, f, i, g = tf.split(pre + self.recurrent[index][j], 4, axis=-1)
            c = tf.sigmoid(f) * self.cells_above[index][j] + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            hidden[index], cells[index] = hidden[index].write(j, h), cells[index].write(j, c)
            y, _ = stack["out"].at((), tf.cast(h, lstm.compute_dtype))
            x = x + y
        x, _ = sampler.head.at((), tf.nn.relu(x))
        logits, _ = sampler.logits.at((), tf.nn.relu(x))
        outputs = tf.reshape(logits, [-1, sampler.channels, likelihoods.NUM_LEVELS])
        return outputs, {"windows": windows, "hidden": hidden, "cells": cells}

    def finish_pixel(self, image_pixel, carry):
        windows = list(carry["windows"])
        windows[0] = self.sampler.first.with_latest(windows[0], image_pixel)
        return {**carry, "windows": windows}

    def end(self, carry, image_row):
        states = []
        for hidden, cells in zip(carry["hidden"], carry["cells"]):
            states += [tf.transpose(hidden.stack(), [1, 0, 2]), cells.stack()]
        return [self.sampler.first.next_cache(self.cache, image_row), *states]
