"""Fully connected networks of the original GAN (Goodfellow et al., 2014): no convolutions, so
they work on images of any size, and every pixel is one input (or output) unit.

Generator: z -> len(units) x [Dense -> ReLU] -> Dense(H*W*C) -> tanh -> reshape to (H, W, C).
Discriminator: Flatten -> len(units) x [Dense -> LeakyReLU(0.2) -> Dropout], the last
activation named "features" -> Dense(1) logit.

The paper's MNIST networks used rectifier and sigmoid units in G and maxout units with
dropout in D; here G ends in tanh (the models work in [-1, 1]) and D uses LeakyReLU(0.2),
which trains as well with Adam and keeps the network a plain stack of Keras layers.
"""
from __future__ import annotations

import math

import keras

from keras_gen.errors import KerasGenError
from keras_gen.layers import GlobalBatchDropout, LeakyReLU


def _check_units(units, what):
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise KerasGenError(f"{what} must be one or more positive layer sizes, got {list(units)}")
    return units


def generator(image_shape, latent_dim, units, dtype="float32"):
    units = _check_units(units, "generator_units")
    layers = [keras.Input((latent_dim,))]
    for width in units:
        layers += [keras.layers.Dense(width, dtype=dtype), keras.layers.ReLU(dtype=dtype)]
    layers += [
        keras.layers.Dense(math.prod(image_shape), dtype=dtype),
        keras.layers.Activation("tanh", dtype="float32"),  # images in float32 whatever the policy
        keras.layers.Reshape(tuple(image_shape), dtype="float32"),
    ]
    return keras.Sequential(layers, name="generator")


def discriminator(image_shape, units, dropout=0.0, dtype="float32"):
    units = _check_units(units, "discriminator_units")
    if not 0.0 <= float(dropout) < 1.0:
        raise KerasGenError(f"discriminator_dropout must be in [0, 1), got {dropout}")
    layers = [keras.Input(tuple(image_shape)), keras.layers.Flatten(dtype=dtype)]
    for i, width in enumerate(units):
        last = i == len(units) - 1
        layers += [
            keras.layers.Dense(width, dtype=dtype),
            LeakyReLU(0.2, dtype=dtype, name="features" if last else None),
        ]
        if dropout:
            layers.append(GlobalBatchDropout(float(dropout), dtype=dtype))
    layers.append(keras.layers.Dense(1, dtype="float32"))  # logits in float32
    return keras.Sequential(layers, name="discriminator")
