"""BigGAN: hierarchical latents and the shared embedding, truncation (in Python and in an
export), orthogonal regularisation in the loss, the EMA generator, spectral norm, saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import call_in_serving_process

from keras_gen import data, export, registry
from keras_gen.errors import KerasGenError
from keras_gen.layers.conditional_batch_norm import ConditionalBatchNormalization
from keras_gen.layers.self_attention import SelfAttention2D
from keras_gen.layers.spectral_norm import SpectralNorm
from keras_gen.models.biggan import BigGAN

LATENT, CHUNK, EMBED = 12, 4, 4


def tiny(**kwargs):
    kwargs.setdefault("image_shape", (8, 8, 1))
    kwargs.setdefault("num_classes", 2)
    kwargs.setdefault("ema_decay", None)
    kwargs.setdefault("channels", 8)
    return BigGAN(latent_dim=LATENT, embed_dim=EMBED, seed=1, **kwargs)


def digits8(n=32):
    images, labels = data.load_arrays("digits", "train")
    return images[:n], (labels[:n] % 2).astype("int32")


def np_of(x):
    return keras.ops.convert_to_numpy(x)


def singular_values(kernel):
    kernel = np.asarray(kernel, "float64")
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"image_shape": (28, 28, 1), "channels": 4, "num_classes": 10},
        {"image_shape": (12, 16, 3), "attention_resolution": 3},  # colour, not square, attention at H/4
        {"num_classes": None, "attention_resolution": None},
    ],
)
def test_shapes_range_and_discriminator_contract(kwargs):
    model = tiny(**kwargs)
    shape = model.image_shape
    labels = None if model.num_classes is None else [0, 1, 1]
    images = np_of(model.sample(3, seed=0, labels=labels))
    assert images.shape == (3, *shape) and images.min() >= 0.0 and images.max() <= 1.0
    x = model.images_to_float(np.zeros((3, *shape), np.uint8))
    logits, _ = model.discriminate(x, None if labels is None else keras.ops.convert_to_tensor(labels, "int32"), False)
    assert logits.shape == (3, 1) and logits.dtype == "float32"
    assert model.discriminator_features(np.zeros((2, *shape), np.uint8)).shape == (2, 4 * model.channels)
    attention = [layer for net in (model.generator, model.discriminator) for layer in net.layers
                 if isinstance(layer, SelfAttention2D)]
    expected = model.attention_resolution
    assert [layer.input.shape[1] for layer in attention] == ([] if expected is None else [expected, expected])


def test_attention_defaults_to_half_the_height():
    assert tiny().attention_resolution == 4
    assert BigGAN(channels=2, latent_dim=6, embed_dim=2).attention_resolution == 14  # 28x28 digits


def _randomise_conditional_norms(generator, seed=0):
    """CBN gains and biases start at zero (no effect of the condition); give them some."""
    rng = np.random.default_rng(seed)
    for layer in generator.layers:
        if isinstance(layer, ConditionalBatchNormalization):
            for dense in (layer.gain, layer.bias):
                dense.kernel.assign(0.3 * rng.normal(size=dense.kernel.shape).astype("float32"))


def test_hierarchical_latents_and_the_shared_embedding():
    model = tiny()
    generator = model.generator
    _randomise_conditional_norms(generator)
    embeddings = [layer for layer in generator.layers if isinstance(layer, keras.layers.Embedding)]
    assert len(embeddings) == 1 and len(embeddings[0].weights) == 1  # one shared table
    table = np_of(embeddings[0].embeddings)
    assert table.shape == (2, EMBED)

    # What each conditional batch norm is given as its condition, from a sub-model.
    names = [f"block{i}_bn{j}" for i in (1, 2) for j in (1, 2)]
    conditions = keras.Model(generator.inputs, [generator.get_layer(n).input[1] for n in names])
    z = model.latents(4, seed=0).numpy()
    labels = np.array([0, 1, 1, 0], "int32")
    seen = dict(zip(names, map(np_of, conditions([z, labels]))))
    for i in (1, 2):
        expected = np.concatenate([table[labels], z[:, i * CHUNK:(i + 1) * CHUNK]], axis=1)
        for j in (1, 2):
            np.testing.assert_array_equal(seen[f"block{i}_bn{j}"], expected)

    # Changing only chunk i changes the image, and changes only block i's condition.
    def image(z):
        return np_of(generator([z, labels], training=False))

    base = image(z)
    for i in range(3):
        moved = z.copy()
        moved[:, i * CHUNK:(i + 1) * CHUNK] += 1.0
        assert np.abs(image(moved) - base).max() > 1e-3, f"chunk {i} has no effect"
        if i:
            after = dict(zip(names, map(np_of, conditions([moved, labels]))))
            for name in names:
                assert np.array_equal(after[name], seen[name]) == (not name.startswith(f"block{i}"))


def test_truncation_draws_bounded_reproducible_latents():
    model = tiny()
    z = np_of(model.latents(256, seed=3, truncation=0.5))
    assert np.abs(z).max() <= 0.5 and np.abs(z).max() > 0.45  # bounded, and fills the interval
    np.testing.assert_array_equal(z, np_of(model.latents(256, seed=3, truncation=0.5)))
    assert np.abs(np_of(model.latents(256, seed=3))).max() > 2.0  # untruncated draws go beyond

    labels = [0, 1, 1, 0]
    a = np_of(model.sample(4, seed=3, labels=labels, truncation=0.5))
    np.testing.assert_array_equal(a, np_of(model.sample(4, seed=3, labels=labels, truncation=0.5)))
    np.testing.assert_array_equal(a, np_of(model.generate(model.latents(4, 3, 0.5), labels)))
    assert not np.array_equal(a, np_of(model.sample(4, seed=3, labels=labels)))
    # Not a finite positive number: one line each. At t = inf a uniform draw of exactly 0
    # gave z = -inf (in 10,000 latents of 128, row 7342) and non-finite images.
    for bad in (0.0, -1, float("inf"), float("nan"), True, "2", "abc", [1, 2]):
        with pytest.raises(KerasGenError, match="truncation must be a finite positive number"):
            model.sample(2, labels=[0, 1], truncation=bad)
    assert np.isfinite(np_of(model.latents(4, seed=3, truncation=np.float32(1e30)))).all()


def test_export_sample_signature_matches_python_with_and_without_truncation(tmp_path):
    model = tiny(ema_decay=0.9)
    model.compile(run_eagerly=True)  # two steps: cheaper run than traced
    model.fit(*digits8(16), batch_size=8, epochs=1, verbose=0)  # weights, BN statistics and EMA move
    path = export.export(model, tmp_path / "serving", "biggan")
    labels = np.array([0, 1, 1, 0, 1], np.int32)
    z = np.random.default_rng(0).normal(size=(5, LATENT)).astype(np.float32)
    calls = [
        ("sample", {"labels": labels, "seed": np.int32(11), "truncation": np.float32(0.5)}),
        ("sample", {"labels": labels, "seed": np.int32(11), "truncation": np.float32(0.0)}),
        ("serving_default", {"z": z, "labels": labels}),
    ]
    out, stdout = call_in_serving_process(path, calls, tmp_path)
    assert "'sample'" in stdout

    def uint8(images):
        return np.round(np_of(images) * 255).astype(np.uint8)

    np.testing.assert_array_equal(out["0/images"], uint8(model.sample(5, 11, labels, truncation=0.5)))
    np.testing.assert_array_equal(out["1/images"], uint8(model.sample(5, 11, labels)))
    assert not np.array_equal(out["0/images"], out["1/images"])
    np.testing.assert_array_equal(out["2/images"], uint8(model.generate(z, labels)))
    # A non-finite truncation is refused in the graph (t = inf could draw z = -inf).
    loaded = tf.saved_model.load(str(path))
    for bad in (np.inf, np.nan, -1.0):
        with pytest.raises(tf.errors.InvalidArgumentError, match="truncation must be a finite number >= 0"):
            loaded.signatures["sample"](labels=tf.constant(labels), seed=tf.constant(11),
                                        truncation=tf.constant(bad, tf.float32))


def _orthogonality(kernels, beta):
    """β Σ ‖WᵀW ⊙ (1 − I)‖²_F over the given kernels, in numpy."""
    total = 0.0
    for kernel in kernels:
        matrix = np_of(kernel).astype("float64")
        matrix = matrix.reshape(-1, matrix.shape[-1])
        gram = matrix.T @ matrix
        total += ((gram * (1 - np.eye(len(gram)))) ** 2).sum()
    return beta * total


def test_orthogonal_regularisation_is_in_the_reported_loss():
    images, labels = digits8(16)
    extra = {}
    for setting in ("default", None):
        model = tiny()
        if setting == "default":
            model.compile(run_eagerly=True)  # one step: tracing it would cost more than running it
            assert model.orthogonal_regularization == 1e-4
        else:
            model.compile(orthogonal_regularization=None, run_eagerly=True)
        kernels = [v for v in model.generator.trainable_variables if len(v.shape) >= 2 and v.name != "embeddings"]
        assert any(v.name == "embeddings" for v in model.generator.trainable_variables)  # the shared embedding, left out
        expected = _orthogonality(kernels, 1e-4)  # G's kernels before its update, when the step adds the term
        history = model.fit(images, labels, batch_size=16, epochs=1, verbose=0).history  # one step
        extra[setting] = history["loss"][0] - history["d_loss"][0] - history["g_loss"][0]
        if setting == "default":
            assert expected > 1e-4  # large enough to see next to losses of order 1
            np.testing.assert_allclose(extra[setting], expected, rtol=2e-2)
    assert abs(extra[None]) < 1e-5


def test_ema_generator_follows_the_formula_and_draws_the_samples():
    model = tiny(ema_decay=0.9)
    model.compile(run_eagerly=True)
    name = "block1_conv1"
    ema_weight = model.ema_generator.get_layer(f"{name}_sn").layer.kernel
    weight = model.generator.get_layer(f"{name}_sn").layer.kernel
    old = np_of(ema_weight).copy()
    np.testing.assert_array_equal(old, np_of(weight))  # the copy starts as G
    # Past the warm-up (tests/models/test_adversarial.py checks it): the decay itself applies.
    model.g_optimizer.iterations.assign(999)
    model.fit(*digits8(16), batch_size=16, epochs=1, verbose=0)  # one step
    new = np_of(weight)
    assert np.abs(new - old).max() > 1e-5
    np.testing.assert_allclose(np_of(ema_weight), 0.9 * old + 0.1 * new, rtol=1e-5, atol=1e-7)
    # Non-trainable state (spectral norm's u, BN statistics) is copied from G.
    for sub in ("block1_conv1_sn", "block2_bn1"):
        ours = model.ema_generator.get_layer(sub).non_trainable_weights
        theirs = model.generator.get_layer(sub).non_trainable_weights
        assert ours and all(np.array_equal(np_of(a), np_of(b)) for a, b in zip(ours, theirs))

    z, labels = model.latents(3, seed=0), keras.ops.convert_to_tensor([0, 1, 0], "int32")
    expected = (np_of(model.ema_generator([z, labels], training=False)) + 1) / 2
    np.testing.assert_allclose(np_of(model.generate(z, labels)), expected, atol=1e-6)
    np.testing.assert_allclose(np_of(model.sample(3, seed=0, labels=labels)), expected, atol=1e-6)
    assert not np.allclose(expected, (np_of(model.generator([z, labels], training=False)) + 1) / 2)


@pytest.fixture(scope="module")
def trained_with_large_kernels():
    """A tiny BigGAN as compiled by default (EMA on), its spectral-normalised kernels scaled
    far above σ = 1, then fit for 2 epochs (8 steps, 3 training calls of D each): the state
    two tests below read. One fit for both: tracing BigGAN's step is most of the time."""
    model = tiny(ema_decay=0.99)
    model.compile()
    norms = [layer for layer in model.discriminator.layers if isinstance(layer, SpectralNorm)]
    attention = model.discriminator.get_layer("attention")
    norms += [attention.query, attention.key, attention.value, attention.attention_output]
    rng = np.random.default_rng(0)
    for layer in norms:  # kernels far from the orthogonal initialisation, largest σ well above 1
        kernel = layer.layer.kernel
        kernel.assign(3.0 * rng.normal(size=kernel.shape).astype("float32"))
        assert singular_values(kernel)[0] > 2.0
    history = model.fit(*digits8(32), batch_size=8, epochs=2, verbose=0).history
    return model, norms, history


def test_discriminator_spectral_norms_reach_one(trained_with_large_kernels):
    _, norms, _ = trained_with_large_kernels
    # 3 blocks of 2 convolutions and a 1x1 shortcut, the linear head, the class embedding, attention's 4.
    assert len(norms) == 15 and all(isinstance(layer, SpectralNorm) for layer in norms)
    for layer in norms:
        sigma = singular_values(layer.normalized_kernel())
        assert abs(sigma[0] - 1.0) < 0.02, (layer.name, sigma[:3])
        assert singular_values(layer.layer.kernel)[0] > 2.0  # the raw kernel keeps its scale


def test_default_compile_and_a_few_finite_steps(trained_with_large_kernels):
    model, _, history = trained_with_large_kernels
    assert model.loss_pair.name == "hinge" and model.d_steps == 1
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert float(optimizer.learning_rate) == pytest.approx(2e-4)
        assert float(optimizer.beta_1) == 0.0 and float(optimizer.beta_2) == pytest.approx(0.999)
    assert set(history) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(values).all() for values in history.values())
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 8
    assert np.isfinite(np_of(model.sample(4, seed=0, truncation=0.7))).all()


def test_mixed_bfloat16_trains_with_float32_weights_images_and_logits():
    model = tiny(precision="mixed_bfloat16", ema_decay=0.9)
    model.compile(run_eagerly=True)
    history = model.fit(*digits8(16), batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert model.generator.get_layer("block1_conv1_sn").layer.compute_dtype == "bfloat16"
    z, labels = model.latents(2), keras.ops.convert_to_tensor([0, 1], "int32")
    assert model.generator([z, labels]).dtype == "float32"
    assert model.generate(z, labels).dtype == "float32"
    assert model.discriminator([model.images_to_float(digits8(2)[0]), labels]).dtype == "float32"


def test_save_load_gives_identical_samples(tmp_path):
    model = tiny(ema_decay=0.9)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.99), run_eagerly=True)
    model.fit(*digits8(16), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "biggan.keras")
    loaded = keras.models.load_model(tmp_path / "biggan.keras")
    assert isinstance(loaded, BigGAN) and loaded.get_config() == model.get_config()
    for kwargs in ({"labels": [0, 1, 1, 0, 1]}, {"truncation": 0.5}):
        np.testing.assert_array_equal(np_of(loaded.sample(5, seed=2, **kwargs)), np_of(model.sample(5, seed=2, **kwargs)))
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(1e-4)
    assert loaded.orthogonal_regularization == 1e-4 and loaded.loss_pair.name == "hinge"
    assert int(loaded.g_optimizer.iterations) == 2
    loaded.fit(*digits8(16), batch_size=8, epochs=1, verbose=0)  # and it trains on
    assert int(loaded.g_optimizer.iterations) == 4


def test_registry_name_resolves():
    assert registry.model_class("biggan") is BigGAN
    assert registry.name_of(tiny()) == "biggan"


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(KerasGenError, match="latent_dim must be divisible by 3.*12 or 15"):
        BigGAN(latent_dim=13, channels=2, embed_dim=2)
    with pytest.raises(KerasGenError, match="not divisible by 4"):
        tiny(image_shape=(30, 30, 1))
    with pytest.raises(KerasGenError, match="attention_resolution must be .* 2 \\(H/4\\) or 4 \\(H/2\\)"):
        tiny(attention_resolution=8)
    with pytest.raises(KerasGenError, match="channels must be a positive"):
        BigGAN(channels=0)
    with pytest.raises(KerasGenError, match="conditional"):
        tiny().generate(np.zeros((2, LATENT), "float32"))
