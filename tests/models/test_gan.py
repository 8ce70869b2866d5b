"""GAN (Goodfellow et al. 2014): MLP players, the paper's game, saving, export and the CLI."""
import json

import keras
import numpy as np
import pytest
from conftest import call_in_serving_process, run_cli

from keras_gen import data, export, registry
from keras_gen.errors import KerasGenError
from keras_gen.models.gan import GAN

KEYS = {"loss", "d_loss", "g_loss", "d_real", "d_fake"}


def tiny(**kwargs):
    kwargs.setdefault("image_shape", (8, 8, 1))
    return GAN(latent_dim=8, generator_units=(16,), discriminator_units=(16, 8), seed=1, **kwargs)


def digits8(n=32):
    return data.load_arrays("digits", "train")[0][:n]


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def as_uint8(images01):
    return np.round(numpy(images01) * 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (6, 10, 3)])
def test_mlp_networks_make_images_of_any_shape(shape):
    model = GAN(image_shape=shape, latent_dim=8, generator_units=(16, 16), discriminator_units=(16, 8))
    images = numpy(model.sample(3, seed=0))
    assert images.shape == (3, *shape)
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.0
    assert numpy(model.discriminator(model(model.latents(2)))).shape == (2, 1)
    assert [type(layer).__name__ for layer in model.generator.layers].count("Dense") == 3
    assert not any("Conv" in type(layer).__name__ for layer in model.discriminator.layers)
    # D's representation: the last hidden layer's activations.
    features = numpy(model.discriminator_features(np.zeros((5, *shape), np.uint8)))
    assert features.shape == (5, 8)


def test_defaults_are_the_paper_game_with_adam():
    model = GAN()
    assert (model.latent_dim, model.generator_units, model.discriminator_units) == (100, (256, 512), (512, 256))
    model.compile()
    assert model.loss_pair.name == "non_saturating"
    assert (model.d_steps, model.penalty, model.clip_value) == (1, None, None)
    for opt in (model.d_optimizer, model.g_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(2e-4)
        assert (opt.beta_1, opt.beta_2) == (0.5, 0.999)
    assert model.d_optimizer is not model.g_optimizer
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.discriminator.layers)


def test_a_few_steps_train_both_players_with_finite_losses():
    model = tiny()
    model.compile()
    g_before = [numpy(v).copy() for v in model.generator.trainable_variables]
    d_before = [numpy(v).copy() for v in model.discriminator.trainable_variables]
    history = model.fit(digits8(32), batch_size=16, epochs=2, verbose=0).history
    assert set(history) == KEYS
    assert all(np.isfinite(history[k]).all() for k in KEYS)
    np.testing.assert_allclose(history["loss"], np.add(history["d_loss"], history["g_loss"]), rtol=1e-5)
    assert 0.0 < history["d_real"][-1] < 1.0 and 0.0 < history["d_fake"][-1] < 1.0
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 4
    assert all(not np.array_equal(a, numpy(b)) for a, b in zip(g_before, model.generator.trainable_variables))
    assert all(not np.array_equal(a, numpy(b)) for a, b in zip(d_before, model.discriminator.trainable_variables))


@pytest.mark.parametrize("loss, sign", [("minimax", -1), ("non_saturating", 1)])
def test_minimax_is_the_saturating_game(loss, sign):
    model = tiny()
    model.compile(loss=loss)
    history = model.fit(digits8(16), batch_size=16, epochs=1, verbose=0).history
    # E log(1 - D(G(z))) < 0 for the minimax game; -E log D(G(z)) > 0 for the non-saturating one.
    assert np.sign(history["g_loss"][0]) == sign


def test_mixed_bfloat16_keeps_float32_images_and_logits():
    model = tiny(precision="mixed_bfloat16")
    model.compile()
    history = model.fit(digits8(16), batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0])
    assert model.generator.layers[0].compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert model(model.latents(2)).dtype == "float32"
    assert model.discriminator(model.images_to_float(digits8(2))).dtype == "float32"


def test_bad_layer_sizes_are_a_clear_error():
    with pytest.raises(KerasGenError, match="generator_units"):
        GAN(image_shape=(8, 8, 1), generator_units=())
    with pytest.raises(KerasGenError, match="discriminator_dropout"):
        GAN(image_shape=(8, 8, 1), discriminator_dropout=1.0)


def test_save_load_keeps_outputs_optimizer_states_and_the_game(tmp_path):
    model = tiny(discriminator_dropout=0.1)
    model.compile(loss="minimax", d_steps=2)
    model.fit(digits8(32), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert type(loaded) is GAN and loaded.get_config() == model.get_config()
    assert loaded.discriminator_dropout == 0.1 and loaded.generator_units == (16,)
    z = model.latents(6, seed=0)
    np.testing.assert_array_equal(numpy(loaded.generate(z)), numpy(model.generate(z)))
    assert (loaded.loss_pair.name, loaded.d_steps, loaded.penalty) == ("minimax", 2, None)
    for name in ("d_optimizer", "g_optimizer"):
        ours, theirs = getattr(model, name), getattr(loaded, name)
        assert type(theirs) is type(ours) and int(theirs.iterations) == int(ours.iterations) > 0
        assert len(theirs.variables) == len(ours.variables) > 2
        for a, b in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(numpy(a), numpy(b))
    assert int(loaded.d_optimizer.iterations) == 2 * int(loaded.g_optimizer.iterations)


def test_export_serves_the_same_images_without_keras_gen(tmp_path):
    model = tiny()
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    path = export.export(model, tmp_path / "serving", "gan")
    z = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    out, stdout = call_in_serving_process(
        path, [("serving_default", {"z": z}), ("sample", {"batch_size": np.int32(3), "seed": np.int32(7)})], tmp_path
    )
    assert "'sample'" in stdout and "'serving_default'" in stdout
    assert out["0/images"].dtype == np.uint8
    np.testing.assert_array_equal(out["0/images"], as_uint8(model.generate(z)))
    np.testing.assert_array_equal(out["1/images"], as_uint8(model.sample(3, 7)))


def test_registry_names_the_class():
    assert registry.model_class("gan") is GAN
    assert registry.name_of(tiny()) == "gan"


def test_cli_trains_a_gan_run(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "gan", "--data", "digits", "--epochs", "1", "--batch-size", "64", "--out", run)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["recipe"]["model"] == "gan" and info["recipe"]["epochs"] == 1
    assert set(info["history"]) == KEYS and len(info["history"]["d_loss"]) == 1
    assert np.isfinite(info["history"]["loss"][0])
    assert isinstance(keras.models.load_model(run / "model.keras"), GAN)
