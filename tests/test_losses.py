"""Adversarial losses against values worked by hand on small fixed logits."""
import math

import numpy as np
import pytest

from keras_gen import losses
from keras_gen.errors import KerasGenError


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


# Exactly representable in bfloat16 and float16, so a float32 computation on them is exact
# up to float32 rounding.
REAL = [2.0, -1.0, 0.0]
FAKE = [-3.0, 0.5]

# Discriminator outputs come as [B] or [B, 1]; every loss is checked on both.
SHAPES = pytest.mark.parametrize("shape", [(-1,), (-1, 1)], ids=["B", "B1"])


def arr(values, shape=(-1,), dtype="float32"):
    return np.array(values, dtype=dtype).reshape(shape)


def value(x):
    return float(np.asarray(x))


# --- minimax / modified (cross-entropy, D = sigmoid(l)) ---------------------------------------


@SHAPES
def test_minimax_generator_loss_by_hand(shape):
    # E[log(1 - D(G(z)))]
    expected = (math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))) / 2
    assert value(losses.minimax_generator_loss(arr(FAKE, shape))) == pytest.approx(expected, rel=1e-6)


@SHAPES
def test_modified_generator_loss_by_hand(shape):
    # -E[log D(G(z))]
    expected = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.5))) / 2
    assert value(losses.modified_generator_loss(arr(FAKE, shape))) == pytest.approx(expected, rel=1e-6)


@SHAPES
@pytest.mark.parametrize("fn", [losses.minimax_discriminator_loss, losses.modified_discriminator_loss])
def test_cross_entropy_discriminator_losses_by_hand(fn, shape):
    # -E[log D(x)] - E[log(1 - D(G(z)))]
    expected = -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0)) + math.log(sigmoid(0.0))) / 3 - (
        math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))
    ) / 2
    assert value(fn(arr(REAL, shape), arr(FAKE, shape))) == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_discriminator_loss_at_chance_is_two_log_two():
    # D = 1/2 everywhere: log 2 for the real term plus log 2 for the fake term.
    assert value(losses.minimax_discriminator_loss(np.zeros(4), np.zeros(4))) == pytest.approx(2 * math.log(2), rel=1e-6)


def test_cross_entropy_losses_are_finite_for_large_logits():
    # log(sigmoid(-100)) underflows if computed naively; softplus gives exactly 100.
    assert value(losses.modified_generator_loss(arr([-100.0]))) == pytest.approx(100.0, rel=1e-6)
    assert value(losses.minimax_discriminator_loss(arr([-100.0]), arr([100.0]))) == pytest.approx(200.0, rel=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    """With D confident that a sample is fake (l = -10), the minimax gradient vanishes."""
    import tensorflow as tf

    logit = tf.Variable([-10.0])
    grads = {}
    for name, fn in [("minimax", losses.minimax_generator_loss), ("non_saturating", losses.modified_generator_loss)]:
        with tf.GradientTape() as tape:
            loss = fn(logit)
        grads[name] = abs(float(tape.gradient(loss, logit)[0]))
    # d/dl -softplus(l) = -sigmoid(l); d/dl softplus(-l) = -sigmoid(-l).
    assert grads["minimax"] == pytest.approx(sigmoid(-10.0), rel=1e-4)  # ~4.5e-5
    assert grads["non_saturating"] == pytest.approx(1 - sigmoid(-10.0), rel=1e-4)  # ~1
    assert grads["minimax"] < 1e-4 < 0.99 < grads["non_saturating"]


# --- wasserstein, hinge (raw outputs) -------------------------------------------------------


@SHAPES
def test_wasserstein_losses_by_hand(shape):
    # mean(FAKE) = (-3 + 0.5) / 2 = -1.25; mean(REAL) = (2 - 1 + 0) / 3 = 1/3.
    assert value(losses.wasserstein_generator_loss(arr(FAKE, shape))) == pytest.approx(1.25, rel=1e-6)
    assert value(losses.wasserstein_discriminator_loss(arr(REAL, shape), arr(FAKE, shape))) == pytest.approx(
        -1.25 - 1 / 3, rel=1e-6
    )


@SHAPES
def test_hinge_losses_by_hand(shape):
    # real: relu(1 - 2) = 0, relu(1 + 1) = 2, relu(1 - 0) = 1 -> mean 1
    # fake: relu(1 - 3) = 0, relu(1 + 0.5) = 1.5 -> mean 0.75
    assert value(losses.hinge_discriminator_loss(arr(REAL, shape), arr(FAKE, shape))) == pytest.approx(1.75, rel=1e-6)
    assert value(losses.hinge_generator_loss(arr(FAKE, shape))) == pytest.approx(1.25, rel=1e-6)


# --- least squares ------------------------------------------------------------------------


@SHAPES
def test_least_squares_losses_by_hand_default_labels(shape):
    # a=0, b=1, c=1.
    # D real: (2-1)^2 = 1, (-1-1)^2 = 4, (0-1)^2 = 1 -> mean 2 -> half 1
    # D fake: (-3-0)^2 = 9, (0.5-0)^2 = 0.25 -> mean 4.625 -> half 2.3125
    # G:      (-3-1)^2 = 16, (0.5-1)^2 = 0.25 -> mean 8.125 -> half 4.0625
    assert value(losses.least_squares_discriminator_loss(arr(REAL, shape), arr(FAKE, shape))) == pytest.approx(
        3.3125, rel=1e-6
    )
    assert value(losses.least_squares_generator_loss(arr(FAKE, shape))) == pytest.approx(4.0625, rel=1e-6)


def test_least_squares_losses_by_hand_other_labels():
    # a=-1, b=2, c=0.5.
    # D real: (2-2)^2 = 0, (-1-2)^2 = 9, (0-2)^2 = 4 -> mean 13/3 -> half 13/6
    # D fake: (-3+1)^2 = 4, (0.5+1)^2 = 2.25 -> mean 3.125 -> half 1.5625
    # G:      (-3-0.5)^2 = 12.25, (0.5-0.5)^2 = 0 -> mean 6.125 -> half 3.0625
    d = losses.least_squares_discriminator_loss(arr(REAL), arr(FAKE), a=-1.0, b=2.0)
    assert value(d) == pytest.approx(13 / 6 + 1.5625, rel=1e-6)
    assert value(losses.least_squares_generator_loss(arr(FAKE), c=0.5)) == pytest.approx(3.0625, rel=1e-6)


def test_get_least_squares_with_labels_uses_them():
    pair = losses.get("least_squares", a=-1, b=2.0, c=0.5)
    assert pair.name == "least_squares" and pair.probability is False
    assert value(pair.discriminator(arr(REAL), arr(FAKE))) == pytest.approx(13 / 6 + 1.5625, rel=1e-6)
    assert value(pair.generator(arr(FAKE))) == pytest.approx(3.0625, rel=1e-6)
    # Only c given: a and b keep their defaults (0 and 1).
    partial = losses.get("least_squares", c=0.5)
    assert value(partial.discriminator(arr(REAL), arr(FAKE))) == pytest.approx(3.3125, rel=1e-6)
    assert value(partial.generator(arr(FAKE))) == pytest.approx(3.0625, rel=1e-6)


# --- AC-GAN -------------------------------------------------------------------------------

REAL_CLASS_LOGITS = [[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]]
REAL_LABELS = [0, 2]
FAKE_CLASS_LOGITS = [[1.0, -1.0, 0.0], [0.0, 3.0, 0.0]]
FAKE_LABELS = [1, 1]


def cross_entropy(logits, label):
    # -log softmax(logits)[label] = log(sum_k exp(logits_k)) - logits[label]
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_acgan_losses_by_hand():
    real_ce = (math.log(math.exp(2.0) + 1.0 + math.exp(-1.0)) - 2.0 + math.log(3.0)) / 2
    fake_ce = (math.log(math.exp(1.0) + math.exp(-1.0) + 1.0) + 1.0 + math.log(2.0 + math.exp(3.0)) - 3.0) / 2
    # The written-out sums agree with the general formula.
    assert real_ce == pytest.approx(mean([cross_entropy(r, y) for r, y in zip(REAL_CLASS_LOGITS, REAL_LABELS)]))
    assert fake_ce == pytest.approx(mean([cross_entropy(r, y) for r, y in zip(FAKE_CLASS_LOGITS, FAKE_LABELS)]))

    d = losses.acgan_discriminator_loss(
        arr(REAL_CLASS_LOGITS, (2, 3)), np.array(REAL_LABELS), arr(FAKE_CLASS_LOGITS, (2, 3)), np.array(FAKE_LABELS)
    )
    g = losses.acgan_generator_loss(arr(FAKE_CLASS_LOGITS, (2, 3)), np.array(FAKE_LABELS))
    assert value(d) == pytest.approx(real_ce + fake_ce, rel=1e-6)
    assert value(g) == pytest.approx(fake_ce, rel=1e-6)


# --- dtypes -------------------------------------------------------------------------------


def _all_calls(make):
    """(name, thunk) for every loss, on tensors built by make(values, shape)."""
    real, fake = make(REAL, (-1, 1)), make(FAKE, (-1, 1))
    rc, fc = make(REAL_CLASS_LOGITS, (2, 3)), make(FAKE_CLASS_LOGITS, (2, 3))
    rl, fl = np.array(REAL_LABELS), np.array(FAKE_LABELS)
    return {
        "minimax_generator_loss": lambda: losses.minimax_generator_loss(fake),
        "minimax_discriminator_loss": lambda: losses.minimax_discriminator_loss(real, fake),
        "modified_generator_loss": lambda: losses.modified_generator_loss(fake),
        "modified_discriminator_loss": lambda: losses.modified_discriminator_loss(real, fake),
        "wasserstein_generator_loss": lambda: losses.wasserstein_generator_loss(fake),
        "wasserstein_discriminator_loss": lambda: losses.wasserstein_discriminator_loss(real, fake),
        "hinge_generator_loss": lambda: losses.hinge_generator_loss(fake),
        "hinge_discriminator_loss": lambda: losses.hinge_discriminator_loss(real, fake),
        "least_squares_generator_loss": lambda: losses.least_squares_generator_loss(fake, c=0.5),
        "least_squares_discriminator_loss": lambda: losses.least_squares_discriminator_loss(real, fake, a=-1.0, b=2.0),
        "acgan_generator_loss": lambda: losses.acgan_generator_loss(fc, fl),
        "acgan_discriminator_loss": lambda: losses.acgan_discriminator_loss(rc, rl, fc, fl),
    }


@pytest.mark.parametrize("name", list(_all_calls(arr)))
def test_loss_is_float32_and_computed_in_float32_for_bfloat16_inputs(name):
    import tensorflow as tf

    def bf16(values, shape):
        return tf.cast(arr(values, shape), tf.bfloat16)

    out = _all_calls(bf16)[name]()
    assert out.dtype == tf.float32
    assert tuple(out.shape) == ()
    # The inputs are exact in bfloat16, so casting first gives the float32 result; a loss
    # computed in bfloat16 (8-bit mantissa) and cast afterwards would be off by ~1e-3.
    assert value(out) == pytest.approx(value(_all_calls(arr)[name]()), rel=1e-6)


def test_least_squares_casts_before_squaring():
    # 300^2 = 90000 overflows float16 (max 65504); in float32 it is 0.5 * (300 - 1)^2.
    out = losses.least_squares_generator_loss(arr([300.0], dtype="float16"))
    assert value(out) == pytest.approx(0.5 * 299.0**2, rel=1e-6)


# --- registry -----------------------------------------------------------------------------


def test_registry_names_and_pairs():
    assert list(losses.LOSSES) == ["minimax", "non_saturating", "wasserstein", "hinge", "least_squares"]
    L = losses
    expected = {
        "minimax": (L.minimax_generator_loss, L.minimax_discriminator_loss, True),
        "non_saturating": (L.modified_generator_loss, L.modified_discriminator_loss, True),
        "wasserstein": (L.wasserstein_generator_loss, L.wasserstein_discriminator_loss, False),
        "hinge": (L.hinge_generator_loss, L.hinge_discriminator_loss, False),
        "least_squares": (L.least_squares_generator_loss, L.least_squares_discriminator_loss, False),
    }
    for name, (g, d, probability) in expected.items():
        pair = losses.get(name)
        assert pair is losses.LOSSES[name]
        assert (pair.name, pair.generator, pair.discriminator, pair.probability) == (name, g, d, probability)
        assert pair.doc


def test_loss_pair_is_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        losses.LOSSES["hinge"].probability = True


def test_get_returns_a_loss_pair_unchanged():
    pair = losses.LossPair("mine", losses.hinge_generator_loss, losses.hinge_discriminator_loss, False, "custom")
    assert losses.get(pair) is pair


def test_get_unknown_name_lists_the_known_ones():
    with pytest.raises(KerasGenError) as info:
        losses.get("relativistic")
    message = str(info.value)
    assert "\n" not in message and "relativistic" in message
    for name in losses.LOSSES:
        assert name in message


@pytest.mark.parametrize("bad", [None, 3, ["hinge"]])
def test_get_non_string_is_a_keras_gen_error(bad):
    with pytest.raises(KerasGenError, match="non_saturating"):
        losses.get(bad)


def test_get_parameters_for_a_loss_without_any():
    with pytest.raises(KerasGenError, match="hinge"):
        losses.get("hinge", c=0.5)


def test_get_unknown_parameter_name():
    with pytest.raises(KerasGenError, match="gamma") as info:
        losses.get("least_squares", a=0.0, gamma=2.0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["1", True, float("nan"), None])
def test_get_least_squares_parameter_must_be_a_number(bad):
    with pytest.raises(KerasGenError, match="parameter c"):
        losses.get("least_squares", c=bad)


def test_get_parameters_on_a_built_pair():
    with pytest.raises(KerasGenError):
        losses.get(losses.LOSSES["least_squares"], a=-1.0)


def test_old_api_is_gone():
    for old in ("discriminator_loss", "generator_loss", "GENERATOR_LOSSES"):
        assert not hasattr(losses, old)
