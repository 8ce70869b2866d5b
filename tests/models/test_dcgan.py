"""DCGAN: shapes, the two players' updates, sampling, saving with both optimizers."""
import keras
import numpy as np
import pytest

from keras_gen import data
from keras_gen.errors import KerasGenError
from keras_gen.models import DCGAN


def tiny(**kwargs):
    kwargs.setdefault("image_shape", (8, 8, 1))
    return DCGAN(latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=1, **kwargs)


def digits8(n=64):
    return data.load_arrays("digits", "train")[0][:n]


def numpy_vars(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def changed(before, after):
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


@pytest.mark.parametrize(
    "shape, widths", [((28, 28, 1), (128, 64)), ((32, 32, 3), (256, 128, 64)), ((8, 8, 1), (16, 8))]
)
def test_shapes_and_range(shape, widths):
    model = DCGAN(image_shape=shape, latent_dim=16, generator_widths=widths)
    images = keras.ops.convert_to_numpy(model.sample(5, seed=0))
    assert images.shape == (5, *shape)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert keras.ops.convert_to_numpy(model.discriminator(model(model.latents(2)))).shape == (2, 1)


def test_sample_is_a_function_of_the_seed():
    model = tiny()
    a = keras.ops.convert_to_numpy(model.sample(4, seed=3))
    np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(model.sample(4, seed=3)))
    assert not np.array_equal(a, keras.ops.convert_to_numpy(model.sample(4, seed=4)))
    z = model.latents(4, seed=3)
    np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(model.generate(z)))


def test_one_epoch_steps_both_players_and_reports_metrics():
    model = tiny()
    model.compile()
    d_before, g_before = numpy_vars(model.discriminator.trainable_variables), numpy_vars(model.generator.trainable_variables)
    history = model.fit(digits8(), batch_size=16, epochs=1, verbose=0).history
    assert set(history) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    np.testing.assert_allclose(history["loss"][0], history["d_loss"][0] + history["g_loss"][0], rtol=1e-5)
    assert 0.0 < history["d_real"][0] < 1.0 and 0.0 < history["d_fake"][0] < 1.0
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 4
    assert all(changed(d_before, numpy_vars(model.discriminator.trainable_variables)))
    assert all(changed(g_before, numpy_vars(model.generator.trainable_variables)))


@pytest.mark.parametrize("frozen", ["generator", "discriminator"])
def test_each_player_updates_only_its_own_weights(frozen):
    """One tape per player: with one player's learning rate at zero, only the other moves."""
    model = tiny()
    zero, adam = keras.optimizers.SGD(0.0), keras.optimizers.Adam(1e-3)
    model.compile(
        d_optimizer=zero if frozen == "discriminator" else adam,
        g_optimizer=zero if frozen == "generator" else adam,
    )
    still = getattr(model, frozen).trainable_variables
    moving = (model.discriminator if frozen == "generator" else model.generator).trainable_variables
    still_before, moving_before = numpy_vars(still), numpy_vars(moving)
    model.fit(digits8(32), batch_size=16, epochs=1, verbose=0)
    assert not any(changed(still_before, numpy_vars(still)))
    assert all(changed(moving_before, numpy_vars(moving)))


def test_minimax_loss_option_trains_and_reports_negative_g_loss():
    model = tiny()
    model.compile(loss="minimax")
    history = model.fit(digits8(32), batch_size=16, epochs=1, verbose=0).history
    assert history["g_loss"][0] < 0.0  # E log(1 - D(G(z))) is negative


def test_save_load_identical_with_both_optimizer_states(tmp_path):
    model = tiny()
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5),
        loss="minimax",
    )
    model.fit(digits8(32), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(loaded, DCGAN) and loaded.get_config() == model.get_config()
    z = model.latents(6, seed=0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.generate(z)), keras.ops.convert_to_numpy(model.generate(z))
    )
    x = model.images_to_float(digits8(4))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.discriminator(x)), keras.ops.convert_to_numpy(model.discriminator(x))
    )
    assert loaded.loss_pair.name == "minimax"
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(5e-4)
    for name in ("d_optimizer", "g_optimizer"):
        ours, theirs = getattr(model, name), getattr(loaded, name)
        assert int(theirs.iterations) == int(ours.iterations) == 2
        assert len(theirs.variables) == len(ours.variables) > 2
        for a, b in zip(ours.variables, theirs.variables):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    loaded.fit(digits8(32), batch_size=16, epochs=1, verbose=0)  # and it trains on
    assert int(loaded.g_optimizer.iterations) == 4


def test_mixed_bfloat16_trains_with_float32_weights_and_logits():
    model = tiny(precision="mixed_bfloat16")
    model.compile()
    history = model.fit(digits8(32), batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0])
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert model.generator.layers[0].compute_dtype == "bfloat16"
    assert model(model.latents(2)).dtype == "float32"
    assert model.discriminator(model.images_to_float(digits8(2))).dtype == "float32"


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(KerasGenError, match="divisible"):
        DCGAN(image_shape=(30, 30, 1))
    with pytest.raises(KerasGenError, match="precision"):
        DCGAN(precision="float16")
    with pytest.raises(KerasGenError, match="unknown .*loss"):
        tiny().compile(loss="hinged")
    with pytest.raises(KerasGenError, match="unknown argument.*metrics"):
        tiny().compile(metrics=["accuracy"])


def test_training_data_that_does_not_fit_is_a_clear_error():
    import tensorflow as tf

    model = tiny()
    model.compile()
    with pytest.raises(KerasGenError, match="uint8"):
        model.fit(digits8().astype("float32") / 255.0, verbose=0)
    with pytest.raises(KerasGenError, match="uint8 images"):
        model.fit(tf.data.Dataset.from_tensor_slices(np.zeros((4, 9, 9, 1), np.uint8)).batch(2), verbose=0)
    with pytest.raises(KerasGenError, match="batch the dataset"):
        model.fit(tf.data.Dataset.from_tensor_slices(digits8(4)), verbose=0)


@pytest.mark.parametrize("seed", [-1, 2**31])
def test_seeds_out_of_range_are_a_clear_error(seed):
    with pytest.raises(KerasGenError, match="seed must be"):
        tiny().sample(1, seed=seed)
