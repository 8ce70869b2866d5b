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
column to column); the Diagonal BiLSTM's left-to-right state at (i, j) a function of the
states at (i - 1, j) and (i, j - 1), and the right-to-left state it adds one of row i - 1,
computed when that row ends. So sampling costs one pass of the network instead of one per
sub-pixel.
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


def _cell(pre, cells):
    """One LSTM step, float32: `(h, c)` from the pre-activations [o, f, i, g] and the cell before."""
    o, f, i, g = tf.split(pre, 4, axis=-1)
    c = tf.sigmoid(f) * cells + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c), c


class _RowLSTMLayer:
    """One `RowLSTM` a pixel at a time. State from row to row: the row above's hidden state
    h `[B, W, h]` and cell state c `[W, B, h]`. A row begins with K_ss ⊛ h_{i-1} for the whole
    row (the layer's own 1-D convolution); from column to column K_is's window is carried; at
    a pixel, the gates from K_is (its window and the pixel's input) + bias + class bias +
    K_ss ⊛ h_{i-1} at the column, in the layer's order of float32 sums."""

    def __init__(self, lstm, width, label_bias):
        self.lstm, self.width, self.label_bias = lstm, width, label_bias
        self.input = cached.CausalConv([_StateInput(lstm)], width)

    def initial_state(self, batch_size):
        units = self.lstm.units
        return [tf.zeros([batch_size, self.width, units]), tf.zeros([self.width, batch_size, units])]

    def begin_row(self, state):
        hidden, cells = state
        recurrent = keras.ops.conv(hidden, tf.cast(self.lstm.state_kernel, tf.float32), padding="same")  # [B, W, 4h]
        return {"recurrent": tf.transpose(recurrent, [1, 0, 2]), "cells": cells}  # [W, B, ...]

    def initial_carry(self, batch_size):
        return {"window": self.input.initial_window(batch_size),
                "hidden": tf.TensorArray(tf.float32, size=self.width),
                "cells": tf.TensorArray(tf.float32, size=self.width)}

    def at(self, j, x, row, carry):
        """`(the layer's output [B, h] at column j of input x [B, 2h], carry)`."""
        lstm = self.lstm
        pre, window = self.input.at(carry["window"], x)
        pre = tf.cast(pre, tf.float32) + tf.cast(lstm.bias, tf.float32)
        if self.label_bias is not None:
            pre = pre + self.label_bias
        h, c = _cell(pre + cached.entry(row["recurrent"], j), cached.entry(row["cells"], j))
        carry = {"window": window, "hidden": carry["hidden"].write(j, h), "cells": carry["cells"].write(j, c)}
        return tf.cast(h, lstm.compute_dtype), carry

    def end(self, row, carry):
        return [tf.transpose(carry["hidden"].stack(), [1, 0, 2]), carry["cells"].stack()]


class _DiagonalBiLSTMLayer:
    """One `DiagonalBiLSTM` a pixel at a time. In the image's own coordinates its left-to-right
    state at (i, j) reads the states at (i − 1, j) and (i, j − 1) (the skewed map's previous
    column, rows i − 1 and i) and the cell at (i, j − 1); the right-to-left one mirrors that,
    reading (i − 1, j) and (i, j + 1), and the layer's output at (i, j) adds the latter's state
    at (i − 1, j).

    So: left to right runs at each pixel, its h and c carried along the row and its row of h
    kept for the next row. Right to left needs row i − 1 complete: when a row ends, one sweep
    from its last column to its first computes the row's right-to-left states from the
    pre-activations kept at each pixel (K_is ⊛ x + bias + class bias) and the row above's
    right-to-left states; row i + 1 adds them. State from row to row, float32 `[W, B, h]`:
    the row's left-to-right states, and its right-to-left states (zeros above the image)."""

    def __init__(self, lstm, width, label_bias):
        self.lstm, self.width, self.label_bias = lstm, width, label_bias
        dtype = lstm.compute_dtype
        forward = tf.cast(lstm.input_kernels["forward"], dtype) * tf.convert_to_tensor(lstm.input_mask, dtype)
        self.input_kernel = cached.accumulated(
            tf.concat([forward, tf.cast(lstm.input_kernels["backward"], dtype)], axis=-1))  # [F, 2 · 4h]
        self.bias = tf.concat([tf.cast(lstm.biases[d], tf.float32) for d in lstm.DIRECTIONS], axis=-1)
        if label_bias is not None:
            self.label_bias = tf.concat([label_bias, label_bias], axis=-1)
        # [rows i − 1 and i of the previous skewed column, units, gates] -> one product, as the layer.
        self.state_kernels = {d: tf.reshape(tf.cast(lstm.state_kernels[d], tf.float32), [2 * lstm.units, -1])
                              for d in lstm.DIRECTIONS}

    def initial_state(self, batch_size):
        zeros = tf.zeros([self.width, batch_size, self.lstm.units])
        return [zeros, zeros]

    def begin_row(self, state):
        forward_above, backward_above = state
        return {"forward": forward_above, "backward": backward_above}

    def initial_carry(self, batch_size):
        zeros = tf.zeros([batch_size, self.lstm.units])
        return {"hidden": zeros, "cells": zeros,
                "forward": tf.TensorArray(tf.float32, size=self.width),
                "pre_backward": tf.TensorArray(tf.float32, size=self.width)}

    def at(self, j, x, row, carry):
        """`(the layer's output [B, h] at column j of input x [B, F], carry)`."""
        dtype = self.lstm.compute_dtype
        # Both directions' K_is ⊛ x in one product, rounded to the compute dtype as the
        # layer's matmul, then float32 with the biases.
        pre = tf.cast(cached.rounded(tf.linalg.matmul(cached.accumulated(tf.cast(x, dtype)), self.input_kernel),
                                     dtype), tf.float32) + self.bias
        if self.label_bias is not None:
            pre = pre + self.label_bias
        pre_forward, pre_backward = tf.split(pre, 2, axis=-1)
        pair = tf.concat([cached.entry(row["forward"], j), carry["hidden"]], axis=-1)  # (i − 1, j), (i, j − 1)
        h, c = _cell(pre_forward + tf.linalg.matmul(pair, self.state_kernels["forward"]), carry["cells"])
        carry = {"hidden": h, "cells": c, "forward": carry["forward"].write(j, h),
                 "pre_backward": carry["pre_backward"].write(j, pre_backward)}
        return tf.cast(h + cached.entry(row["backward"], j), dtype), carry

    def end(self, row, carry):
        kernel = self.state_kernels["backward"]

        def leftward(state, inputs):
            h, c = state  # at (i, j + 1)
            pre, above = inputs  # at (i, j) and the state at (i − 1, j)
            return _cell(pre + tf.linalg.matmul(tf.concat([above, h], axis=-1), kernel), c)

        zeros = tf.zeros_like(row["backward"][0])
        backward, _ = tf.scan(leftward, (carry["pre_backward"].stack(), row["backward"]),
                              initializer=(zeros, zeros), reverse=True)
        return [carry["forward"].stack(), backward]


class CachedSampler(cached.RasterSampler):
    """`network`'s logits a pixel at a time (`cached.RasterSampler`), with `labels` int `[B]`
    for a conditional network; Row LSTM (`_RowLSTMLayer`) or Diagonal BiLSTM
    (`_DiagonalBiLSTMLayer`) layers.

    State from row to row: the type-A convolution's cache of the image rows above and each
    recurrent layer's states of the row above. From column to column: the type-A
    convolution's window and each layer's carry. At a pixel: the type-A convolution, then per
    layer its output, the 1x1 output convolution and the residual sum, then the head.
    """

    def __init__(self, network, image_shape, num_layers, labels=None, rnn="row_lstm"):
        _, self.width, self.channels = image_shape
        layer = network.get_layer
        self.first = cached.CausalConv([layer("conv_a")], self.width)
        kind = _RowLSTMLayer if rnn == "row_lstm" else _DiagonalBiLSTMLayer
        self.layers = []
        for index in range(num_layers):
            label_bias = None if labels is None else tf.cast(layer(f"{rnn}{index}_class_bias")(labels), tf.float32)
            self.layers.append({
                "recurrent": kind(layer(f"{rnn}{index}"), self.width, label_bias),
                "out": cached.CausalConv([layer(f"{rnn}{index}_out")], self.width),
            })
        self.head = cached.CausalConv([layer("head")], self.width)
        self.logits = cached.CausalConv([layer("logits")], self.width)
        self.dtype = self.first.dtype

    def initial_state(self, batch_size):
        return [self.first.initial_cache(batch_size),
                [stack["recurrent"].initial_state(batch_size) for stack in self.layers]]

    def begin_row(self, state):
        return _CachedRow(self, state)


class _CachedRow:
    def __init__(self, sampler, state):
        self.sampler = sampler
        self.cache, states = state
        self.above = sampler.first.rows_above(self.cache)
        self.rows = [stack["recurrent"].begin_row(s) for stack, s in zip(sampler.layers, states)]

    def initial_carry(self, batch_size):
        sampler = self.sampler
        return {"window": sampler.first.initial_window(batch_size),
                "layers": [stack["recurrent"].initial_carry(batch_size) for stack in sampler.layers]}

    def pixel(self, j, image_pixel, carry):
        """As `network`: type A -> residual [recurrent layer -> 1x1 B] -> ReLU -> 1x1 B -> ReLU -> logits."""
        sampler = self.sampler
        x, window = sampler.first.at(carry["window"], image_pixel, None if self.above is None else cached.entry(self.above, j))
        layers = []
        for stack, row, layer_carry in zip(sampler.layers, self.rows, carry["layers"]):
            h, layer_carry = stack["recurrent"].at(j, x, row, layer_carry)
            layers.append(layer_carry)
            y, _ = stack["out"].at((), h)
            x = x + y
        x, _ = sampler.head.at((), tf.nn.relu(x))
        logits, _ = sampler.logits.at((), tf.nn.relu(x))
        outputs = tf.reshape(logits, [-1, sampler.channels, likelihoods.NUM_LEVELS])
        return outputs, {"window": window, "layers": layers}

    def finish_pixel(self, image_pixel, carry):
        return {**carry, "window": self.sampler.first.with_latest(carry["window"], image_pixel)}

    def end(self, carry, image_row):
        states = [stack["recurrent"].end(row, layer_carry)
                  for stack, row, layer_carry in zip(self.sampler.layers, self.rows, carry["layers"])]
        return [self.sampler.first.next_cache(self.cache, image_row), states]
