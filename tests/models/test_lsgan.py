"""LSGAN (Mao et al. 2017): the least-squares game with targets a, b, c, saving and export."""
import keras
import numpy as np
import pytest
from conftest import assert_unconditional_export_matches, digits8

from keras_gen import registry
from keras_gen.models.lsgan import LSGAN

KEYS = {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
PAPER_ALTERNATIVE = {"name": "least_squares", "a": -1, "b": 1, "c": 0}


def tiny(**kwargs):
    return LSGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
                 seed=1, **kwargs)



def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_defaults_are_the_0_1_coding_with_adam():
    model = tiny()
    model.compile()
    assert model.loss_pair.name == "least_squares" and not model.loss_pair.probability
    assert (model.d_steps, model.penalty, model.clip_value) == (1, None, None)
    # a = 0, b = 1, c = 1: D's loss vanishes at D(x) = b, D(G(z)) = a; G's at D(G(z)) = c.
    assert float(model.loss_pair.discriminator(np.array([1.0]), np.array([0.0]))) == 0.0
    assert float(model.loss_pair.generator(np.array([1.0]))) == 0.0
    assert float(model.loss_pair.discriminator(np.array([3.0]), np.array([-1.0]))) == pytest.approx(2.5)
    for opt in (model.d_optimizer, model.g_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(2e-4)
        assert (opt.beta_1, opt.beta_2) == (0.5, 0.999)


@pytest.mark.parametrize("loss, a, b", [(None, 0.0, 1.0), (PAPER_ALTERNATIVE, -1.0, 1.0)])
def test_reported_d_loss_is_the_least_squares_formula_on_d_outputs(loss, a, b):
    """With a batch of one, d_real and d_fake are the critic's raw outputs of that step."""
    model = tiny()
    model.compile(**({} if loss is None else {"loss": loss}))
    history = model.fit(digits8(1), batch_size=1, epochs=1, verbose=0).history
    assert set(history) == KEYS and all(np.isfinite(history[k]).all() for k in KEYS)
    real, fake = history["d_real"][0], history["d_fake"][0]
    expected = 0.5 * (real - b) ** 2 + 0.5 * (fake - a) ** 2
    np.testing.assert_allclose(history["d_loss"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], history["d_loss"][0] + history["g_loss"][0], rtol=1e-5)


def test_a_few_steps_train_with_finite_losses():
    model = tiny()
    model.compile()
    history = model.fit(digits8(32), batch_size=16, epochs=2, verbose=0).history
    assert set(history) == KEYS and all(np.isfinite(history[k]).all() for k in KEYS)
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 4


def test_save_load_keeps_outputs_optimizer_states_and_the_targets(tmp_path):
    model = tiny()
    model.compile(loss=PAPER_ALTERNATIVE)
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "lsgan.keras")
    loaded = keras.models.load_model(tmp_path / "lsgan.keras")
    assert type(loaded) is LSGAN and loaded.get_config() == model.get_config()
    z = model.latents(6, seed=0)
    np.testing.assert_array_equal(numpy(loaded.generate(z)), numpy(model.generate(z)))
    assert loaded.loss_pair.name == "least_squares" and "a=-1, b=1, c=0" in loaded.loss_pair.doc
    assert float(loaded.loss_pair.generator(np.array([0.0]))) == 0.0  # c = 0
    assert float(loaded.loss_pair.discriminator(np.array([1.0]), np.array([-1.0]))) == 0.0  # b = 1, a = -1
    assert (loaded.d_steps, loaded.penalty) == (1, None)
    for name in ("d_optimizer", "g_optimizer"):
        ours, theirs = getattr(model, name), getattr(loaded, name)
        assert type(theirs) is type(ours) and int(theirs.iterations) == int(ours.iterations) == 1
        assert len(theirs.variables) == len(ours.variables) > 2
        for x, y in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(numpy(x), numpy(y))


def test_export_serves_the_same_images_without_keras_gen(tmp_path):
    model = tiny()
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    assert_unconditional_export_matches(model, tmp_path, "lsgan", seed=9)


def test_registry_names_the_class():
    assert registry.model_class("lsgan") is LSGAN
    assert registry.name_of(tiny()) == "lsgan"
