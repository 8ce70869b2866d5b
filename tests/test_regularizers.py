"""Regularisers: exact values on linear and quadratic critics, their draws, gradients, graph mode, bf16."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.regularizers import (
    add_instance_noise,
    clip_weights,
    dragan_penalty,
    gradient_penalty,
    instance_noise_stddev,
    orthogonal_regularization,
    r1_penalty,
)

SHAPE = (4, 5, 6, 2)  # B, H, W, C


def _images(seed, shape=SHAPE):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape).astype("float32")


def _weights_with_norm(norm, seed=0):
    w = np.random.default_rng(seed).normal(size=SHAPE[1:])
    return (w * norm / np.linalg.norm(w)).astype("float32")


def linear_critic(weights, bias=0.3):
    """D(x) = Σ w·x + b: its input gradient is w at every x, so ‖∇D‖ = ‖w‖ everywhere."""
    w = tf.constant(weights)
    return lambda x: tf.reduce_sum(tf.cast(x, tf.float32) * w, axis=[1, 2, 3])[:, None] + bias


class QuadraticCritic:
    """D(x) = 0.5‖x‖² per example, so ∇D(x) = x; records the points it was evaluated at (eager)."""

    def __init__(self):
        self.seen = []

    def __call__(self, x):
        self.seen.append(np.asarray(x))
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None]


def _per_example_norms(x):
    return np.sqrt((x.astype("float64") ** 2).reshape(len(x), -1).sum(axis=1))


def small_critic(dtype=None):
    return keras.Sequential(
        [
            keras.Input(SHAPE[1:]),
            keras.layers.Conv2D(4, 3, strides=2, padding="same", dtype=dtype),
            keras.layers.LeakyReLU(0.2, dtype=dtype),
            keras.layers.Flatten(dtype=dtype),
            keras.layers.Dense(1, dtype=dtype),
        ]
    )


# -- exact values on a linear critic ---------------------------------------------------------
NORMS = [0.0, 0.3, 1.0, 2.5]


@pytest.mark.parametrize("norm", NORMS)
def test_gradient_penalty_of_linear_critic(norm):
    critic = linear_critic(_weights_with_norm(norm))
    gp = gradient_penalty(critic, _images(1), _images(2), seed=keras.random.SeedGenerator(3))
    assert gp.dtype == tf.float32
    assert abs(float(gp) - (norm - 1.0) ** 2) < 1e-5


@pytest.mark.parametrize("norm", NORMS)
def test_dragan_penalty_of_linear_critic(norm):
    critic = linear_critic(_weights_with_norm(norm, seed=4))
    penalty = dragan_penalty(critic, _images(1), seed=keras.random.SeedGenerator(3))
    assert abs(float(penalty) - (norm - 1.0) ** 2) < 1e-5


@pytest.mark.parametrize("norm", NORMS)
def test_r1_penalty_of_linear_critic(norm):
    critic = linear_critic(_weights_with_norm(norm, seed=5))
    assert abs(float(r1_penalty(critic, _images(1))) - 0.5 * norm**2) < 1e-5


# -- where the penalties look: a quadratic critic, whose gradient at x̂ is x̂ ----------------
def test_gradient_penalty_interpolates_uniformly_on_the_segment():
    shape = (4000, 2, 2, 1)
    real, fake = _images(10, shape), _images(11, shape)
    critic = QuadraticCritic()
    gp = float(gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(7)))
    (points,) = critic.seen
    # Solve each x̂ = ε·real + (1 − ε)·fake for ε; x̂ must lie exactly on that line.
    direction = (real - fake).reshape(len(real), -1)
    offset = (points - fake).reshape(len(real), -1)
    eps = (offset * direction).sum(axis=1) / (direction**2).sum(axis=1)
    np.testing.assert_allclose(offset, eps[:, None] * direction, atol=1e-5)
    # ε ~ Uniform(0, 1): in range (a Normal would not be), mean 1/2, variance 1/12, flat deciles.
    assert eps.min() > -1e-5 and eps.max() < 1 + 1e-5
    assert abs(eps.mean() - 0.5) < 0.02 and abs(eps.var() - 1 / 12) < 0.01
    np.testing.assert_allclose(np.histogram(eps, bins=10, range=(0, 1))[0] / len(eps), 0.1, atol=0.02)
    expected = np.mean((_per_example_norms(points) - 1.0) ** 2)
    assert abs(gp - expected) < 1e-5


def test_dragan_perturbs_real_data_upwards_within_scale_std():
    real = _images(12, (64, 3, 3, 2))
    critic = QuadraticCritic()
    penalty = float(dragan_penalty(critic, real, seed=keras.random.SeedGenerator(8), scale=0.5))
    (points,) = critic.seen
    step = points - real  # α·scale·std(real)·u with α, u in [0, 1)
    bound = 0.5 * real.std()
    assert step.min() >= 0.0 and step.max() <= bound + 1e-6
    assert step.max() > 0.5 * bound  # the perturbation is really there
    # u is per pixel: the steps of one example are not all equal. α ~ U(0, 1) is per example:
    # an example's largest step is about α·bound (its 18 pixels' largest u is near 1).
    assert np.all(step.reshape(64, -1).std(axis=1) > 0)
    largest = step.reshape(64, -1).max(axis=1) / bound
    assert np.quantile(largest, 0.25) < 0.4 and np.quantile(largest, 0.75) > 0.6
    assert abs(penalty - np.mean((_per_example_norms(points) - 1.0) ** 2)) < 1e-5


def test_r1_penalty_of_quadratic_critic():
    real = _images(13)
    expected = 0.5 * np.mean(_per_example_norms(real) ** 2)
    assert abs(float(r1_penalty(QuadraticCritic(), real)) - expected) < 1e-4


# -- seeds ------------------------------------------------------------------------------------
def test_same_seed_state_same_penalty_and_a_generator_moves_on():
    real, fake = _images(20), _images(21)
    critic = QuadraticCritic()
    first = float(gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(1)))
    again = float(gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(1)))
    other = float(gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(2)))
    assert first == again and first != other
    generator = keras.random.SeedGenerator(1)
    assert float(gradient_penalty(critic, real, fake, seed=generator)) == first
    assert float(gradient_penalty(critic, real, fake, seed=generator)) != first  # next step, new ε
    assert float(dragan_penalty(critic, real, seed=9)) == float(dragan_penalty(critic, real, seed=9))


# -- gradients for the critic's optimizer, graph mode and bfloat16 ----------------------------
PENALTIES = {
    "gp": lambda critic, real, fake, seed: gradient_penalty(critic, real, fake, seed),
    "dragan": lambda critic, real, fake, seed: dragan_penalty(critic, real, seed),
    "r1": lambda critic, real, fake, seed: r1_penalty(critic, real),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_gradients_reach_the_critic_kernels(name):
    critic = small_critic()
    with tf.GradientTape() as tape:
        penalty = PENALTIES[name](critic, _images(1), _images(2), keras.random.SeedGenerator(0))
    gradients = tape.gradient(penalty, critic.trainable_variables)
    # Biases may get none (the input gradient of a leaky-ReLU net does not depend on them);
    # every kernel must get a finite, nonzero one.
    for variable, gradient in zip(critic.trainable_variables, gradients):
        if "kernel" in variable.path:
            assert gradient is not None and np.abs(gradient.numpy()).max() > 0, variable.path
        assert gradient is None or np.isfinite(gradient.numpy()).all(), variable.path


def test_everything_traces_in_tf_function_with_bfloat16_inputs():
    critic = small_critic(dtype="mixed_bfloat16")
    seed = keras.random.SeedGenerator(0)
    spec = tf.TensorSpec((None, *SHAPE[1:]), tf.bfloat16)

    @tf.function(input_signature=[spec, spec])
    def step(real, fake):
        with tf.GradientTape() as tape:
            penalties = [PENALTIES[name](critic, real, fake, seed) for name in sorted(PENALTIES)]
            penalties.append(orthogonal_regularization([critic.layers[0].kernel]))
            total = tf.add_n(penalties)
        return penalties, tape.gradient(total, critic.trainable_variables)

    real, fake = tf.cast(_images(1), tf.bfloat16), tf.cast(_images(2), tf.bfloat16)
    penalties, gradients = step(real, fake)
    assert critic.layers[0].compute_dtype == "bfloat16"
    assert all(p.dtype == tf.float32 and np.isfinite(p.numpy()) for p in penalties)
    assert all(g is None or np.isfinite(g.numpy()).all() for g in gradients)
    assert all(g is not None for v, g in zip(critic.trainable_variables, gradients) if "kernel" in v.path)
    step(real[:3], fake[:3])  # another batch size, same graph


def test_linear_critic_values_hold_in_tf_function():
    critic = linear_critic(_weights_with_norm(2.0))
    seed = keras.random.SeedGenerator(0)
    gp = tf.function(lambda r, f: gradient_penalty(critic, r, f, seed))(_images(1), _images(2))
    assert abs(float(gp) - 1.0) < 1e-5


# -- weight clipping --------------------------------------------------------------------------
def test_clip_weights_bounds_every_value_in_place():
    rng = np.random.default_rng(0)
    values = [rng.normal(scale=3.0, size=shape).astype("float32") for shape in [(3, 4), (5,)]]
    variables = [keras.Variable(v) for v in values]
    tf.function(lambda: clip_weights(variables, 0.5))()
    for variable, before in zip(variables, values):
        after = variable.numpy()
        assert np.abs(after).max() <= 0.5 and np.abs(after).max() == 0.5
        inside = np.abs(before) <= 0.5
        np.testing.assert_array_equal(after[inside], before[inside])
    with pytest.raises(KerasGenError, match="clip_value"):
        clip_weights(variables, 0.0)


# -- instance noise ---------------------------------------------------------------------------
def test_instance_noise_anneals_linearly_to_exactly_zero():
    def stddev(step):
        return float(instance_noise_stddev(step, 0.2, 100))

    assert stddev(0) == np.float32(0.2) and stddev(50) == pytest.approx(0.1, rel=1e-6)
    assert stddev(25) == pytest.approx(0.15, rel=1e-6)
    assert stddev(100) == 0.0 and stddev(1000) == 0.0
    traced = tf.function(lambda step: instance_noise_stddev(step, 0.2, 100))
    assert traced(tf.constant(75, tf.int64)).dtype == tf.float32
    assert float(traced(tf.constant(75, tf.int64))) == pytest.approx(0.05, rel=1e-6)
    with pytest.raises(KerasGenError, match="anneal_steps"):
        instance_noise_stddev(0, 0.2, 0)


def test_add_instance_noise():
    images = _images(30, (8, 16, 16, 3))
    after_annealing = instance_noise_stddev(tf.constant(500), 0.2, 100)
    np.testing.assert_array_equal(add_instance_noise(images, after_annealing, seed=1).numpy(), images)
    noise = add_instance_noise(images, tf.constant(0.5), seed=keras.random.SeedGenerator(2)).numpy() - images
    assert abs(noise.std() - 0.5) < 0.02 and abs(noise.mean()) < 0.02
    bf16 = add_instance_noise(tf.cast(images, tf.bfloat16), 0.1, seed=3)
    assert bf16.dtype == tf.bfloat16


# -- orthogonal regularisation ----------------------------------------------------------------
def test_orthogonal_regularization_by_hand():
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], "float32")
    assert float(orthogonal_regularization([rotation], beta=1.0)) < 1e-10
    # Orthogonal columns of any length: the diagonal of WᵀW is not penalised.
    assert float(orthogonal_regularization([np.diag([2.0, 3.0]).astype("float32")], beta=1.0)) == 0.0
    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "float32")
    # WᵀW = [[35, 44], [44, 56]]: off-diagonal squares 2·44² = 3872.
    assert float(orthogonal_regularization([w], beta=1.0)) == pytest.approx(3872.0)
    assert float(orthogonal_regularization([w])) == pytest.approx(0.3872)
    # A conv kernel [kh, kw, in, out] is the matrix [kh·kw·in, out]; kernels add up.
    conv = w.reshape(1, 1, 3, 2)
    assert float(orthogonal_regularization([conv, w], beta=1.0)) == pytest.approx(2 * 3872.0)
    bf16 = orthogonal_regularization([tf.cast(w, tf.bfloat16)], beta=1.0)
    assert bf16.dtype == tf.float32 and float(bf16) == pytest.approx(3872.0)
