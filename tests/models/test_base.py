"""What every model inherits from the bases for bad input: seeds and counts checked the same
way everywhere, a bound on the images one call makes, empty training data refused before any
weight moves."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import averaging_adam, tiny_cgan, tiny_dcgan, tiny_pixelcnn
from keras_gen.errors import KerasGenError
from keras_gen.models import DCGAN
from keras_gen.seeds import MAX_SAMPLES, MAX_SEED, check_count, check_seed


def state(model):
    """Every variable a step could move: weights, BatchNorm statistics, noise generators' state,
    both optimizers' step counters and slots."""
    optimizers = [getattr(model, name) for name in ("optimizer", "d_optimizer", "g_optimizer")
                  if hasattr(getattr(model, name, None), "variables")]
    variables = list(model.variables) + [v for o in optimizers for v in o.variables]
    return {f"{i}:{v.path}": keras.ops.convert_to_numpy(v).copy() for i, v in enumerate(variables)}


def assert_unchanged(before, after):
    assert before.keys() == after.keys()
    moved = [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]
    assert not moved, moved


@pytest.mark.parametrize("make", [tiny_dcgan, tiny_pixelcnn])
@pytest.mark.parametrize(
    "empty",
    [
        lambda shape: np.zeros((0, *shape), np.uint8),
        lambda shape: tf.data.Dataset.from_tensor_slices(np.zeros((0, *shape), np.uint8)).batch(4),
        lambda shape: tf.data.Dataset.from_tensor_slices(np.zeros((4, *shape), np.uint8)).batch(2).take(0),
        lambda shape: tf.data.Dataset.from_tensor_slices(np.zeros((4, *shape), np.uint8)).filter(
            lambda x: False).batch(2),  # unknown length
    ],
    ids=["array", "dataset", "take(0)", "filtered"],
)
def test_fit_on_empty_data_is_refused_before_any_weight_moves(make, empty):
    """Keras 3 runs one partial step on empty data: BatchNorm statistics, the noise streams and
    the optimizers' step counters moved while fit reported nothing."""
    model = make()
    model.compile()
    before = state(model)
    with pytest.raises(KerasGenError, match="at least one image|empty"):
        model.fit(empty(model.image_shape), epochs=1, verbose=0)
    with pytest.raises(KerasGenError, match="at least one image|empty"):
        model.evaluate(empty(model.image_shape), verbose=0)
    assert_unchanged(before, state(model))


class EmptyPyDataset(keras.utils.PyDataset):
    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


@pytest.mark.parametrize("empty, message", [(EmptyPyDataset, "length 0"), (lambda: (x for x in []), "at least one batch")],
                         ids=["PyDataset", "generator"])
def test_empty_pydatasets_and_generators_are_refused_by_keras_before_any_step(empty, message):
    model = tiny_dcgan()
    model.compile()
    before = state(model)
    with pytest.raises(ValueError, match=message):  # Keras' own one-line message
        model.fit(empty(), epochs=1, verbose=0)
    assert_unchanged(before, state(model))


@pytest.mark.parametrize("make", [tiny_dcgan, tiny_pixelcnn])
def test_empty_batches_inside_a_dataset_are_a_clear_error(make):
    model = make()
    model.compile()
    shape = model.image_shape
    before = state(model)
    with pytest.raises(KerasGenError, match="batches hold no images"):  # known when the dataset is made
        model.fit(tf.data.Dataset.from_tensors(np.zeros((0, *shape), np.uint8)), epochs=1, verbose=0)
    assert_unchanged(before, state(model))
    weights = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.weights}
    emptied = tf.data.Dataset.from_tensor_slices(np.zeros((4, *shape), np.uint8)).batch(2).map(
        lambda x: tf.boolean_mask(x, tf.zeros([tf.shape(x)[0]], bool)))  # only known when it runs
    with pytest.raises(KerasGenError, match=r"^a training batch holds no images \(an empty dataset or array\?\) "
                                            r"\(a batch of the data given to fit\)$"):
        model.fit(emptied, epochs=1, verbose=0)

    class FailingCheck(keras.layers.Layer):  # a check of the user's own: TensorFlow's error, unchanged
        def call(self, x):
            with tf.control_dependencies([tf.debugging.assert_less(x, -2.0, message="a check of the user")]):
                return tf.identity(x)

    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"),
                                  keras.layers.Reshape((8, 8, 1)), FailingCheck()])
    discriminator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(name="features"),
                                      keras.layers.Dense(1)])
    custom = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator=generator, discriminator=discriminator)
    custom.compile()
    with pytest.raises(tf.errors.InvalidArgumentError, match="a check of the user"):
        custom.fit(np.zeros((4, 8, 8, 1), np.uint8), batch_size=4, epochs=1, verbose=0)
    assert_unchanged(weights, {v.path: keras.ops.convert_to_numpy(v) for v in model.weights})


@pytest.mark.parametrize("make", [tiny_dcgan, tiny_cgan, tiny_pixelcnn])
def test_numpy_and_tensorflow_integer_seeds_are_the_same_seed(make):
    """Python, NumPy and TF integer seeds in range give the same samples, in every family."""
    model = make()
    expected = keras.ops.convert_to_numpy(model.sample(2, seed=3))
    for seed in (np.int64(3), np.int32(3), np.uint8(3), tf.constant(3), tf.constant(3, tf.int64)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.sample(2, seed=seed)), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.sample(np.int64(2), seed=MAX_SEED)),
                                  keras.ops.convert_to_numpy(model.sample(2, seed=MAX_SEED)))


@pytest.mark.parametrize("make", [tiny_dcgan, tiny_cgan, tiny_pixelcnn])
@pytest.mark.parametrize("seed", [2**32 + 3, np.int64(2**32 + 3), tf.constant(2**32 + 3, tf.int64), np.int64(-1),
                                  tf.constant(-1), MAX_SEED + 1, np.uint64(2**63)])
def test_out_of_range_seeds_never_wrap(make, seed):
    """2**32 + 3 used to draw exactly the samples of seed 3 (int32 wrap) in DCGAN.sample."""
    with pytest.raises(KerasGenError, match=f"seed must be a whole number from 0 to {MAX_SEED}"):
        make().sample(1, seed=seed)


def test_seed_and_count_helpers():
    assert check_seed(np.int16(7)) == 7 and type(check_seed(np.int16(7))) is int
    assert check_seed(tf.Variable(5)) == 5
    assert check_count(np.int64(MAX_SAMPLES)) == MAX_SAMPLES
    for bad in (True, 1.0, "1", None, tf.constant(1.0), tf.constant([1]), np.array([1])):
        with pytest.raises(KerasGenError):
            check_seed(bad)
        with pytest.raises(KerasGenError):
            check_count(bad)
    with pytest.raises(KerasGenError, match=f"at most {MAX_SAMPLES} per call.*concatenate"):
        check_count(MAX_SAMPLES + 1)


def test_one_call_makes_at_most_max_samples_images():
    model = tiny_dcgan()
    assert model.latents(MAX_SAMPLES).shape == (MAX_SAMPLES, 8)
    with pytest.raises(KerasGenError, match=f"at most {MAX_SAMPLES}"):
        model.sample(MAX_SAMPLES + 1)
    with pytest.raises(KerasGenError, match=f"1 to {MAX_SAMPLES} latents"):
        model.generate(np.zeros((MAX_SAMPLES + 1, 8), np.float32))
    with pytest.raises(KerasGenError, match=f"at most {MAX_SAMPLES} images per call"):
        tiny_pixelcnn().log_prob(np.zeros((MAX_SAMPLES + 1, 4, 4, 1), np.uint8))


def test_nan_latents_name_how_many():
    z = np.zeros((3, 8), np.float32)
    z[0, 1], z[2, 5] = np.nan, -np.inf
    with pytest.raises(KerasGenError, match="2 non-finite values"):
        tiny_dcgan().generate(z)


@pytest.mark.parametrize("kwargs, message", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"latent_dim": 2.5}, "latent_dim"),
    ({"generator_widths": (0, 8)}, "generator_widths"),
    ({"discriminator_widths": ()}, "discriminator_widths"),
    ({"image_shape": (8, 8)}, "image_shape"),
    ({"image_shape": "8x8"}, "image_shape"),
])
def test_non_positive_sizes_are_refused_in_constructors(kwargs, message):
    args = {"image_shape": (8, 8, 1), "latent_dim": 8, "generator_widths": (16, 8), "discriminator_widths": (8, 16)}
    with pytest.raises(KerasGenError, match=message):
        DCGAN(**{**args, **kwargs})


def test_a_saved_model_keeps_its_noise_generators_state_and_trains_on_identically(tmp_path):
    """Keras saves no SeedGenerator state; GenerativeModel does, beside its own variables,
    so a reloaded GAN (here with Dropout in D, whose masks have their own generator) draws
    the noise the original would have drawn next."""
    from keras_gen.models import GAN
    from keras_gen.resume import noise_state

    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1)).astype("uint8")
    model = GAN(image_shape=(8, 8, 1), latent_dim=4, generator_units=(8,), discriminator_units=(8,), seed=5)
    model.compile()
    fresh = noise_state(model)
    model.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras", safe_mode=True)
    assert noise_state(loaded) == noise_state(model) != fresh
    for m in (model, loaded):
        m.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_file_with_another_number_of_noise_generators_is_refused():
    class Store(dict):
        pass

    model = tiny_dcgan()
    store = Store()
    model.save_own_variables(store)
    store[f"{model.SEED_STATE_KEY}{len(store)}"] = np.zeros(2, np.uint32)
    with pytest.raises(KerasGenError, match="built differently"):
        model.load_own_variables(store)


def test_an_optimizer_config_may_name_a_learning_rate_schedule_without_its_module():
    """A recipe's `compile.optimizer` with a schedule as its learning rate (Keras itself needs
    a "module" key there) gives that schedule; a schedule that does not exist is one line."""
    spec = averaging_adam(1e-3, decay_steps=100, ema_momentum=0.99)
    model = tiny_pixelcnn()
    model.compile(optimizer=spec)
    rate = model.optimizer._learning_rate
    assert isinstance(rate, keras.optimizers.schedules.CosineDecay)
    np.testing.assert_allclose(float(rate(50)), 1e-3 * 0.5 * (1 + np.cos(np.pi * 0.5)), rtol=1e-6)
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.99
    assert spec["config"]["learning_rate"]["class_name"] == "CosineDecay"  # the caller's dict is untouched
    bad = {"class_name": "Adam", "config": {"learning_rate": {"class_name": "NoSuchDecay", "config": {}}}}
    with pytest.raises(KerasGenError, match="cannot make an optimizer"):
        tiny_pixelcnn().compile(optimizer=bad)
