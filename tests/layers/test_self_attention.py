"""SelfAttention2D: the identity at initialisation, then SAGAN's attention, checked against numpy."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers.self_attention import SelfAttention2D
from keras_gen.layers.spectral_norm import SpectralNorm


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _randomised(layer, x, gamma, seed=1):
    """Build `layer` on x, give its convolutions random kernels and γ the value `gamma`."""
    layer(x)
    rng = np.random.default_rng(seed)
    for conv in (layer.query, layer.key, layer.value, layer.attention_output):
        kernel = conv.layer.kernel if isinstance(conv, SpectralNorm) else conv.kernel
        kernel.assign(rng.normal(size=kernel.shape).astype("float32"))
    layer.gamma.assign(gamma)
    return layer


def _kernel(conv):
    """The 1x1 kernel the layer computes with, as a [in, out] matrix."""
    kernel = conv.normalized_kernel() if isinstance(conv, SpectralNorm) else conv.kernel
    kernel = keras.ops.convert_to_numpy(kernel).astype("float64")
    return kernel.reshape(-1, kernel.shape[-1])


def _max_pool_same(x):
    """2x2 max pooling with stride 2 and TF's "same" padding (pad at the end) in numpy."""
    b, h, w, c = x.shape
    padded = np.full((b, h + h % 2, w + w % 2, c), -np.inf)
    padded[:, :h, :w] = x
    return padded.reshape(b, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2, c).max(axis=(2, 4))


def _numpy_attention(layer, x, gamma):
    x = x.astype("float64")
    b, h, w, c = x.shape
    f, g, v = x @ _kernel(layer.query), x @ _kernel(layer.key), x @ _kernel(layer.value)
    if layer.pool:
        g, v = _max_pool_same(g), _max_pool_same(v)
    f = f.reshape(b, h * w, -1)
    g = g.reshape(b, -1, g.shape[-1])
    v = v.reshape(b, -1, v.shape[-1])
    logits = np.einsum("bjk,bik->bji", f, g)  # query at j, key at i
    beta = np.exp(logits - logits.max(axis=-1, keepdims=True))
    beta /= beta.sum(axis=-1, keepdims=True)
    o = (beta @ v).reshape(b, h, w, -1) @ _kernel(layer.attention_output)
    return x + gamma * o


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_is_the_identity_at_initialisation(spectral_norm):
    x = _inputs((2, 7, 7, 16))
    layer = SelfAttention2D(spectral_norm=spectral_norm)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=True)), x)
    assert float(layer.gamma) == 0.0 and layer.gamma.shape == ()
    widths = [layer.query, layer.key, layer.value, layer.attention_output]
    widths = [(w.layer if spectral_norm else w).filters for w in widths]
    assert widths == [2, 2, 8, 16]  # C/8, C/8, C/2, C


@pytest.mark.parametrize(
    "shape, spectral_norm, pool",
    [((2, 7, 7, 16), False, False), ((2, 6, 5, 8), True, False), ((2, 7, 7, 16), False, True), ((1, 4, 6, 8), True, True)],
)
def test_with_gamma_set_matches_numpy(shape, spectral_norm, pool):
    x = _inputs(shape)
    layer = _randomised(SelfAttention2D(spectral_norm=spectral_norm, pool=pool), x, gamma=0.7)
    # Scale the inputs down so the softmax is not one-hot: every key contributes.
    x = 0.2 * x
    out = keras.ops.convert_to_numpy(layer(x))
    expected = _numpy_attention(layer, x, 0.7)
    term, expected_term = out - x, expected - x  # γ·o, compared on its own scale
    assert np.abs(expected_term).max() > 1e-2  # the attention term is there to be checked
    np.testing.assert_allclose(term, expected_term, rtol=1e-3, atol=1e-4 * np.abs(expected_term).max())


def test_every_output_position_depends_on_every_input_position():
    x = 0.2 * _inputs((1, 7, 7, 8))
    layer = _randomised(SelfAttention2D(), x, gamma=1.0)
    # Example j of the batch is x again; its loss reads only output position j, so one
    # gradient gives how each output position depends on every input position.
    batch = tf.constant(np.repeat(x, 49, axis=0))
    pick = np.eye(49, dtype="float32").reshape(49, 7, 7, 1) * _inputs((1, 1, 1, 8), seed=5)

    def dependence():
        with tf.GradientTape() as tape:
            tape.watch(batch)
            loss = tf.reduce_sum(layer(batch) * pick)
        gradient = tape.gradient(loss, batch).numpy()  # [output position, 7, 7, 8]
        return np.abs(gradient).sum(axis=-1).reshape(49, 49)  # [output position, input position]

    assert dependence().min() > 0  # all 49 x 49 pairs
    layer.gamma.assign(0.0)  # the identity: each output depends on its own position only
    np.testing.assert_array_equal(dependence() > 0, np.eye(49, dtype=bool))


def test_keras_round_trip_and_config(tmp_path):
    inputs = keras.Input((7, 7, 16))
    model = keras.Model(inputs, SelfAttention2D(spectral_norm=True, pool=True, name="attention")(inputs))
    x = _inputs((3, 7, 7, 16))
    layer = _randomised(model.get_layer("attention"), x, gamma=0.5)
    model(x, training=True)  # advances the spectral norms' u vectors
    model.save(tmp_path / "attention.keras")
    loaded = keras.models.load_model(tmp_path / "attention.keras")
    loaded_layer = loaded.get_layer("attention")
    assert isinstance(loaded_layer, SelfAttention2D)
    assert loaded_layer.get_config() == layer.get_config()
    assert layer.get_config()["spectral_norm"] is True and layer.get_config()["pool"] is True
    assert float(loaded_layer.gamma) == 0.5
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))


def test_mixed_bfloat16_computes_close_to_float32():
    x = 0.2 * _inputs((2, 6, 6, 16))
    reference = _randomised(SelfAttention2D(), x, gamma=0.8)
    mixed = SelfAttention2D(dtype="mixed_bfloat16")
    mixed(x)
    mixed.set_weights(reference.get_weights())
    out = mixed(x)
    assert out.dtype == "bfloat16" and mixed.gamma.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out).astype("float32"),
                               keras.ops.convert_to_numpy(reference(x)), atol=0.1)


def test_needs_known_spatial_sizes():
    with pytest.raises(ValueError, match="known size"):
        SelfAttention2D()(keras.Input((None, None, 8)))
