"""The base of PixelRNN's LSTM layers (`RowLSTM`, `DiagonalBiLSTM`): what they share in
arguments, checks, the forget gates' initial bias and config."""
from __future__ import annotations

import keras
import numpy as np

from keras_gen.errors import KerasGenError


class PixelLSTMLayer(keras.layers.Layer):
    """An LSTM over feature maps whose units are split into colour groups (unit u belongs to
    group u · color_channels // units, as `MaskedConv2D` groups its features).

    Args:
      units: hidden (and cell) units per pixel; a positive multiple of `color_channels`.
      color_channels: sub-pixels per pixel of the modelled image (1 grey, 3 RGB).
      unit_forget_bias: start the forget gates' bias at 1 (as Keras' LSTM), so the cell carries
        information from the first step.
      kernel_initializer, state_initializer: of the input-to-state and state-to-state kernels.
    """

    def __init__(self, units, color_channels=1, unit_forget_bias=True, kernel_initializer="glorot_uniform",
                 state_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.color_channels = int(color_channels)
        if self.units < 1 or self.color_channels < 1 or self.units % self.color_channels:
            raise KerasGenError(f"{type(self).__name__} units={units!r} must be a positive multiple of "
                                f"color_channels={color_channels!r}")
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.state_initializer = keras.initializers.get(state_initializer)

    def checked_features(self, inputs_shape) -> int:
        """The input's features, a multiple of the colour groups (a one-line error otherwise)."""
        features = inputs_shape[-1]
        if features is None or features % self.color_channels:
            raise KerasGenError(f"{type(self).__name__} input features {features} are not a multiple of "
                                f"color_channels={self.color_channels}")
        return int(features)

    def initial_bias(self):
        """The gates' bias initializer, in the order o, f, i, g: 1 for f with
        `unit_forget_bias`, else 0."""
        bias = np.zeros(4 * self.units, "float32")
        if self.unit_forget_bias:
            bias[self.units:2 * self.units] = 1.0
        return keras.initializers.Constant(bias)

    def compute_output_shape(self, inputs_shape, gate_bias_shape=None):
        return (*inputs_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            color_channels=self.color_channels,
            unit_forget_bias=self.unit_forget_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            state_initializer=keras.initializers.serialize(self.state_initializer),
        )
        return config
