"""Adversarial losses against values computed by hand."""
import math

import numpy as np
import pytest

from keras_gen import losses


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


REAL = [2.0, -1.0, 0.0]
FAKE = [-3.0, 0.5]


def test_discriminator_loss_is_binary_cross_entropy_by_hand():
    # -mean log D(x) - mean log(1 - D(G(z))), D = sigmoid.
    expected = -np.mean([math.log(sigmoid(l)) for l in REAL]) - np.mean([math.log(1 - sigmoid(l)) for l in FAKE])
    assert float(losses.discriminator_loss(np.array(REAL), np.array(FAKE))) == pytest.approx(expected, rel=1e-6)


def test_discriminator_loss_known_value():
    # D = 1/2 everywhere: log 2 for the real term plus log 2 for the fake term.
    assert float(losses.discriminator_loss(np.zeros(4), np.zeros(4))) == pytest.approx(2 * math.log(2), rel=1e-6)


def test_non_saturating_generator_loss_by_hand():
    expected = -np.mean([math.log(sigmoid(l)) for l in FAKE])
    assert float(losses.generator_loss(np.array(FAKE), "non_saturating")) == pytest.approx(expected, rel=1e-6)


def test_minimax_generator_loss_by_hand():
    expected = np.mean([math.log(1 - sigmoid(l)) for l in FAKE])
    assert float(losses.generator_loss(np.array(FAKE), "minimax")) == pytest.approx(expected, rel=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    """The lecture's point: with D confident that a sample is fake, the minimax gradient vanishes."""
    import tensorflow as tf

    logit = tf.Variable([-8.0])
    grads = {}
    for kind in losses.GENERATOR_LOSSES:
        with tf.GradientTape() as tape:
            loss = losses.generator_loss(logit, kind)
        grads[kind] = abs(float(tape.gradient(loss, logit)[0]))
    assert grads["minimax"] == pytest.approx(sigmoid(-8.0), rel=1e-4)  # ~3.4e-4
    assert grads["non_saturating"] == pytest.approx(1 - sigmoid(-8.0), rel=1e-4)  # ~1


def test_losses_are_float32_for_bfloat16_logits():
    import tensorflow as tf

    logits = tf.constant([1.0, -2.0], tf.bfloat16)
    assert losses.discriminator_loss(logits, logits).dtype == tf.float32
    assert losses.generator_loss(logits).dtype == tf.float32


def test_unknown_generator_loss():
    with pytest.raises(ValueError, match="non_saturating"):
        losses.generator_loss(np.zeros(2), "wasserstein")
