"""DRAGAN (Kodali et al. 2017): the original game plus a penalty around the data, with the
authors' settings by default; saving and export."""
import keras
import numpy as np
import pytest
from conftest import assert_unconditional_export_matches, digits8

from keras_gen import registry
from keras_gen.models.dragan import DRAGAN

KEYS = {"loss", "d_loss", "g_loss", "d_real", "d_fake", "penalty"}


def tiny(**kwargs):
    return DRAGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
                  seed=1, **kwargs)



def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_defaults_are_the_authors_settings():
    model = tiny()
    model.compile()
    assert model.loss_pair.name == "non_saturating"
    assert (model.penalty, model.penalty_weight, model.d_steps, model.clip_value) == ("dragan", 10.0, 1, None)
    for opt in (model.d_optimizer, model.g_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(1e-4)
        assert (opt.beta_1, opt.beta_2) == (0.5, 0.9)
    assert model.d_optimizer is not model.g_optimizer


def test_a_few_steps_report_the_penalty_with_finite_losses():
    model = tiny()
    model.compile()
    history = model.fit(digits8(32), batch_size=16, epochs=2, verbose=0).history
    assert set(history) == KEYS
    assert all(np.isfinite(history[k]).all() for k in KEYS)
    assert all(p > 0.0 for p in history["penalty"])
    # loss = d_loss + λ·penalty + g_loss with λ = 10.
    expected = np.add(history["d_loss"], history["g_loss"]) + 10.0 * np.asarray(history["penalty"])
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-4)
    assert 0.0 < history["d_real"][-1] < 1.0 and 0.0 < history["d_fake"][-1] < 1.0  # probabilities
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 4


def test_without_the_penalty_it_is_not_reported():
    model = tiny()
    model.compile(penalty=None)
    history = model.fit(digits8(16), batch_size=16, epochs=1, verbose=0).history
    assert set(history) == KEYS - {"penalty"}


def test_save_load_keeps_outputs_optimizer_states_and_the_penalty(tmp_path):
    model = tiny()
    model.compile(penalty_weight=5.0)
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "dragan.keras")
    loaded = keras.models.load_model(tmp_path / "dragan.keras")
    assert type(loaded) is DRAGAN and loaded.get_config() == model.get_config()
    z = model.latents(6, seed=0)
    np.testing.assert_array_equal(numpy(loaded.generate(z)), numpy(model.generate(z)))
    assert (loaded.loss_pair.name, loaded.penalty, loaded.penalty_weight, loaded.d_steps) == (
        "non_saturating", "dragan", 5.0, 1)
    for name in ("d_optimizer", "g_optimizer"):
        ours, theirs = getattr(model, name), getattr(loaded, name)
        assert type(theirs) is type(ours) and theirs.get_config() == ours.get_config()
        assert int(theirs.iterations) == int(ours.iterations) == 1
        assert len(theirs.variables) == len(ours.variables) > 2
        for a, b in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(numpy(a), numpy(b))
    history = loaded.fit(digits8(16), batch_size=16, epochs=1, verbose=0).history  # and it trains on
    assert "penalty" in history and int(loaded.g_optimizer.iterations) == 2


def test_export_serves_the_same_images_without_keras_gen(tmp_path):
    model = tiny()
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    assert_unconditional_export_matches(model, tmp_path, "dragan", seed=2)


def test_registry_names_the_class():
    assert registry.model_class("dragan") is DRAGAN
    assert registry.name_of(tiny()) == "dragan"
