"""PixelRNN network with Row LSTM layers (van den Oord, Kalchbrenner, Kavukcuoglu 2016, Table 1).

    7x7 MaskedConv2D type A (2h features)
    -> num_layers x residual [RowLSTM (h units; K_is 1 x k masked B, K_ss 1 x k unmasked)
                              -> 1x1 MaskedConv2D type B back to 2h, added to the layer's input]
    -> ReLU -> 1x1 type B (2h) -> ReLU -> 1x1 type B (C*256 logits)

As in the paper (§3.3, Figure 5), the residual stream has 2h feature maps and each Row LSTM h
units per gate, its output brought back to 2h by the 1x1 convolution. Class-conditional:
a learned bias per class and layer added to the four gates' pre-activations (the
`V^T y` term of conditional PixelCNN, here on the LSTM gates).

Input float images `[B, rows, W, C]` in [-1, 1] (any number of rows; and int labels `[B]`
when conditional); output logits float32 `[B, rows, W, C, 256]`.
"""
from __future__ import annotations

import keras

from keras_gen import likelihoods
from keras_gen.layers import MaskedConv2D, RowLSTM


def network(image_shape, hidden_size, num_layers, first_kernel_size, input_kernel_size, state_kernel_size, dtype,
            num_classes=None, name="pixelrnn_network"):
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
        gate_bias = None
        if labels is not None:
            gate_bias = keras.layers.Embedding(num_classes, 4 * hidden_size, dtype=dtype,
                                               name=f"row_lstm{layer}_class_bias")(labels)
        h = RowLSTM(hidden_size, input_kernel_size, state_kernel_size, c, dtype=dtype,
                    name=f"row_lstm{layer}")(x, gate_bias=gate_bias)
        h = MaskedConv2D(features, 1, "B", c, dtype=dtype, name=f"row_lstm{layer}_out")(h)
        x = keras.layers.Add(dtype=dtype, name=f"row_lstm{layer}_residual")([x, h])

    x = keras.layers.ReLU(dtype=dtype)(x)
    x = MaskedConv2D(features, 1, "B", c, dtype=dtype, name="head")(x)
    x = keras.layers.ReLU(dtype=dtype)(x)
    # Logits in float32: a softmax over 256 values loses precision in bf16.
    x = MaskedConv2D(c * levels, 1, "B", c, dtype="float32", name="logits")(x)
    outputs = keras.layers.Reshape((-1, w, c, levels), dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
