"""PixelCNN network (van den Oord et al., 2016): masked convolutions, causal in raster order.

MaskedConv2D type A (first_kernel_size) -> num_layers x residual [ReLU -> MaskedConv2D type B
(kernel_size)] -> ReLU -> 1x1 type B (filters) -> ReLU -> 1x1 type B (C*256 logits).
Input float images `[B, rows, W, C]` in [-1, 1] (any number of rows), output logits float32
`[B, rows, W, C, 256]`.
"""
from __future__ import annotations

import keras

from keras_gen import likelihoods
from keras_gen.layers import MaskedConv2D


def network(image_shape, filters, num_layers, kernel_size, first_kernel_size, dtype):
    _, w, c = image_shape
    levels = likelihoods.NUM_LEVELS
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
    x = MaskedConv2D(c * levels, 1, "B", c, dtype="float32", name="logits")(x)
    outputs = keras.layers.Reshape((-1, w, c, levels), dtype="float32")(x)
    return keras.Model(inputs, outputs, name="pixelcnn_network")
