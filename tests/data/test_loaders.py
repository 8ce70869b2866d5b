"""Embedded datasets and tensorflow-datasets loading, all offline."""
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.errors import KerasGenError


def test_mnist5k_split_is_fixed_stratified_and_disjoint():
    x_train, y_train = data.load_arrays("mnist5k", "train")
    x_test, y_test = data.load_arrays("mnist5k", "test")
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)
    x_again, y_again = data.load_arrays("mnist5k", "test")  # the same draw every time
    np.testing.assert_array_equal(x_again, x_test)
    np.testing.assert_array_equal(y_again, y_test)
    assert x_train.max() == 255 and x_train.min() == 0


def test_digits_levels_split_and_resize():
    x_train, y_train = data.load_arrays("digits", "train")
    x_test, _ = data.load_arrays("digits", "test")
    assert x_train.shape[1:] == (8, 8, 1) and len(x_train) + len(x_test) == 1797
    assert len(x_test) == pytest.approx(0.2 * 1797, abs=10)
    assert set(np.unique(x_train)) <= {round(v * 255 / 16) for v in range(17)}
    big, _ = data.load_arrays("digits", "train", image_size=28)
    assert big.shape == (len(x_train), 28, 28, 1) and big.dtype == np.uint8
    assert data.image_shape("digits", 28) == (28, 28, 1)


def test_load_gives_a_dataset_of_uint8_images_and_labels():
    ds = data.load("mnist5k", "test")
    image_spec, label_spec = ds.element_spec
    assert image_spec.shape == (28, 28, 1) and image_spec.dtype == tf.uint8
    assert label_spec.dtype == tf.int64
    assert sum(1 for _ in ds) == 1000


@pytest.mark.parametrize(
    "name, split, message",
    [("cifar", "train", "mnist5k, digits"), ("mnist5k", "validation", "split"), ("mnist5k", "train", "28")],
)
def test_bad_names_are_clear_errors(name, split, message):
    kwargs = {"image_size": 32} if message == "28" else {}
    with pytest.raises(KerasGenError, match=message):
        data.load(name, split, **kwargs)


def test_tfds_names_load_through_tensorflow_datasets():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        ds = data.load("tfds:mnist", "train", image_size=8, download=True)  # mocked: no network
        images = [image for image, _ in ds]
    assert len(images) == 6
    assert images[0].shape == (8, 8, 1) and images[0].dtype == tf.uint8


def test_missing_tfds_dataset_names_the_embedded_alternatives(tmp_path):
    # An empty data folder: what a machine without the data sees. Without download=True this
    # is immediate and never touches the network.
    with pytest.raises(KerasGenError, match="mnist5k, digits") as info:
        data.load("tfds:mnist", "train", data_dir=str(tmp_path))
    assert "not on disk" in str(info.value) and "download=True" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(KerasGenError, match="not available.*mnist5k, digits"):
        data.load("tfds:no_such_dataset_anywhere", "train", data_dir=str(tmp_path))


def _autotune(enabled):
    options = tf.data.Options()
    options.autotune.enabled = enabled
    return options


def test_without_autotune_turns_off_an_unset_autotune_and_keeps_a_users_choice():
    """tf.data's autotuning thread stalls iterator teardown by seconds (`without_autotune`'s
    docstring gives the figures), so keras-gen's datasets leave it off; a dataset whose options
    say either way keeps them, and anything else passes through."""
    ranged = tf.data.Dataset.range(4)
    assert ranged.options().autotune.enabled is None
    assert data.without_autotune(ranged).options().autotune.enabled is False
    assert data.without_autotune(ranged.with_options(_autotune(True))).options().autotune.enabled is True
    assert list(data.without_autotune(ranged).as_numpy_iterator()) == [0, 1, 2, 3]
    images = np.zeros((2, 8, 8, 1), np.uint8)
    assert data.without_autotune(images) is images
    assert data.load("digits", "test").options().autotune.enabled is False


@pytest.mark.parametrize("size", [0, -3, True, 28.0, "28", 1025, None])
def test_image_size_is_checked_alike_by_load_load_arrays_and_image_shape(size):
    """Every embedded name refuses a size that is no whole number from 1 to 1024 in one line
    (digits resized any of them through TensorFlow, or silently to 1x1 for True); image_shape
    agrees with load_arrays on what each name takes."""
    from keras_gen.data import loaders

    if size is None:  # each name's own size
        for name in data.EMBEDDED:
            assert loaders.image_shape(name) == data.load_arrays(name, "test")[0].shape[1:]
        return
    for name in data.EMBEDDED:
        for call in (lambda: data.load_arrays(name, "test", image_size=size),
                     lambda: data.load(name, "test", image_size=size),
                     lambda: loaders.image_shape(name, size)):
            with pytest.raises(KerasGenError, match="image_size must be a whole number from 1 to 1024"):
                call()


def test_a_fixed_size_dataset_refuses_another_size_in_image_shape_too():
    from keras_gen.data import loaders

    for name in ("mnist5k", "mnistm5k", "syndigits5k"):
        with pytest.raises(KerasGenError, match=f"{name} is 28x28; image_size must be 28 or unset"):
            loaders.image_shape(name, 32)
        assert loaders.image_shape(name, 28)[:2] == (28, 28)
    assert loaders.image_shape("digits", 20) == (20, 20, 1) == data.load_arrays("digits", "test", 20)[0].shape[1:]
