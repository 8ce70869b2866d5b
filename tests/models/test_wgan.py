"""WGAN (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017): the papers' settings by
default, the critic's Lipschitz constraint, saving and export."""
import keras
import numpy as np
import pytest
from conftest import assert_unconditional_export_matches, digits8

from keras_gen import registry
from keras_gen.models.dcgan import DCGAN
from keras_gen.models.wgan import WGAN, WGANGP

KEYS = {"loss", "d_loss", "g_loss", "d_real", "d_fake"}


def tiny(cls, **kwargs):
    return cls(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
               seed=1, **kwargs)



def numpy(x):
    return keras.ops.convert_to_numpy(x)


def critic_weights(model):
    return np.concatenate([numpy(v).ravel() for v in model.discriminator.trainable_variables])


def test_wgan_defaults_are_algorithm_1():
    model = tiny(WGAN)
    model.compile()
    assert isinstance(model, DCGAN)
    assert (model.loss_pair.name, model.d_steps, model.clip_value, model.penalty) == ("wasserstein", 5, 0.01, None)
    for opt in (model.d_optimizer, model.g_optimizer):
        assert isinstance(opt, keras.optimizers.RMSprop)
        assert float(opt.learning_rate) == pytest.approx(5e-5)
        assert opt.rho == pytest.approx(0.99)  # the authors' code: PyTorch's RMSprop default
    assert model.d_optimizer is not model.g_optimizer


def test_wgan_gp_defaults_are_algorithm_1():
    model = tiny(WGANGP)
    model.compile()
    assert (model.loss_pair.name, model.d_steps, model.clip_value) == ("wasserstein", 5, None)
    assert (model.penalty, model.penalty_weight) == ("gradient_penalty", 10.0)
    for opt in (model.d_optimizer, model.g_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(1e-4)
        assert (opt.beta_1, opt.beta_2) == (0.0, 0.9)
    # The penalty is per example: no batch norm in the critic.
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.discriminator.layers)


def test_compile_arguments_still_override_the_defaults():
    model = tiny(WGAN)
    model.compile(d_steps=2, clip_value=0.05, optimizer=keras.optimizers.Adam(1e-3))
    assert (model.d_steps, model.clip_value, model.loss_pair.name) == (2, 0.05, "wasserstein")
    assert isinstance(model.d_optimizer, keras.optimizers.Adam)


def test_wgan_step_clips_the_critic_and_takes_five_critic_steps():
    model = tiny(WGAN)
    model.compile()
    assert np.abs(critic_weights(model)).max() > 0.01  # the initial weights are not clipped yet
    history = model.fit(digits8(16), batch_size=16, epochs=1, verbose=0).history
    assert set(history) == KEYS
    assert all(np.isfinite(history[k]).all() for k in KEYS)
    weights = critic_weights(model)
    assert np.abs(weights).max() <= 0.01 and np.isclose(np.abs(weights).max(), 0.01)
    assert (int(model.d_optimizer.iterations), int(model.g_optimizer.iterations)) == (5, 1)
    np.testing.assert_allclose(history["loss"], np.add(history["d_loss"], history["g_loss"]), rtol=1e-5, atol=1e-7)


def test_wgan_gp_steps_report_the_penalty_and_do_not_clip():
    model = tiny(WGANGP)
    model.compile()
    history = model.fit(digits8(32), batch_size=16, epochs=1, verbose=0).history
    assert set(history) == KEYS | {"penalty"}
    assert all(np.isfinite(history[k]).all() for k in history)
    assert history["penalty"][0] > 0.0
    # loss = d_loss + λ·penalty + g_loss with λ = 10.
    expected = history["d_loss"][0] + 10.0 * history["penalty"][0] + history["g_loss"][0]
    np.testing.assert_allclose(history["loss"][0], expected, rtol=1e-4)
    assert np.abs(critic_weights(model)).max() > 0.01
    assert int(model.d_optimizer.iterations) == 5 * int(model.g_optimizer.iterations) == 10


@pytest.mark.parametrize("cls", [WGAN, WGANGP])
def test_save_load_keeps_outputs_optimizer_states_and_the_settings(cls, tmp_path):
    model = tiny(cls)
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "wgan.keras")
    loaded = keras.models.load_model(tmp_path / "wgan.keras")
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    z = model.latents(6, seed=0)
    np.testing.assert_array_equal(numpy(loaded.generate(z)), numpy(model.generate(z)))
    np.testing.assert_array_equal(critic_weights(loaded), critic_weights(model))
    settings = ("d_steps", "penalty", "penalty_weight", "clip_value")
    assert [getattr(loaded, s) for s in settings] == [getattr(model, s) for s in settings]
    assert loaded.loss_pair.name == "wasserstein"
    for name in ("d_optimizer", "g_optimizer"):
        ours, theirs = getattr(model, name), getattr(loaded, name)
        assert type(theirs) is type(ours) and theirs.get_config() == ours.get_config()
        assert len(theirs.variables) == len(ours.variables) > 2
        for a, b in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(numpy(a), numpy(b))
    assert (int(loaded.d_optimizer.iterations), int(loaded.g_optimizer.iterations)) == (5, 1)


def test_export_serves_the_same_images_without_keras_gen(tmp_path):
    model = tiny(WGANGP)
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)  # batch-norm statistics move
    assert_unconditional_export_matches(model, tmp_path, "wgan-gp", seed=5)


def test_registry_names_the_classes():
    assert registry.model_class("wgan") is WGAN
    assert registry.model_class("wgan-gp") is WGANGP
    assert registry.name_of(WGANGP) == "wgan-gp" and registry.name_of(WGAN) == "wgan"
