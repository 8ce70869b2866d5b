"""The adversarial base: every stabiliser is one compile option on any GAN, and the game's
bookkeeping (d_steps, EMA, metrics, saving) holds. Checked on a tiny DCGAN."""
import keras
import numpy as np
import pytest

from keras_gen import data, regularizers
from keras_gen.errors import KerasGenError
from keras_gen.models import CGAN, DCGAN


def tiny(**kwargs):
    return DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
                 seed=1, **kwargs)


def digits8(n=32):
    return data.load_arrays("digits", "train")[0][:n]


def numpy_of(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


@pytest.mark.parametrize(
    "options, shown",
    [
        ({"loss": "hinge"}, set()),
        ({"loss": "wasserstein", "penalty": "gradient_penalty", "d_steps": 2}, {"penalty"}),
        ({"penalty": "dragan"}, {"penalty"}),
        ({"penalty": "r1", "penalty_weight": 1.0}, {"penalty"}),
        ({"loss": {"name": "least_squares", "a": -1, "b": 1, "c": 0}}, set()),
        ({"instance_noise": 0.1, "instance_noise_steps": 4}, set()),
        ({"augment": ["translation", "cutout"]}, set()),
        ({"replay_buffer": 16, "replay_fraction": 0.5}, set()),
        ({"orthogonal_regularization": 1e-4}, set()),
        ({"clip_value": 0.05, "optimizer": "rmsprop"}, set()),
    ],
)
def test_every_stabiliser_trains_saves_and_loads(tmp_path, options, shown):
    model = tiny()
    model.compile(**options)
    history = model.fit(digits8(), batch_size=16, epochs=1, verbose=0).history
    assert set(history) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"} | shown
    assert all(np.isfinite(v[0]) for v in history.values())
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    z = model.latents(3, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.generate(z)),
                                  keras.ops.convert_to_numpy(model.generate(z)))
    for key in ("d_steps", "penalty", "clip_value", "instance_noise", "augment", "orthogonal_regularization"):
        assert getattr(loaded, key) == getattr(model, key), key
    assert loaded.loss_pair.name == model.loss_pair.name
    loaded.fit(digits8(), batch_size=16, epochs=1, verbose=0)  # and it trains on


def test_d_steps_and_weight_clipping():
    model = tiny()
    model.compile(d_steps=3, clip_value=0.02)
    model.fit(digits8(), batch_size=16, epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 3 * int(model.g_optimizer.iterations) == 6
    assert all(np.abs(w).max() <= 0.02 + 1e-7 for w in numpy_of(model.discriminator.trainable_variables))


def test_the_penalty_is_weighted_into_the_discriminator_loss():
    """One D step with plain SGD: D's update is -lr * grad(d_loss + λ·penalty); with λ = 0
    the same batch and noise give a different update (so the penalty reaches D)."""
    updates = []
    for weight in (0.0, 100.0):
        model = tiny()
        model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.0),
                      penalty="gradient_penalty", penalty_weight=weight)
        before = numpy_of(model.discriminator.trainable_variables)
        model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
        updates.append([a - b for a, b in zip(numpy_of(model.discriminator.trainable_variables), before)])
    assert not all(np.allclose(a, b) for a, b in zip(*updates))


def test_ema_generator_follows_the_formula_and_draws_the_samples():
    """ema <- d_t ema + (1 - d_t) G with d_t = min(decay, (1 + t) / (10 + t)), t the generator
    updates so far: the first update nearly copies G (d_1 = 2/11), and from t = 89 on (for
    decay 0.9) the decay itself applies."""
    model = tiny(ema_decay=0.9)
    model.compile()
    assert len(model.ema_generator.weights) == len(model.generator.weights)
    assert model.ema_generator.name == model.generator.name + "_ema"  # not a second "generator" in summary()
    trained = {id(w) for w in model.generator.trainable_weights}
    for updates_before, decay in ((0, 2 / 11), (999, 0.9)):
        model.g_optimizer.iterations.assign(updates_before)
        ema_before = numpy_of(model.ema_generator.weights)
        model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)  # one step
        assert int(model.g_optimizer.iterations) == updates_before + 1
        pairs = [(e, o, n) for e, o, n in zip(model.ema_generator.weights, ema_before, model.generator.weights)
                 if id(n) in trained]
        assert len(pairs) == len(model.generator.trainable_weights)
        for ema, old, new in pairs:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(ema),
                                       decay * old + (1 - decay) * keras.ops.convert_to_numpy(new),
                                       rtol=1e-5, atol=1e-7)
    # Decay 0.999 after the README snippet's 640 steps: a window of about 70 steps, not 1,000.
    assert float(tiny(ema_decay=0.999).ema_decay_at(640)) == pytest.approx(641 / 650)
    z = model.latents(2, seed=0)
    expected = (keras.ops.convert_to_numpy(model.ema_generator(z, training=False)) + 1) / 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.generate(z)), expected, atol=1e-6)
    assert not np.allclose(expected, (keras.ops.convert_to_numpy(model.generator(z, training=False)) + 1) / 2)


def test_passed_in_networks_are_used_and_serialised(tmp_path):
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1)),
                                  keras.layers.Activation("tanh")])
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(name="features"),
                                      keras.layers.Dense(1)])
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator=generator, discriminator=discriminator)
    assert model.generator is generator and model.discriminator is discriminator
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "custom.keras")
    loaded = keras.models.load_model(tmp_path / "custom.keras")
    assert len(loaded.generator.layers) == 3
    z = model.latents(2, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.generate(z)),
                                  keras.ops.convert_to_numpy(model.generate(z)))
    assert keras.ops.convert_to_numpy(model.discriminator_features(digits8(5))).shape == (5, 64)


def test_passed_in_networks_that_do_not_fit_the_model_are_one_line_errors():
    """They were taken as they came: a generator of 14x14 images for image_shape 28x28 gave
    `sample` images of 14x14 and `fit` a traceback, a generator of another latent size
    tracebacks from both, a discriminator of 3 outputs trained silently, and a generator ending
    in a sigmoid sampled mid-grey to white images without a word."""
    def generator(latent=4, shape=(8, 8, 1), activation="tanh"):
        return keras.Sequential([keras.Input((latent,)), keras.layers.Dense(int(np.prod(shape))),
                                 keras.layers.Reshape(shape), keras.layers.Activation(activation)])

    def discriminator(shape=(8, 8, 1), outputs=1):
        return keras.Sequential([keras.Input(shape), keras.layers.Flatten(name="features"), keras.layers.Dense(outputs)])

    def make(**networks):
        return DCGAN(image_shape=(8, 8, 1), latent_dim=4, **{"generator": generator(),
                                                              "discriminator": discriminator(), **networks})

    with pytest.raises(KerasGenError, match=r"^the generator passed in does not take latents \[batch, 4\]: .*16"):
        make(generator=generator(latent=16))
    with pytest.raises(KerasGenError, match=r"^the generator passed in makes \(2, 4, 4, 1\) from latents \[batch, 4\], "
                                            r"not images \[batch, 8, 8, 1\] \(image_shape\)$"):
        make(generator=generator(shape=(4, 4, 1)))
    with pytest.raises(KerasGenError, match=r"^the discriminator passed in gives \(2, 3\) for 2 images, not one logit"):
        make(discriminator=discriminator(outputs=3))
    with pytest.raises(KerasGenError, match=r"^the discriminator passed in does not take images \[batch, 8, 8, 1\]: "):
        make(discriminator=discriminator(shape=(9, 9, 1)))
    with pytest.warns(UserWarning, match="ends in sigmoid: keras-gen reads G's images in \\[-1, 1\\]") as seen:
        make(generator=generator(activation="sigmoid"))
    assert seen[0].filename == __file__  # the user's line, not one inside keras-gen
    # Also a sigmoid Dense before the Reshape, and a ReLU layer.
    with pytest.warns(UserWarning, match="ends in sigmoid"):
        make(generator=keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="sigmoid"),
                                         keras.layers.Reshape((8, 8, 1))]))
    with pytest.warns(UserWarning, match="ends in relu"):
        make(generator=keras.Sequential([keras.Input((4,)), keras.layers.Dense(64), keras.layers.ReLU(),
                                         keras.layers.Reshape((8, 8, 1))]))
    # A PatchGAN discriminator (a logit per patch, averaged by the losses) is a discriminator.
    patches = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, strides=2, name="features"),
                                keras.layers.Conv2D(1, 1)])
    make(discriminator=patches)
    cgan = CGAN(image_shape=(8, 8, 1), num_classes=3, latent_dim=4, generator_widths=(8,), discriminator_widths=(8,))
    with pytest.raises(KerasGenError, match=r"does not take latents \[batch, 4\] and labels \[batch\]"):
        CGAN(image_shape=(8, 8, 1), num_classes=3, latent_dim=4, generator=generator(),
             discriminator=cgan.discriminator)


def test_bad_options_are_one_line_errors():
    with pytest.raises(KerasGenError, match="penalty must be"):
        tiny().compile(penalty="gradient")
    with pytest.raises(KerasGenError, match="d_steps"):
        tiny().compile(d_steps=0)
    with pytest.raises(KerasGenError):
        tiny().compile(augment=["rotate"])
    with pytest.raises(KerasGenError, match="ema_decay"):
        tiny(ema_decay=1.5)
    with pytest.raises(KerasGenError, match="latent_dim"):
        DCGAN(latent_dim=0)
    without_features = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(KerasGenError, match="needs a layer named 'features'"):
        DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator=without_features)
    opt = keras.optimizers.Adam()
    with pytest.raises(KerasGenError, match="two optimizer instances"):
        tiny().compile(d_optimizer=opt, g_optimizer=opt)


def test_penalty_on_the_model_matches_the_regulariser_on_a_linear_critic():
    """The base hands the penalty functions D on the images it saw; on a linear D (no
    nonlinearity between input and logit) the gradient-penalty value is (‖w‖ − 1)² exactly."""
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(name="features"),
                                      keras.layers.Dense(1)])
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator=discriminator)
    model.compile(penalty="gradient_penalty")
    real = model.images_to_float(digits8(4))
    fake = model.generator(model.latents(4), training=False)
    w = keras.ops.convert_to_numpy(discriminator.layers[-1].kernel)
    value = float(model.penalty_value(real, fake, None))
    assert value == pytest.approx((np.linalg.norm(w) - 1.0) ** 2, rel=1e-4)
    assert float(regularizers.r1_penalty(lambda x: model.discriminate(x, None, True)[0], real)) == pytest.approx(
        0.5 * np.linalg.norm(w) ** 2, rel=1e-4)


def test_least_squares_targets_and_the_evaluated_penalty_survive_saving(tmp_path):
    from keras_gen import losses

    model = tiny()
    model.compile(loss=losses.get("least_squares", a=-1, b=1, c=0), penalty="gradient_penalty")
    model.save(tmp_path / "ls.keras")
    loaded = keras.models.load_model(tmp_path / "ls.keras")
    assert loaded.loss_pair.params == {"a": -1.0, "b": 1.0, "c": 0.0}
    result = loaded.evaluate(digits8(16), batch_size=16, verbose=0, return_dict=True)
    assert result["penalty"] > 0
    assert result["loss"] == pytest.approx(result["d_loss"] + result["g_loss"] + 10.0 * result["penalty"], rel=1e-5)


def test_spectral_norm_and_minibatch_stddev_are_one_option_each(tmp_path):
    from keras_gen.layers import MinibatchStdDev, SpectralNorm

    model = tiny(spectral_norm=True, minibatch_stddev=True)
    layers = model.discriminator.layers
    assert sum(isinstance(layer, SpectralNorm) for layer in layers) == 3  # two convolutions and the logit
    assert sum(isinstance(layer, MinibatchStdDev) for layer in layers) == 1
    model.compile()
    model.fit(digits8(16), batch_size=16, epochs=1, verbose=0)
    for layer in layers:
        if isinstance(layer, SpectralNorm):
            kernel = keras.ops.convert_to_numpy(layer.normalized_kernel())
            assert np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0] < 1.2
    model.save(tmp_path / "sn.keras")
    loaded = keras.models.load_model(tmp_path / "sn.keras")
    assert loaded.spectral_norm and loaded.minibatch_stddev
    x = model.images_to_float(digits8(4))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.discriminator(x)),
                                  keras.ops.convert_to_numpy(model.discriminator(x)))


def test_one_optimizer_for_both_players_may_name_a_learning_rate_schedule():
    """README's schedule form (no "module" key) worked for d_optimizer alone; `optimizer` (both
    players) gave a multi-line Keras error."""
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8, 4), discriminator_widths=(4, 8))
    schedule = {"class_name": "CosineDecay", "config": {"initial_learning_rate": 1e-3, "decay_steps": 100}}
    model.compile(optimizer={"class_name": "Adam", "config": {"learning_rate": schedule}})
    assert model.d_optimizer is not model.g_optimizer
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)


def test_a_schedule_counts_training_steps_for_both_players_with_several_d_steps(tmp_path):
    """With d_steps = 3, D updates 3 times per step: its copy of the schedule read its own
    count and ran 3 times faster than G's (D's rate reached 0 a third of the way through).
    Both now read the training step; a saved and reloaded model keeps that, and compiling it
    again does not divide D's count twice."""
    schedule = {"class_name": "CosineDecay", "config": {"initial_learning_rate": 1e-3, "decay_steps": 4}}
    model = tiny()
    model.compile(optimizer={"class_name": "SGD", "config": {"learning_rate": schedule}}, d_steps=3)
    model.fit(digits8(32), batch_size=16, epochs=1, verbose=0)  # 2 steps
    assert int(model.d_optimizer.iterations) == 6 and int(model.g_optimizer.iterations) == 2
    cosine = keras.optimizers.schedules.CosineDecay(1e-3, 4)
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert float(optimizer.learning_rate) == pytest.approx(float(cosine(2)), rel=1e-6)
    assert float(model.optimizer.learning_rate) == pytest.approx(float(cosine(2)), rel=1e-6)  # one rate
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(float(cosine(2)), rel=1e-6)
    loaded.compile(d_optimizer=loaded.d_optimizer, g_optimizer=loaded.g_optimizer, d_steps=3)
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(float(cosine(2)), rel=1e-6)


@pytest.mark.parametrize("d_steps", [0, 1.5, "2", True, 101, 10**9])
def test_d_steps_is_a_whole_number_from_1_to_100(d_steps):
    """Each update is unrolled into the traced step: 1e9 traced for over ten minutes."""
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8, 4), discriminator_widths=(4, 8))
    with pytest.raises(KerasGenError, match="d_steps must be a whole number from 1 to 100"):
        model.compile(d_steps=d_steps)
