"""Exact discrete likelihoods of images, from tensorflow-probability distributions.

An image x of shape [H, W, C] with integer sub-pixels in {0, ..., 255} has
log p(x) = sum_{i, c} log p(x_{i,c} | context), each factor a 256-way categorical whose
logits a model predicts. Bits per dimension = -log p(x) / (H * W * C * ln 2).
"""
import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

NUM_LEVELS = 256


def categorical_pixel_log_prob(logits, images):
    """log p(x_{i,c} | context) for every sub-pixel.

    Args:
      logits: float `[B, H, W, C, 256]` (cast to float32).
      images: integer `[B, H, W, C]` values in [0, 255].
    Returns:
      float32 `[B, H, W, C]`, in nats.
    """
    dist = tfd.Categorical(logits=tf.cast(logits, tf.float32))
    return dist.log_prob(tf.cast(images, tf.int32))


def bits_per_dim(log_prob_nats, num_dims):
    """-log p / (num_dims * ln 2): nats per image -> bits per sub-pixel."""
    return -log_prob_nats / (float(num_dims) * math.log(2.0))
