"""DiagonalBiLSTM: the Diagonal BiLSTM layer of PixelRNN (van den Oord, Kalchbrenner,
Kavukcuoglu 2016, §3.2).

An LSTM that sweeps the image along its diagonals, in two directions. Each direction skews
its input map, row i shifted right by i, so that the pixels of one diagonal stand in one
column: `skewed[i, i + j] = x[i, j]` (`[H, W]` -> `[H, W + H - 1]`, zeros elsewhere). It then
runs down the columns of the skewed map, left to right; at skewed column s,

    [o, f, i, g] = σ(K_ss ⊛ h_{s-1} + K_is ⊛ x_s)               (σ = sigmoid; tanh for g)
    c_s = f ⊙ c_{s-1} + i ⊙ g,   h_s = o ⊙ tanh(c_s)

with K_is a 1x1 input-to-state convolution and K_ss a 2x1 state-to-state convolution along the
column: the state at skewed (i, s) reads the previous column at rows i − 1 and i, that is the
original pixels above, (i − 1, j), and to the left, (i, j − 1). Unskewed, the state at (i, j)
has seen every pixel above and to the left of it. Skew positions that are no pixel get zero
pre-activations (the skew pads the gates' input, bias included, with zeros): left of a row's
start they read only such positions, so their states stay exactly zero (σ(0)·0 + σ(0)·tanh(0)),
as the zero padding of a convolution; right of a row's end they feed only positions right of
later rows' ends, which are no pixels either.

- Left to right: the image as it is; K_is is masked (type B) so that a unit of colour group
  g sees the pixel's own input groups up to g only (`causal_mask`).
- Right to left: the image mirrored left-right, so the state at (i, j) sees the pixels above
  and to the RIGHT of it, including later pixels of row i. Its output map is therefore shifted
  down one row before it is added: the output at (i, j) takes the state of (i − 1, j), which
  saw rows < i only. K_is needs no mask there.

The layer's output is h_left-to-right + shift_down(h_right-to-left): together, its input at
every position above (rows < i, all columns) and to the left in row i, and its own position's
earlier colour groups: the layer leaves no blind spot. In PixelRNN, behind a type-A first
convolution whose features at a position never hold that position's pixel, the row above's
last pixel reaches (i, j) only through row i's features at columns >= W - 1 - r (r the first
kernel's radius), so it stays unseen from a row's first W - 1 - r pixels
(`tests/models/test_pixelrnn.py` checks that field exactly).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.layers.masked_conv2d import causal_mask
from keras_gen.layers.pixel_lstm import PixelLSTMLayer


def skew(x):
    """x `[B, H, W, F]` -> `[B, H, W + H - 1, F]` with row i shifted right by i
    (`skewed[:, i, i + j] = x[:, i, j]`), zeros elsewhere.

    Pads every row with H zeros and reads the flat rows again H - 1 shorter: element (i, j),
    at flat offset i (W + H) + j = i (W + H - 1) + (i + j), lands in (i, i + j). Reshapes only,
    no gather: TensorFlow's vectorised jacobians (pfor) crash on a batched gather in a scan."""
    shape = tf.shape(x)
    batch, height, width, features = shape[0], shape[1], shape[2], shape[3]
    flat = tf.reshape(tf.pad(x, [[0, 0], [0, 0], [0, height], [0, 0]]), [batch, -1, features])
    return tf.reshape(flat[:, :height * (width + height - 1)], [batch, height, width + height - 1, features])


def unskew(x, width):
    """`[B, H, W + H - 1, F]` -> `[B, H, W, F]`: the inverse of `skew`, by the same reshapes."""
    shape = tf.shape(x)
    batch, height, features = shape[0], shape[1], shape[3]
    flat = tf.pad(tf.reshape(x, [batch, -1, features]), [[0, 0], [0, height], [0, 0]])
    return tf.reshape(flat, [batch, height, width + height, features])[:, :, :width]


@keras.saving.register_keras_serializable(package="keras_gen")
class DiagonalBiLSTM(PixelLSTMLayer):
    """Diagonal BiLSTM over feature maps, causal in raster order (sub-pixels R, G, B within a
    pixel).

    Args:
      units: hidden (and cell) units per pixel and direction; a multiple of `color_channels`,
        unit u belonging to colour group u · color_channels // units.
      color_channels: sub-pixels per pixel of the modelled image (1 grey, 3 RGB); the input
        features must be a multiple of it (grouped as `MaskedConv2D` groups them).
      unit_forget_bias: start the forget gates' bias at 1 (as Keras' LSTM).

    Call: `layer(x, gate_bias=None)` with x `[B, rows, W, features]` (any number of rows) and an
    optional per-image bias of both directions' pre-activations, `[B, 4·units]` in the order o,
    f, i, g (a class embedding). Returns `[B, rows, W, units]` in the compute dtype. K_is runs
    in the compute dtype; K_ss, the gates and the cells in float32 whatever the policy.
    """

    DIRECTIONS = ("forward", "backward")  # left to right, right to left

    def build(self, inputs_shape, gate_bias_shape=None):
        features = self.checked_features(inputs_shape)
        gates = 4 * self.units
        self.input_kernels, self.state_kernels, self.biases = {}, {}, {}
        for direction in self.DIRECTIONS:
            self.input_kernels[direction] = self.add_weight(
                name=f"{direction}_input_kernel", shape=(features, gates), initializer=self.kernel_initializer)
            # [rows i - 1 and i of the previous skewed column, units, gates]; float32 under any
            # policy (autocast=False), as the recurrence runs in float32.
            self.state_kernels[direction] = self.add_weight(
                name=f"{direction}_state_kernel", shape=(2, self.units, gates), initializer=self.state_initializer,
                autocast=False)
            self.biases[direction] = self.add_weight(
                name=f"{direction}_bias", shape=(gates,), initializer=self.initial_bias(), autocast=False)
        # The left-to-right direction's 1x1 colour mask, the same for each of the four gates.
        per_gate = causal_mask((1, 1), features, self.units, "B", self.color_channels)[0, 0]
        self.input_mask = np.concatenate([per_gate] * 4, axis=-1)

    def _direction(self, x, direction, gate_bias):
        """One direction's hidden states `[B, rows, W, units]` float32 of x `[B, rows, W, F]` as
        it is laid out (the caller mirrors it for right to left)."""
        kernel = ops.cast(self.input_kernels[direction], self.compute_dtype)
        if direction == "forward":
            kernel = kernel * ops.convert_to_tensor(self.input_mask, self.compute_dtype)
        # K_is ⊛ x for every pixel at once (a 1x1 convolution needs no state), then float32.
        pre_input = ops.cast(ops.matmul(x, kernel), "float32") + ops.cast(self.biases[direction], "float32")
        if gate_bias is not None:
            pre_input = pre_input + ops.cast(gate_bias, "float32")[:, None, None, :]
        width = tf.shape(x)[2]
        skewed = skew(pre_input)  # [B, H, S, 4u], S = W + H - 1
        state_kernel = tf.reshape(ops.cast(self.state_kernels[direction], "float32"), [2 * self.units, -1])
        batch, height = tf.shape(x)[0], tf.shape(x)[1]
        zeros = tf.zeros(tf.stack([batch, height, self.units]), tf.float32)

        def next_column(state, pre_column):
            h, c = state  # skewed column s - 1, [B, H, units] each; pre_column [B, H, 4u]
            # K_ss: row i of the column reads rows i - 1 and i of the previous one (a 2x1
            # convolution with zero padding above), as one product of the two side by side.
            pair = tf.concat([tf.pad(h, [[0, 0], [1, 0], [0, 0]])[:, :-1], h], axis=-1)  # [B, H, 2u]
            recurrent = tf.reshape(tf.linalg.matmul(tf.reshape(pair, [-1, 2 * self.units]), state_kernel),
                                   tf.shape(pre_column))
            o, f, i, g = tf.split(pre_column + recurrent, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        columns = tf.transpose(skewed, [2, 0, 1, 3])  # [S, B, H, 4u]
        hidden, _ = tf.scan(next_column, columns, initializer=(zeros, zeros))  # [S, B, H, units]
        return unskew(tf.transpose(hidden, [1, 2, 0, 3]), width)

    def call(self, inputs, gate_bias=None):
        x = ops.cast(inputs, self.compute_dtype)
        forward = self._direction(x, "forward", gate_bias)
        backward = tf.reverse(self._direction(tf.reverse(x, [2]), "backward", gate_bias), [2])
        # Right to left saw later pixels of its own row: row i takes row i - 1's states.
        backward = tf.pad(backward, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]
        return ops.cast(forward + backward, self.compute_dtype)
