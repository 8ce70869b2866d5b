"""RowLSTM: the Row LSTM layer of PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016, §3.1).

The image is processed one row at a time, top to bottom. For row i, with h_{-1} = c_{-1} = 0:

    [o_i, f_i, i_i, g_i] = σ(K_ss ⊛ h_{i-1} + K_is ⊛ x_i)      (σ = sigmoid; tanh for g)
    c_i = f_i ⊙ c_{i-1} + i_i ⊙ g_i
    h_i = o_i ⊙ tanh(c_i)

K_is is a 1 x k convolution along the row, masked (type B) so that the state of pixel j sees
the inputs at columns < j and, at column j, only the colour groups up to its own (see
`keras_gen.layers.masked_conv2d.causal_mask`). K_ss is an unmasked 1 x k convolution of the
whole previous row's hidden state: the row above lies entirely in the past. Stacked, each
layer widens the receptive field by k // 2 columns per row above: a triangle.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gen.errors import KerasGenError
from keras_gen.layers.masked_conv2d import causal_mask
from keras_gen.layers.pixel_lstm import PixelLSTMLayer


def _positive_odd(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1 or value % 2 == 0:
        raise KerasGenError(f"{name} must be a positive odd whole number, got {value!r}")
    return int(value)


@keras.saving.register_keras_serializable(package="keras_gen")
class RowLSTM(PixelLSTMLayer):
    """Row LSTM over feature maps, causal in raster order (sub-pixels R, G, B within a pixel).

    Args:
      units: hidden units h (and cell units) per pixel; a multiple of `color_channels`, unit u
        belonging to colour group u · color_channels // units.
      input_kernel_size: width k of the masked input-to-state convolution K_is (odd).
      state_kernel_size: width k of the state-to-state convolution K_ss (odd).
      color_channels: sub-pixels per pixel of the modelled image (1 grey, 3 RGB); the input
        features must be a multiple of it (grouped as `MaskedConv2D` groups them).
      unit_forget_bias: start the forget gate's bias at 1 (as Keras' LSTM), so the cell
        carries information down the rows from the first step.

    Call: `layer(x, gate_bias=None)` with x `[B, rows, W, features]` (any number of rows) and an
    optional per-image bias of the pre-activations, `[B, 4·units]` in the order o, f, i, g (a
    class embedding). Returns h `[B, rows, W, units]` in the compute dtype. Only K_is runs in
    the compute dtype; K_ss, the gates and the cell run in float32 whatever the policy (a
    bfloat16 state would round at every row).
    """

    def __init__(self, units, input_kernel_size=3, state_kernel_size=3, color_channels=1, unit_forget_bias=True,
                 kernel_initializer="glorot_uniform", state_initializer="orthogonal", **kwargs):
        super().__init__(units, color_channels, unit_forget_bias, kernel_initializer, state_initializer, **kwargs)
        self.input_kernel_size = _positive_odd("input_kernel_size", input_kernel_size)
        self.state_kernel_size = _positive_odd("state_kernel_size", state_kernel_size)

    def build(self, inputs_shape, gate_bias_shape=None):
        features = self.checked_features(inputs_shape)
        gates = 4 * self.units
        self.input_kernel = self.add_weight(name="input_kernel", shape=(1, self.input_kernel_size, features, gates),
                                            initializer=self.kernel_initializer)
        # The recurrence runs in float32 under any policy: these two are read unrounded
        # (autocast=False), where a mixed policy would hand them to `call` as bfloat16.
        self.state_kernel = self.add_weight(name="state_kernel", shape=(self.state_kernel_size, self.units, gates),
                                            initializer=self.state_initializer, autocast=False)
        self.bias = self.add_weight(name="bias", shape=(gates,), initializer=self.initial_bias(), autocast=False)
        # The same colour mask for each of the four gates: unit u of every gate is in group
        # u·C // units. Numpy, so a constant of every graph, never a weight to save or train.
        per_gate = causal_mask((1, self.input_kernel_size), features, self.units, "B", self.color_channels)
        self.input_mask = np.concatenate([per_gate] * 4, axis=-1)

    def call(self, inputs, gate_bias=None):
        x = ops.cast(inputs, self.compute_dtype)
        input_kernel = ops.cast(self.input_kernel, self.compute_dtype) * ops.convert_to_tensor(
            self.input_mask, self.compute_dtype)
        state_kernel = ops.cast(self.state_kernel, "float32")
        # K_is ⊛ x_i for every row at once (it needs no recurrent state), in the compute dtype;
        # from here on float32: the recurrence is many small steps, where bfloat16 saves no
        # time and its rounding would accumulate down the rows.
        pre_input = ops.cast(ops.conv(x, input_kernel, padding="same"), "float32") + ops.cast(self.bias, "float32")
        if gate_bias is not None:
            pre_input = pre_input + ops.cast(gate_bias, "float32")[:, None, None, :]
        shape = tf.shape(x)
        zeros = tf.zeros(tf.stack([shape[0], shape[2], self.units]), tf.float32)

        def next_row(state, pre_row):
            h, c = state  # row i-1, [B, W, units] each
            recurrent = ops.conv(h, state_kernel, padding="same")
            o, f, i, g = tf.split(pre_row + recurrent, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            return h, c

        # Rows first for the scan; tf.scan takes any number of rows (the sampler runs the
        # network on the rows above the pixel it draws only).
        rows = tf.transpose(pre_input, [1, 0, 2, 3])
        hidden, _ = tf.scan(next_row, rows, initializer=(zeros, zeros))
        return ops.cast(tf.transpose(hidden, [1, 0, 2, 3]), self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(input_kernel_size=self.input_kernel_size, state_kernel_size=self.state_kernel_size)
        return config
