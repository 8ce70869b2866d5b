"""DCGAN networks (Radford et al., 2016): strided (transposed) convolutions, batch norm in
the generator, LeakyReLU(0.2) in the discriminator, no pooling and no hidden dense layers.

Generator: Dense -> BN -> ReLU -> reshape to (H/2^k, W/2^k, widths[0]) -> k-1 x
[ConvT(4, stride 2) -> BN -> ReLU] -> ConvT(C, 4, stride 2) -> tanh, k = len(widths).
Discriminator: len(widths) x [Conv(4, stride 2) -> LeakyReLU(0.2)] -> Flatten ("features")
-> Dense(1) logit; optionally every Conv and Dense spectrally normalised (Miyato et al. 2018)
and a minibatch standard-deviation map before the last convolution (Karras et al. 2018).
"""
from __future__ import annotations

import keras

from keras_gen import distribute
from keras_gen.errors import KerasGenError
from keras_gen.layers import BatchNormalization, LeakyReLU, MinibatchStdDev, SpectralNorm


def generator(image_shape, latent_dim, widths, dtype="float32"):
    h, w, c = image_shape
    scale = 2 ** len(widths)
    if h % scale or w % scale:
        raise KerasGenError(
            f"image size {h}x{w} is not divisible by 2^{len(widths)} (one stride-2 layer per generator width)"
        )
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Dense((h // scale) * (w // scale) * widths[0], dtype=dtype),
        BatchNormalization(synchronized=distribute.multi_replica(), dtype=dtype),
        keras.layers.ReLU(dtype=dtype),
        keras.layers.Reshape((h // scale, w // scale, widths[0]), dtype=dtype),
    ]
    for width in widths[1:]:
        layers += [
            keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", dtype=dtype),
            BatchNormalization(synchronized=distribute.multi_replica(), dtype=dtype),
            keras.layers.ReLU(dtype=dtype),
        ]
    layers += [
        keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same", dtype=dtype),
        keras.layers.Activation("tanh", dtype="float32"),  # images in float32 whatever the policy
    ]
    return keras.Sequential(layers, name="generator")


def discriminator(image_shape, widths, dtype="float32", spectral_norm=False, minibatch_stddev=False):
    def linear(layer):
        return SpectralNorm(layer) if spectral_norm else layer

    layers = [keras.Input(image_shape)]
    for i, width in enumerate(widths):
        if minibatch_stddev and i == len(widths) - 1:
            layers.append(MinibatchStdDev(dtype=dtype))
        layers += [
            linear(keras.layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype)),
            LeakyReLU(0.2, dtype=dtype),
        ]
    layers += [
        keras.layers.Flatten(dtype=dtype, name="features"),
        linear(keras.layers.Dense(1, dtype="float32")),  # logits in float32
    ]
    return keras.Sequential(layers, name="discriminator")
