"""BigGAN networks (Brock et al., 2019) at CPU size: two up-sampling residual blocks, so images
of any H x W divisible by 4 (28x28 digits: 7x7 -> 14x14 -> 28x28), grey or colour.

Generator, with `chunk = latent_dim / 3` and widths (4c, 2c, c) for `channels` c:

    z = [z_0, z_1, z_2]                        (hierarchical latents, one chunk per stage)
    e = shared_embedding(y)                     (one class embedding for every block)
    x = SN Dense(z_0) -> reshape [H/4, W/4, 4c]
    block_i (i = 1, 2), condition c_i = [e, z_i]:
        CBN(x, c_i) -> ReLU -> up 2x (nearest) -> SN conv3x3 -> CBN(., c_i) -> ReLU -> SN conv3x3
        + shortcut: up 2x -> SN conv1x1                        -> [H/2, W/2, 2c], then [H, W, c]
    SelfAttention2D (SN) after the stage at `attention_resolution` (H/4 or H/2; None: none)
    BN -> ReLU -> SN conv3x3 (C) -> tanh (float32)

Discriminator, widths (c, 2c, 4c):

    block_1: SN conv3x3 -> ReLU -> SN conv3x3 -> avg-pool 2x; shortcut avg-pool -> SN conv1x1
    block_2: ReLU -> SN conv3x3 -> ReLU -> SN conv3x3 -> avg-pool 2x; shortcut SN conv1x1 -> avg-pool
    block_3: as block_2 without pooling                        -> [H/4, W/4, 4c]
    SelfAttention2D (SN) after the block whose output is at `attention_resolution`
    ReLU -> sum over positions ("features", φ(x) [B, 4c], float32)
    logit = SN Dense(1)(φ(x)) + <SN embed(y), φ(x)>     (projection, Miyato & Koyama 2018)

All kernels start orthogonal (BigGAN's initialisation). Unconditional (`num_classes=None`):
no embedding (the blocks are conditioned on their z chunk alone) and no projection.
"""
from __future__ import annotations

import keras
from keras import ops

from keras_gen import distribute
from keras_gen.errors import KerasGenError
from keras_gen.layers.batch_normalization import BatchNormalization
from keras_gen.layers.conditional_batch_norm import ConditionalBatchNormalization
from keras_gen.layers.self_attention import SelfAttention2D
from keras_gen.layers.spectral_norm import SpectralNorm

# Up-sampling blocks of the generator; z is split into NUM_BLOCKS + 1 chunks.
NUM_BLOCKS = 2
INITIALIZER = "orthogonal"


def check_shapes(image_shape, latent_dim, attention_resolution):
    """Clear errors for sizes the networks cannot take."""
    h, w, _ = image_shape
    scale = 2**NUM_BLOCKS
    if h % scale or w % scale:
        raise KerasGenError(
            f"image size {h}x{w} is not divisible by {scale} (BigGAN starts from an H/{scale} x W/{scale} map "
            f"and up-samples it {NUM_BLOCKS} times)"
        )
    chunks = NUM_BLOCKS + 1
    if latent_dim % chunks:
        raise KerasGenError(
            f"latent_dim must be divisible by {chunks} (hierarchical latents: one chunk for the first dense "
            f"layer and one per up-sampling block), got {latent_dim}; e.g. {latent_dim - latent_dim % chunks} "
            f"or {latent_dim + chunks - latent_dim % chunks}"
        )
    allowed = (h // 4, h // 2)
    if attention_resolution is not None and attention_resolution not in allowed:
        raise KerasGenError(
            f"attention_resolution must be the height of a feature map with attention, {allowed[0]} (H/4) or "
            f"{allowed[1]} (H/2) for {h}x{w} images, or None for no attention; got {attention_resolution!r}"
        )


def _sn_conv(filters, kernel_size, name, dtype):
    conv = keras.layers.Conv2D(filters, kernel_size, padding="same", kernel_initializer=INITIALIZER,
                               dtype=dtype, name=name)
    return SpectralNorm(conv, name=f"{name}_sn")


def _sn_dense(units, name, dtype, use_bias=True):
    dense = keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=INITIALIZER, dtype=dtype, name=name)
    return SpectralNorm(dense, name=f"{name}_sn")


def _attention(x, name, dtype):
    return SelfAttention2D(spectral_norm=True, dtype=dtype, name=name)(x)


def _up_block(x, condition, width, name, dtype):
    """BigGAN's generator block: two CBN-ReLU-conv stages around a nearest 2x up-sampling."""
    h = ConditionalBatchNormalization(dtype=dtype, name=f"{name}_bn1")([x, condition])
    h = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu1")(h)
    h = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"{name}_up")(h)
    h = _sn_conv(width, 3, f"{name}_conv1", dtype)(h)
    h = ConditionalBatchNormalization(dtype=dtype, name=f"{name}_bn2")([h, condition])
    h = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu2")(h)
    h = _sn_conv(width, 3, f"{name}_conv2", dtype)(h)
    shortcut = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"{name}_shortcut_up")(x)
    shortcut = _sn_conv(width, 1, f"{name}_shortcut", dtype)(shortcut)
    return keras.layers.Add(dtype=dtype, name=f"{name}_add")([h, shortcut])


def generator(image_shape, latent_dim, num_classes, channels, embed_dim, attention_resolution, dtype="float32"):
    """`[z [B, latent_dim], labels [B] int32]` (just z when unconditional) -> images in [-1, 1]."""
    h, w, c = image_shape
    check_shapes(image_shape, latent_dim, attention_resolution)
    chunk = latent_dim // (NUM_BLOCKS + 1)
    widths = [4 * channels, 2 * channels, channels]  # at H/4, H/2, H

    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    chunks = [z[:, i * chunk:(i + 1) * chunk] for i in range(NUM_BLOCKS + 1)]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        embedded = keras.layers.Embedding(num_classes, embed_dim, embeddings_initializer=INITIALIZER,
                                          dtype=dtype, name="shared_embedding")(labels)

    x = _sn_dense((h // 4) * (w // 4) * widths[0], "dense", dtype)(chunks[0])
    x = keras.layers.Reshape((h // 4, w // 4, widths[0]), dtype=dtype, name="reshape")(x)
    if attention_resolution == h // 4:
        x = _attention(x, "attention", dtype)
    for i in range(1, NUM_BLOCKS + 1):
        condition = chunks[i]
        if num_classes is not None:
            condition = keras.layers.Concatenate(dtype=dtype, name=f"block{i}_condition")([embedded, chunks[i]])
        x = _up_block(x, condition, widths[i], f"block{i}", dtype)
        if attention_resolution == h // 2 and i == 1:
            x = _attention(x, "attention", dtype)
    x = BatchNormalization(synchronized=distribute.multi_replica(), dtype=dtype, name="output_bn")(x)
    x = keras.layers.ReLU(dtype=dtype, name="output_relu")(x)
    x = _sn_conv(c, 3, "output_conv", dtype)(x)
    images = keras.layers.Activation("tanh", dtype="float32", name="images")(x)  # float32 whatever the policy
    return keras.Model(inputs if num_classes is not None else z, images, name="generator")


def _down_block(x, width, downsample, preactivation, name, dtype):
    """BigGAN's discriminator block; the first one skips the leading ReLU (it sees raw pixels)."""
    h = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu0")(x) if preactivation else x
    h = _sn_conv(width, 3, f"{name}_conv1", dtype)(h)
    h = keras.layers.ReLU(dtype=dtype, name=f"{name}_relu1")(h)
    h = _sn_conv(width, 3, f"{name}_conv2", dtype)(h)
    shortcut = x
    if downsample:
        h = keras.layers.AveragePooling2D(2, dtype=dtype, name=f"{name}_pool")(h)
        if not preactivation:  # pool first: the 1x1 convolution then runs on a quarter of the pixels
            shortcut = keras.layers.AveragePooling2D(2, dtype=dtype, name=f"{name}_shortcut_pool")(shortcut)
    if downsample or x.shape[-1] != width:
        shortcut = _sn_conv(width, 1, f"{name}_shortcut", dtype)(shortcut)
    if downsample and preactivation:
        shortcut = keras.layers.AveragePooling2D(2, dtype=dtype, name=f"{name}_shortcut_pool")(shortcut)
    return keras.layers.Add(dtype=dtype, name=f"{name}_add")([h, shortcut])


def discriminator(image_shape, num_classes, channels, attention_resolution, dtype="float32"):
    """`[images [B, H, W, C] in [-1, 1], labels [B] int32]` (just images when unconditional) -> logits [B, 1]."""
    h, _, _ = image_shape
    widths = [channels, 2 * channels, 4 * channels]
    downsample = [True, True, False]

    images = keras.Input(image_shape, name="images")
    x = images
    resolution = h
    for i, (width, down) in enumerate(zip(widths, downsample)):
        x = _down_block(x, width, down, preactivation=i > 0, name=f"block{i + 1}", dtype=dtype)
        was, resolution = resolution, resolution // 2 if down else resolution
        if attention_resolution == resolution and was != resolution:  # after the block that reaches it
            x = _attention(x, "attention", dtype)
    x = keras.layers.ReLU(dtype="float32", name="output_relu")(x)  # the head in float32
    features = keras.layers.Identity(dtype="float32", name="features")(ops.sum(x, axis=(1, 2)))  # sum pooling
    logits = _sn_dense(1, "linear", "float32")(features)
    if num_classes is None:
        return keras.Model(images, logits, name="discriminator")
    labels = keras.Input((), dtype="int32", name="labels")
    one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", dtype="float32", name="one_hot")(labels)
    class_embedding = _sn_dense(widths[-1], "class_embedding", "float32", use_bias=False)(one_hot)
    projection = keras.layers.Dot(axes=1, dtype="float32", name="projection")([class_embedding, features])
    logits = keras.layers.Add(dtype="float32", name="logits")([logits, projection])
    return keras.Model([images, labels], logits, name="discriminator")
