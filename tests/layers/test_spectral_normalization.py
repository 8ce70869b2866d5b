"""Spectral normalisation: what the critics rely on, checked against numpy's SVD.

We use `keras_gen.layers.SpectralNorm`, not `keras.layers.SpectralNormalization`; the last test
records why (see `keras_gen/layers/spectral_norm.py`).
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers import SpectralNorm
from keras_gen.regularizers import gradient_penalty

CASES = {
    "dense": (lambda: keras.layers.Dense(6), (5, 7)),
    "conv2d": (lambda: keras.layers.Conv2D(8, 3, padding="same"), (2, 6, 6, 4)),
}


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def largest_singular_value(kernel):
    kernel = np.asarray(kernel, "float64")
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def _built(case):
    make_layer, shape = CASES[case]
    layer = SpectralNorm(make_layer())
    layer(_inputs(shape))
    # A kernel with a large norm: the normalisation has work to do.
    layer.layer.kernel.assign(3.0 * _inputs(layer.layer.kernel.shape, seed=1))
    return layer, shape


@pytest.mark.parametrize("case", sorted(CASES))
def test_power_iteration_drives_the_largest_singular_value_to_one(case):
    layer, shape = _built(case)
    raw = layer.layer.kernel.numpy().copy()
    assert largest_singular_value(raw) > 5
    for _ in range(30):
        layer(_inputs(shape), training=True)
    assert abs(largest_singular_value(layer.normalized_kernel().numpy()) - 1.0) < 1e-2
    # The raw kernel is never overwritten; only u moved.
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), raw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_pass_uses_the_normalised_kernel(case):
    layer, shape = _built(case)
    for _ in range(30):
        layer(_inputs(shape), training=True)
    x = _inputs(shape, seed=2)
    reference = layer.layer  # the plain layer, on the normalised kernel
    raw = reference.kernel.numpy().copy()
    reference.kernel.assign(layer.normalized_kernel())
    expected = reference(x).numpy()
    reference.kernel.assign(raw)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_untrained_layer_divides_by_at_most_the_largest_singular_value(case):
    """Before any training call, inference divides by σ = |u Wᵀ| (v = u Wᵀ / |u Wᵀ|): at most
    σ_max(W) for a unit u, so the kernel's largest singular value is at least 1. A u drawn
    N(0, 1) and left unnormalised (|u| ≈ √out) shrank it to 0.2–0.5."""
    layer, _ = _built(case)
    assert np.linalg.norm(layer.vector_u.numpy()) == pytest.approx(1.0, abs=1e-5)
    top = largest_singular_value(layer.normalized_kernel().numpy())
    assert 1.0 - 1e-5 <= top < 5.0


def test_inference_mode_does_not_update_u():
    layer, shape = _built("conv2d")
    u = layer.vector_u.numpy().copy()
    first = layer(_inputs(shape)).numpy()
    layer(_inputs(shape, seed=3), training=False)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u)
    np.testing.assert_array_equal(layer(_inputs(shape)).numpy(), first)
    layer(_inputs(shape), training=True)
    assert not np.array_equal(layer.vector_u.numpy(), u)


def test_gradient_flows_through_sigma():
    # W_SN = W / (v W uᵀ) does not change when W is scaled, so the loss's gradient with respect
    # to W is orthogonal to W (Miyato et al., eq. 12). Without the σ term it would not be.
    layer, shape = _built("dense")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(_inputs(shape))))
    gradient = tape.gradient(loss, layer.layer.kernel).numpy()
    kernel = layer.layer.kernel.numpy()
    assert np.abs(gradient).max() > 0
    assert abs((gradient * kernel).sum()) < 1e-5 * np.linalg.norm(gradient) * np.linalg.norm(kernel)


def critic():
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            SpectralNorm(keras.layers.Conv2D(4, 3, strides=2, padding="same")),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Flatten(),
            SpectralNorm(keras.layers.Dense(1)),
        ]
    )


def test_training_in_graph_mode_and_a_gradient_penalty_through_it():
    model = critic()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    u_before = [layer.vector_u.numpy().copy() for layer in model.layers if isinstance(layer, SpectralNorm)]
    kernel_before = model.layers[0].layer.kernel.numpy().copy()
    model.fit(_inputs((8, 6, 6, 3)), np.ones((8, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    u_after = [layer.vector_u.numpy() for layer in model.layers if isinstance(layer, SpectralNorm)]
    assert all(not np.array_equal(a, b) for a, b in zip(u_before, u_after))  # fit calls with training=True
    assert not np.array_equal(model.layers[0].layer.kernel.numpy(), kernel_before)

    seed = keras.random.SeedGenerator(0)

    @tf.function
    def penalty_and_gradients(real, fake):
        with tf.GradientTape() as tape:
            gp = gradient_penalty(lambda x: model(x, training=True), real, fake, seed)
        return gp, tape.gradient(gp, model.trainable_variables)

    gp, gradients = penalty_and_gradients(_inputs((4, 6, 6, 3), 1), _inputs((4, 6, 6, 3), 2))
    assert np.isfinite(gp.numpy())
    assert all(g is None or np.isfinite(g.numpy()).all() for g in gradients)


def test_mixed_bfloat16_keeps_float32_weights_and_normalises(mixed_bfloat16):
    model = critic()
    conv = model.layers[0]
    assert conv.layer.compute_dtype == "bfloat16" and conv.layer.kernel.dtype == "float32"
    conv.layer.kernel.assign(3.0 * _inputs(conv.layer.kernel.shape, seed=1))
    # A float32 update far below bfloat16 resolution, as an optimizer step would make.
    conv.layer.kernel.assign_add(np.full(conv.layer.kernel.shape, 1e-6, "float32"))
    raw = conv.layer.kernel.numpy().copy()
    x = _inputs((4, 6, 6, 3))
    for _ in range(30):
        out = model(x, training=True)
    assert out.dtype == tf.bfloat16 and conv.vector_u.dtype == "float32"
    np.testing.assert_array_equal(conv.layer.kernel.numpy(), raw)  # not rounded to bfloat16
    assert abs(largest_singular_value(conv.normalized_kernel().numpy()) - 1.0) < 1e-2


def test_keras_file_round_trip(tmp_path):
    model = critic()
    x = _inputs((4, 6, 6, 3))
    for _ in range(3):
        model(x, training=True)
    path = tmp_path / "critic.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0], SpectralNorm) and loaded.layers[0].power_iterations == 1
    np.testing.assert_array_equal(loaded.layers[0].vector_u.numpy(), model.layers[0].vector_u.numpy())
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_config_and_bad_arguments():
    clone = SpectralNorm.from_config(SpectralNorm(keras.layers.Dense(3), power_iterations=2).get_config())
    assert clone.power_iterations == 2 and isinstance(clone.layer, keras.layers.Dense)
    with pytest.raises(ValueError, match="Dense or Conv"):
        SpectralNorm(keras.layers.Conv2DTranspose(2, 3))
    with pytest.raises(ValueError, match="power_iterations"):
        SpectralNorm(keras.layers.Dense(3), power_iterations=0)
    with pytest.raises(ValueError, match="padding='causal'"):  # it failed on its first call, inside TensorFlow
        SpectralNorm(keras.layers.Conv1D(2, 3, padding="causal"))


def test_why_not_keras_spectral_normalization(mixed_bfloat16):
    # Keras 3.15's wrapper writes W/σ, computed from the bfloat16 read of the kernel, back into
    # the float32 kernel in every training call, rounding the master weights to bfloat16. If
    # this starts failing, Keras has changed and its layer may be worth another look.
    layer = keras.layers.SpectralNormalization(keras.layers.Dense(6))
    layer(_inputs((5, 7)))
    layer(_inputs((5, 7)), training=True)
    kernel = layer.layer.kernel.numpy()
    rounded = tf.cast(tf.cast(kernel, tf.bfloat16), tf.float32).numpy()
    np.testing.assert_array_equal(kernel, rounded)
