"""The latent-variable base: stateless latents (and truncation), interpolation, input checks."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.models import DCGAN
from keras_gen.models.latent import truncated_normal


def tiny():
    return DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16))


def test_truncated_normal_is_exact_and_stateless():
    seed = tf.constant([3, 0])
    z = truncated_normal([20000], seed, 1.0).numpy()
    assert np.abs(z).max() <= 1.0 and abs(z.mean()) < 0.02
    # Var of N(0,1) truncated to [-1, 1] is 1 - 2·φ(1)/(2Φ(1) - 1) = 0.2911
    assert z.var() == pytest.approx(0.2911, abs=0.01)
    np.testing.assert_array_equal(z, truncated_normal([20000], seed, 1.0).numpy())
    np.testing.assert_array_equal(truncated_normal([5], seed, None).numpy(),
                                  tf.random.stateless_normal([5], seed=seed).numpy())


def test_any_model_may_generate_from_truncated_latents_as_sample_refuses_to_say():
    model = tiny()
    z = keras.ops.convert_to_numpy(model.latents(64, seed=2, truncation=0.5))
    assert np.abs(z).max() <= 0.5 and z.std() > 0.1
    images = keras.ops.convert_to_numpy(model.generate(z))
    assert images.shape == (64, 8, 8, 1) and np.isfinite(images).all()


def test_interpolate_runs_from_one_latent_to_the_other():
    model = tiny()
    z0, z1 = keras.ops.convert_to_numpy(model.latents(2, seed=4))
    images = keras.ops.convert_to_numpy(model.interpolate(z0, z1, steps=5, method="linear"))
    assert images.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(images[0], keras.ops.convert_to_numpy(model.generate(z0[None]))[0], atol=1e-6)
    np.testing.assert_allclose(images[-1], keras.ops.convert_to_numpy(model.generate(z1[None]))[0], atol=1e-6)
    slerp = keras.ops.convert_to_numpy(model.interpolate(z0, z1, steps=5))
    assert not np.allclose(slerp[2], images[2])  # the paths differ between the ends


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.generate(np.zeros((2, 7), np.float32)), r"\[batch, 8\]"),
        (lambda m: m.generate(np.full((2, 8), np.nan, np.float32)), "NaN"),
        (lambda m: m.sample(0), "at least 1"),
        (lambda m: m.sample(2.5), "whole number"),
        (lambda m: m.sample(2, labels=[1, 0]), "unconditional"),
        # ... naming the way to try it on purpose (tested below).
        (lambda m: m.sample(2, truncation=0.5), r"truncate its latents: generate\(latents\(n, seed, truncation=t\)\)"),
        (lambda m: m.latents(-1), "at least 1"),
        (lambda m: m.interpolate(np.zeros(8), np.ones(8), steps=0), "steps must be a whole number >= 2"),
        (lambda m: m.interpolate(np.zeros(8), np.ones(8), steps=1), "steps must be a whole number >= 2"),
        (lambda m: m.interpolate(np.zeros(8), np.ones(8), steps=3, labels=[1, 2, 3]), "one class number"),
    ],
)
def test_bad_latent_inputs_are_one_line_errors(call, message):
    with pytest.raises(KerasGenError, match=message):
        call(tiny())
