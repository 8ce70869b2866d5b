"""Networks of the domain-adaptation models (`keras_gen.models.domain_adaptation`): the digit
networks of DANN (Ganin & Lempitsky 2015, Ganin et al. 2016 JMLR, fig. 4) and ADDA (Tzeng et al.
2017, sec. 4.1: LeNet and a 500-500 adversary), at CPU size.

Encoder: len(filters) x [Conv(5x5, valid) -> ReLU -> MaxPool(2)] -> Flatten, then optionally
Dense(feature_dim) -> ReLU; its output ("features") is what the domains are aligned on. With
the defaults (32, 48) on 28x28 images: DANN's 768 features (4 x 4 x 48).
Classifier: len(widths) x [Dense -> ReLU] -> Dense(num_classes) logits (float32).
Discriminator: len(widths) x [Dense -> ReLU] -> Dense(1) domain logit (float32); which domain
is positive is the model's choice (DANN: the target, ADDA: the source).

Every network takes the model's compute dtype and returns float32 logits whatever the policy.
"""
from __future__ import annotations

import keras

from keras_gen.errors import KerasGenError

KERNEL = 5


def feature_size(image_shape, filters, feature_dim=None) -> int:
    """The encoder's output width for `image_shape`; a one-line error if the image is too small."""
    h, w, _ = image_shape
    for _ in filters:
        h, w = (h - KERNEL + 1) // 2, (w - KERNEL + 1) // 2
        if h < 1 or w < 1:
            raise KerasGenError(
                f"images of {image_shape[0]}x{image_shape[1]} are too small for {len(filters)} 5x5 convolutions "
                "each followed by 2x2 pooling; give fewer filters")
    return feature_dim if feature_dim is not None else h * w * filters[-1]


def encoder(image_shape, filters, feature_dim=None, dtype="float32", name="encoder"):
    """Images in [-1, 1] `[B, H, W, C]` -> features `[B, F]` (compute dtype)."""
    feature_size(image_shape, filters, feature_dim)  # checks the size
    layers = [keras.Input(tuple(image_shape))]
    for width in filters:
        layers += [
            keras.layers.Conv2D(width, KERNEL, padding="valid", dtype=dtype),
            keras.layers.ReLU(dtype=dtype),
            keras.layers.MaxPooling2D(2, dtype=dtype),
        ]
    layers.append(keras.layers.Flatten(dtype=dtype, name=None if feature_dim else "features"))
    if feature_dim:
        layers += [keras.layers.Dense(feature_dim, dtype=dtype), keras.layers.ReLU(dtype=dtype, name="features")]
    return keras.Sequential(layers, name=name)


def _mlp(features, widths, outputs, dtype, name):
    layers = [keras.Input((features,))]
    for width in widths:
        layers += [keras.layers.Dense(width, dtype=dtype), keras.layers.ReLU(dtype=dtype)]
    layers.append(keras.layers.Dense(outputs, dtype="float32"))  # logits in float32
    return keras.Sequential(layers, name=name)


def classifier(features, widths, num_classes, dtype="float32", name="classifier"):
    """Features `[B, F]` -> class logits `[B, num_classes]` float32."""
    return _mlp(features, widths, num_classes, dtype, name)


def discriminator(features, widths, dtype="float32", name="discriminator"):
    """Features `[B, F]` -> domain logit `[B, 1]` float32 (which domain is positive: the model's choice)."""
    return _mlp(features, widths, 1, dtype, name)
