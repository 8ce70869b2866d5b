"""Class-conditional networks: a DCGAN-style generator with conditional batch norm, a
projection discriminator and an auxiliary-classifier discriminator.

Generator `[z, labels] -> image`: e = Embedding(K, embed_dim)(labels) ("label_embedding");
Dense -> reshape to (H/2^k, W/2^k, widths[0]) -> CBN(e) -> ReLU -> k-1 x [ConvT(4, stride 2)
-> CBN(e) -> ReLU] -> ConvT(C, 4, stride 2) -> tanh, k = len(widths). Every batch norm is a
`ConditionalBatchNormalization` whose per-channel gain and bias are linear in e (de Vries et
al. 2017; Miyato & Koyama 2018), so the class acts at every resolution. The layers before a
CBN have no bias (the CBN's class bias replaces it).

Discriminators share DCGAN's trunk: len(widths) x [Conv(4, stride 2) -> LeakyReLU(0.2)] ->
Flatten, the layer `features` = φ(x), which never sees the label.
- Projection (Miyato & Koyama 2018, eq. 3): logit(x, y) = ψ(φ(x)) + e_y · φ(x), ψ = Dense(1)
  ("linear"), e_y row y of Embedding(K, |φ|) ("class_embedding"), the inner product a `Dot`
  layer ("projection"). Inputs `[images, labels]`, output logits `[B, 1]`.
- Auxiliary classifier (Odena et al. 2017): inputs images only (the class must be read off
  the image), outputs `[logits [B, 1] ("adversarial"), class_logits [B, K] ("classes")]`.

Heads run in float32 whatever the policy; the generator's image is float32.
"""
from __future__ import annotations

import keras

from keras_gen.errors import KerasGenError
from keras_gen.layers import ConditionalBatchNormalization, LeakyReLU


def _check_classes(num_classes):
    if num_classes is None or int(num_classes) < 2:
        raise KerasGenError(f"a class-conditional network needs num_classes >= 2, got {num_classes}")
    return int(num_classes)


def generator(image_shape, latent_dim, num_classes, widths, embed_dim=32, dtype="float32"):
    h, w, c = image_shape
    num_classes = _check_classes(num_classes)
    scale = 2 ** len(widths)
    if h % scale or w % scale:
        raise KerasGenError(
            f"image size {h}x{w} is not divisible by 2^{len(widths)} (one stride-2 layer per generator width)"
        )
    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    e = keras.layers.Embedding(num_classes, embed_dim, dtype=dtype, name="label_embedding")(labels)

    x = keras.layers.Dense((h // scale) * (w // scale) * widths[0], use_bias=False, dtype=dtype)(z)
    x = keras.layers.Reshape((h // scale, w // scale, widths[0]), dtype=dtype)(x)
    x = ConditionalBatchNormalization(dtype=dtype, name="cbn_0")([x, e])
    x = keras.layers.ReLU(dtype=dtype)(x)
    for i, width in enumerate(widths[1:], start=1):
        x = keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
        x = ConditionalBatchNormalization(dtype=dtype, name=f"cbn_{i}")([x, e])
        x = keras.layers.ReLU(dtype=dtype)(x)
    x = keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same", dtype=dtype)(x)
    images = keras.layers.Activation("tanh", dtype="float32", name="image")(x)  # float32 whatever the policy
    return keras.Model([z, labels], images, name="generator")


def _trunk(images, widths, dtype):
    x = images
    for width in widths:
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype)(x)
        x = LeakyReLU(0.2, dtype=dtype)(x)
    return keras.layers.Flatten(dtype=dtype, name="features")(x)


def projection_discriminator(image_shape, num_classes, widths, dtype="float32"):
    num_classes = _check_classes(num_classes)
    images = keras.Input(image_shape, name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    phi = _trunk(images, widths, dtype)
    unconditional = keras.layers.Dense(1, dtype="float32", name="linear")(phi)
    e_y = keras.layers.Embedding(num_classes, phi.shape[-1], dtype="float32", name="class_embedding")(labels)
    projection = keras.layers.Dot(axes=1, dtype="float32", name="projection")([e_y, phi])  # e_y · φ(x), [B, 1]
    logits = keras.layers.Add(dtype="float32", name="logits")([unconditional, projection])
    return keras.Model([images, labels], logits, name="discriminator")


def auxiliary_discriminator(image_shape, num_classes, widths, dtype="float32"):
    num_classes = _check_classes(num_classes)
    images = keras.Input(image_shape, name="images")
    phi = _trunk(images, widths, dtype)
    logits = keras.layers.Dense(1, dtype="float32", name="adversarial")(phi)
    class_logits = keras.layers.Dense(num_classes, dtype="float32", name="classes")(phi)
    return keras.Model(images, [logits, class_logits], name="discriminator")
