"""What every keras-gen model shares: image checks, metrics Keras understands, compile
round-trips, presets and serving signatures.

Family bases build on it: `LatentModel` (a generator from z, `models/latent.py`),
`AdversarialModel` (two players, `models/adversarial.py`) and `AutoregressiveModel`
(exact likelihoods, `models/autoregressive.py`). A model then defines only its networks and
what its paper changes; training, sample grids, export and the zoo ask a model what it
offers (`offers("sample")`) instead of assuming it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.compile_utils import MetricsList

from keras_gen import distribute, hardware
from keras_gen.data.loaders import without_autotune
from keras_gen.errors import KerasGenError
from keras_gen.recipe import PRECISIONS
from keras_gen.seeds import MAX_SAMPLES, MAX_SEED, check_count, check_seed, whole_number  # noqa: F401 (re-exported)


# The Keras compile arguments every keras-gen model accepts as they are.
KERAS_COMPILE_ARGS = ("jit_compile", "run_eagerly", "steps_per_execution")
MAX_STEPS_PER_EXECUTION = 1000  # steps unrolled into one call of the train function, at most


def in_chunks(fn, inputs, chunk, outputs):
    """`fn(*inputs)` over consecutive slices of `chunk` rows, concatenated: what one call gives
    for a computation row by row, at the memory of `chunk` rows.

    A `tf.while_loop`, so that eager and traced calls alike take any batch size, known or not
    (inside a `tf.function`, `Dataset.map`, an export). `inputs`: tensors sharing their first
    dimension (None entries are passed as None); `outputs`: `(dtype, shape after the batch
    dimension)` of each of fn's results (fn returns one tensor, or a tuple of several).
    """
    n = tf.shape(inputs[0])[0]
    steps = (n + chunk - 1) // chunk
    arrays = tuple(tf.TensorArray(dtype, size=steps, infer_shape=False, element_shape=tf.TensorShape([None, *shape]))
                   for dtype, shape in outputs)

    def body(i, arrays):
        start = i * chunk
        results = fn(*(x if x is None else x[start:start + chunk] for x in inputs))
        results = results if isinstance(results, tuple) else (results,)
        return i + 1, tuple(array.write(i, result) for array, result in zip(arrays, results))

    _, arrays = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), arrays))
    results = tuple(array.concat() for array in arrays)
    return results if len(results) > 1 else results[0]


def numpy_dtype(x) -> np.dtype:
    """The NumPy dtype of an array, a TensorFlow tensor, or anything `np.asarray` takes (a list)."""
    dtype = getattr(x, "dtype", None)
    return np.dtype(getattr(dtype, "as_numpy_dtype", dtype)) if dtype is not None else np.asarray(x).dtype


def batch_size_of(images):
    """The number of images: a Python int where the shape says it, else a scalar tensor (traced
    with the batch dimension unknown)."""
    return int(images.shape[0]) if images.shape[0] is not None else tf.shape(images)[0]


class LossWatch:
    """Two step counters kept by each replica (`ON_READ`: no communication in the step; read
    from the first replica, whose loss the logs show): `steps`, the steps run, and `first_bad`,
    the value of `steps` at the first step whose loss was NaN or infinite (-1: none yet)."""

    def __init__(self):
        def counter(value):
            return tf.Variable(value, dtype=tf.int64, trainable=False,
                               synchronization=tf.VariableSynchronization.ON_READ,
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        self.steps, self.first_bad = counter(0), counter(-1)

    def note(self, loss):
        steps = self.steps.assign_add(1)
        if loss is None:
            return
        bad = tf.logical_and(self.first_bad < 0, tf.logical_not(tf.reduce_all(tf.math.is_finite(loss))))
        self.first_bad.assign(tf.where(bad, steps, self.first_bad))

    def read(self, strategy):
        with strategy.scope():
            first, steps = int(self.first_bad.read_value()), int(self.steps.read_value())
        return (None if first < 0 else first), steps

    def reset(self, strategy):
        with strategy.scope():
            self.steps.assign(0)
            self.first_bad.assign(-1)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One named serving signature: `fn(*inputs) -> dict of named tensors`."""

    name: str
    fn: Callable
    input_signature: list
    doc: str


# The inputs of every unconditional model's `sample` signature.
SAMPLE_SIGNATURE = [tf.TensorSpec([], tf.int32, name="batch_size"), tf.TensorSpec([], tf.int32, name="seed")]


def images_to_uint8(images01):
    """Float images in [0, 1] -> uint8 [0, 255], rounded (graph-friendly)."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images01, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def stateless_seed(seed, stream=0):
    """The `[2]` int32 seed of a stateless random op: a user's seed and a stream (e.g. a pixel)."""
    if not tf.is_tensor(seed) or tf.executing_eagerly():  # traced seeds: `assert_sample_inputs`
        seed = check_seed(seed)
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(stream, tf.int32)])


def check_size(name, value, minimum=1, maximum=None) -> int:
    """A size argument (latent_dim, filters, ...) as an int >= `minimum` (and <= `maximum`)."""
    number = whole_number(value)
    if maximum is not None and (number is None or not minimum <= number <= maximum):
        raise KerasGenError(f"{name} must be a whole number from {minimum} to {maximum}, got {value!r}"[:300])
    if number is None or number < minimum:
        raise KerasGenError(f"{name} must be a whole number of at least {minimum}, got {value!r}"[:300])
    return number


def check_sizes(name, values, minimum=1) -> tuple:
    """A non-empty sequence of sizes (layer widths) as a tuple of ints >= `minimum`."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise KerasGenError(f"{name} must be a non-empty list of whole numbers of at least {minimum}, got {values!r}"[:300])
    numbers = tuple(whole_number(v) for v in values)
    if any(v is None or v < minimum for v in numbers):
        raise KerasGenError(f"{name} must be a non-empty list of whole numbers of at least {minimum}, got {values!r}"[:300])
    return numbers


def assert_sample_inputs(batch_size, seed, what="batch_size"):
    """Graph-time checks of a `sample` signature's scalars, for callers Python never sees (TF
    Serving): an InvalidArgumentError that says what is allowed, instead of a failure deep in
    the graph, an empty answer or an out-of-memory kill. Returns them, checked.

    `what` names the batch size in the message (conditional models: the number of labels).
    """
    batch_message = f"{what} must be from 1 to {MAX_SAMPLES} (the most one call may ask for)"
    seed_message = f"seed must be from 0 to {MAX_SEED}"
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(batch_size, tf.constant(1, batch_size.dtype), message=batch_message),
        tf.debugging.assert_less_equal(batch_size, tf.constant(MAX_SAMPLES, batch_size.dtype), message=batch_message),
        tf.debugging.assert_non_negative(seed, message=seed_message),
    ]):
        return tf.identity(batch_size), tf.identity(seed)


def assert_image_batch(images, image_shape):
    """Graph-time check of a signature's uint8 images `[batch, H, W, C]` (the spec fixes the
    rest): 1 to `MAX_SAMPLES` of them, else an InvalidArgumentError that says so. Returns them,
    checked."""
    h, w, c = image_shape
    message = f"images must hold 1 to {MAX_SAMPLES} uint8 images [batch, {h}, {w}, {c}]"
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(tf.shape(images)[0], 1, message=message),
        tf.debugging.assert_less_equal(tf.shape(images)[0], MAX_SAMPLES, message=message),
    ]):
        return tf.identity(images)


# What Keras' own array pipeline does besides shuffling and batching: left to it.
_ARRAY_OPTIONS_KERAS_KEEPS = ("validation_split", "steps_per_epoch", "steps")
_EXAMPLE_WEIGHTS = ("sample_weight", "class_weight")


def check_data_kind(x, what):
    """Refuse, in one line, what Keras would take for something else or fail on deep inside:
    no data, a string, a dict or a Python list or tuple (Keras reads those as several inputs)."""
    if x is None or isinstance(x, (str, bytes, dict, list, tuple, int, float)):
        got = "nothing" if x is None else f"a {type(x).__name__}"
        raise KerasGenError(f"{what} takes uint8 images as one array [batch, H, W, C], a tf.data.Dataset, a "
                            f"PyDataset or a generator (labels as y, or in the batches); got {got}")


def _as_tuples(generator):
    for item in generator:
        yield item if isinstance(item, (tuple, list)) else (item,)


def _check_same_length(x, y, what="x and y"):
    """Refuse images and labels of different lengths (Keras' own "cardinality is ambiguous"
    check, which keras-gen's array pipeline replaces)."""
    lengths = [len(part) for part in (x, y) if hasattr(part, "shape") and hasattr(part, "__len__")
               and getattr(part, "ndim", 0) >= 1]
    if len(lengths) == 2 and lengths[0] != lengths[1]:
        raise KerasGenError(f"{what} must hold one label per image: got {lengths[0]} images and {lengths[1]} labels")


def without_autotune_stall(x, y, args, kwargs, shuffle):
    """`(x, y, kwargs)` for Keras' `fit`, `evaluate` or `predict` with tf.data's autotuning off,
    whose thread stalls the end of every epoch that re-iterates a dataset by seconds (see
    `keras_gen.data.without_autotune`; measured on arrays too: 10 of 15 of DCGAN's 5-second
    epochs ran at half speed).

    - A `tf.data.Dataset` (`x`, or `validation_data`) whose options leave autotuning unset
      gets it turned off.
    - NumPy arrays `x` (and `y`) become the dataset Keras would build for them: the examples
      in a fresh random order every epoch when `shuffle` (`kwargs["shuffle"]`, else the
      default given), batches of `batch_size` (Keras' default 32), the last one possibly
      smaller; `validation_data=(x_val[, y_val])` likewise, in order. Calls that give arrays
      more than that (`validation_split`, step counts, `shuffle="batch"`, positional
      settings) go to Keras' own pipeline as they are.
    - Refused with a one-line error: `sample_weight` and `class_weight` (no keras-gen step
      weighs examples), and images and labels of different lengths.
    - A generator's bare arrays become 1-tuples (Keras takes tuples only).
    - `fit` on a dataset or generator (also arrays made one here) passes `shuffle=False` unless
      asked otherwise: Keras shuffles no dataset, but its default `shuffle=True` warns that it
      does not.
    """
    kwargs = dict(kwargs)
    for weights in _EXAMPLE_WEIGHTS:
        if kwargs.get(weights) is not None:
            # A custom train_step reads (x, y) only: Keras would pass the weights as a third
            # part of every batch, which the steps would ignore (or, for domain adaptation,
            # take for target images).
            raise KerasGenError(f"keras-gen models do not weigh examples: {weights} is not supported")
    _check_same_length(x, y)
    if inspect.isgenerator(x):
        # Keras takes from a generator only tuples; a generator of bare image batches (what
        # an unconditional model trains on) failed with a message that printed the batch.
        x = _as_tuples(x)
    fitting = shuffle  # fit's default is True; evaluate and predict take no `shuffle`
    shuffle = kwargs.get("shuffle", shuffle)
    batch_size = kwargs.get("batch_size") or 32
    if isinstance(x, np.ndarray) and (y is None or isinstance(y, np.ndarray)) and not args \
            and shuffle in (True, False) and not any(kwargs.get(k) is not None for k in _ARRAY_OPTIONS_KERAS_KEEPS):
        x, y = _array_batches(x if y is None else (x, y), batch_size, bool(shuffle)), None
        kwargs.pop("batch_size", None)
        kwargs.pop("shuffle", None)
    validation = kwargs.get("validation_data")
    if isinstance(validation, (tuple, list)) and len(validation) == 2:
        _check_same_length(*validation, what="validation_data")
    if isinstance(validation, (tuple, list)) and 1 <= len(validation) <= 2 \
            and all(isinstance(part, np.ndarray) for part in validation):
        validation_batch_size = kwargs.pop("validation_batch_size", None) or batch_size
        kwargs["validation_data"] = _array_batches(tuple(validation) if len(validation) == 2 else validation[0],
                                                   validation_batch_size, False)
    elif validation is not None:
        kwargs["validation_data"] = without_autotune(validation)
    if fitting and "shuffle" not in kwargs and (isinstance(x, tf.data.Dataset) or inspect.isgenerator(x)):
        # `fit`'s default shuffle=True has Keras 3.15 warn on every dataset (and generator) that it
        # ignores it; so did an explicit shuffle=False on arrays, once they were made a dataset here.
        kwargs["shuffle"] = False
    return without_autotune(x), y, kwargs


def _array_batches(arrays, batch_size, shuffle):
    """Batches of `arrays` (an array, or a tuple of arrays of one length) as a dataset:
    an index order (a fresh permutation every epoch, from TensorFlow's global seed, when
    `shuffle`), batched, each batch gathered from the arrays."""
    first = arrays[0] if isinstance(arrays, tuple) else arrays
    tensors = tf.nest.map_structure(tf.convert_to_tensor, arrays)
    order = tf.data.Dataset.range(len(first))
    if shuffle:
        order = order.shuffle(len(first), reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(
        lambda index: tf.nest.map_structure(lambda tensor: tf.gather(tensor, index), tensors))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA  # as Keras' own
    return without_autotune(batches.prefetch(tf.data.AUTOTUNE).with_options(options))


# The messages of keras-gen's checks of the data inside traced steps (`data_check`): only
# these are turned into one line by `graph_checks_as_one_line`; any other assertion (a user
# network's, TFP's) keeps TensorFlow's error and traceback.
DATA_CHECKS: set = set()


def data_check(message: str) -> str:
    """`message`, noted as that of a keras-gen check of the data (see `DATA_CHECKS`)."""
    DATA_CHECKS.add(message)
    return message


@contextlib.contextmanager
def graph_checks_as_one_line(what):
    """A failed data check of keras-gen's (`data_check`) inside a traced step (a label out of
    range in a dataset, an empty batch: what Python never sees) as a one-line KerasGenError
    naming it, instead of TensorFlow's "Graph execution error" of dozens of lines. The
    check's message stands before
    TensorFlow's "Condition ... did not hold", on the line before it (the assertion of a
    traced condition) or in brackets before it ("assertion failed: [message.  ] [Condition
    ..."); any other error passes unchanged."""
    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        text = str(exc.message)
        lines = [line.strip() for line in text.splitlines()]
        failed = [lines[i - 1] for i in range(1, len(lines))
                  if lines[i].startswith("Condition ") and "did not hold" in lines[i] and lines[i - 1]]
        failed += [m.rstrip(" ").removesuffix(".") for m in
                   re.findall(r"assertion failed: \[(.+?)\] \[Condition [^\]]* did not hold", text)]
        failed = [message for message in failed if message in DATA_CHECKS]
        if not failed:
            raise
        raise KerasGenError(f"{failed[0]} (a batch of the data given to {what})") from None


class DirectedMean(keras.metrics.Mean):
    """A running mean that tells Keras' callbacks whether lower or higher is better.

    `EarlyStopping`, `ReduceLROnPlateau` and `ModelCheckpoint(save_best_only=True)` read
    `_direction` ("down" or "up") to choose `mode="auto"`; without it they refuse names they
    cannot guess (anything but `loss` and `*accuracy`).
    """

    def __init__(self, name, direction="down", dtype=None):
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
        super().__init__(name=name, dtype=dtype)
        self._direction = direction


class MetricGroup(MetricsList):
    """The model's trackers, grouped so that Keras' callbacks can see their directions.

    Keras' monitor callbacks look for a metric's `_direction` only among the metrics of a
    `MetricsList` (keras/src/callbacks/monitor_callback.py), not among a model's own metrics,
    so the trackers are reported through one.
    """

    def result(self):
        return {m.name: m.result() for m in self.metrics}


class GenerativeModel(keras.Model):
    """Base of keras-gen models. `image_shape` is `(H, W, C)`; `precision` a Keras dtype policy,
    or "auto" (the default: `keras_gen.hardware.resolve_precision` on the CPU that builds it).

    Subclasses declare their trackers with `track(name, direction)`, update them in
    `train_step` / `test_step`, and return `self.metric_results()`. Every model reports a
    `loss`: the total it minimises, so Keras' default callbacks work.
    """

    def __init__(self, image_shape, precision="auto", **kwargs):
        super().__init__(**kwargs)
        iterable = hasattr(image_shape, "__iter__") and not isinstance(image_shape, (str, bytes, dict))
        sizes = tuple(map(whole_number, image_shape)) if iterable else None
        if sizes is None or len(sizes) != 3 or any(d is None or d < 1 for d in sizes):
            raise KerasGenError(f"image_shape must be (H, W, C) with positive whole sizes, got {image_shape!r}"[:300])
        image_shape = sizes
        if precision not in PRECISIONS:
            raise KerasGenError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.image_shape = image_shape
        # "auto" is resolved here, on the CPU that builds the model; the config (and so a
        # saved model) holds the result, "float32" or "mixed_bfloat16".
        self.precision = hardware.resolve_precision(precision)
        self._compile_kwargs = None
        self._trackers = {}
        self._metric_group = None

    # -- metrics -------------------------------------------------------------------------
    def track(self, name, direction="down"):
        """Declare (once, in `__init__`) a running mean reported by `fit` and `evaluate`."""
        tracker = DirectedMean(name, direction)
        self._trackers[name] = tracker
        self._metric_group = MetricGroup(list(self._trackers.values()), name="keras_gen_metrics")
        return tracker

    def show_metrics(self, *names):
        """Report only these trackers (e.g. a GAN's `penalty` only when it has one)."""
        self._metric_group = MetricGroup([self._trackers[n] for n in names], name="keras_gen_metrics")

    @property
    def metrics(self):
        return [self._metric_group] if self._metric_group is not None else []

    @property
    def metrics_names(self):
        """The reported figures' names, `loss` first: the order of `evaluate`'s and
        `train_on_batch`'s list (Keras' own would name the one group of trackers)."""
        if self._metric_group is None:
            return []
        names = [m.name for m in self._metric_group.metrics]
        return sorted(names, key=lambda name: name != "loss")

    def _flatten_metrics_in_order(self, logs):
        # What Keras returns without `return_dict`: `loss, accuracy = model.evaluate(...)`
        # must not get them in alphabetical order. Keras' own order comes from `metrics`,
        # which holds one group here.
        names = [name for name in self.metrics_names if name in logs]
        results = [logs[name] for name in names] + [logs[key] for key in sorted(logs) if key not in names]
        return results[0] if len(results) == 1 else results

    def update_metrics(self, weight=None, **values):
        """Add each value to its tracker's running mean; `weight` (e.g.
        `keras_gen.distribute.batch_weight(n)`) weighs a batch mean by its examples."""
        for name, value in values.items():
            self._trackers[name].update_state(value, sample_weight=weight)

    def metric_results(self):
        """What a step returns: every shown tracker's running mean."""
        return distribute.step_outputs(self._metric_group.result())

    # -- what the model offers -----------------------------------------------------------
    def offers(self, capability: str) -> bool:
        """Whether the model provides `capability`: "sample", "log_prob", "evaluate", ...

        Sample grids, export and the CLI ask this instead of assuming.
        """
        if capability == "evaluate":
            return type(self).test_step is not keras.Model.test_step
        return callable(getattr(type(self), capability, None))

    @property
    def samples_fast(self) -> bool:
        """Whether a batch of samples costs about one pass of the network (GANs, autoregressive
        models with a cached sampler) rather than one pass per sub-pixel: training draws a
        sample grid every epoch only then, and zoo cards score samples only then."""
        return True

    # -- images in -----------------------------------------------------------------------
    def check_images(self, images, max_batch=None):
        """Validate a batch of uint8 images `[B, H, W, C]` of this model's shape, B >= 1.

        `max_batch`: the most images the caller handles at once (`MAX_SAMPLES` for methods
        that run one batch through a network; None for those that split it themselves).
        """
        if not hasattr(images, "shape") or not hasattr(images, "dtype"):
            try:
                images = np.asarray(images)
            except (TypeError, ValueError):  # ragged nested lists
                images = np.asarray(None)
        shape = tuple(images.shape) if images.shape is not None else ()
        expected = f"[batch, {', '.join(map(str, self.image_shape))}]"
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise KerasGenError(f"expected uint8 images of shape {expected}, got shape {list(shape)}")
        dtype = numpy_dtype(images)
        if dtype != np.uint8:
            raise KerasGenError(f"expected uint8 images {expected} with values 0..255, got dtype {dtype.name}")
        if shape[0] is not None:
            if shape[0] == 0:
                raise KerasGenError(f"expected at least one image {expected}, got none (shape {list(shape)})")
            if max_batch is not None and shape[0] > max_batch:
                raise KerasGenError(
                    f"at most {max_batch} images per call, got {shape[0]}; pass them in chunks and concatenate"
                )
        return tf.convert_to_tensor(images)

    def unpack(self, data):
        """`(images uint8 [B, H, W, C], labels int or None)` from what `fit` hands a step.

        Checked on the traced shapes and dtypes, so it covers arrays, `tf.data`, `PyDataset`
        and generators alike, with one line instead of a shape error deep in a network.
        """
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, labels = data, None
        self._check_batch_spec(images.shape, images.dtype)
        # An empty batch inside a dataset (Python refuses empty arrays and datasets before
        # `fit`): a clear error before any weight or BatchNorm statistic moves (ops that do not
        # read the images, such as the optimizers' step counters, may still have run).
        empty = data_check("a training batch holds no images (an empty dataset or array?)")
        with tf.control_dependencies([tf.debugging.assert_positive(tf.shape(images)[0], message=empty)]):
            images = tf.identity(images)
        return images, labels

    def _check_batch_spec(self, shape, dtype):
        shape = tuple(shape) if getattr(shape, "rank", 0) is not None else ()
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape or tf.as_dtype(dtype) != tf.uint8:
            hint = " (batch the dataset)" if len(shape) == 3 else ""
            raise KerasGenError(
                f"expected batches of uint8 images [batch, {', '.join(map(str, self.image_shape))}] with values "
                f"0..255, got {tf.as_dtype(dtype).name} {list(shape)}{hint}"
            )

    def _check_training_data(self, x, y=None, what="fit"):
        """Fail before Keras starts on arrays and datasets that cannot be images of this model."""
        check_data_kind(x, what)
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if isinstance(spec, (tuple, list)):
                spec, labels_spec = spec[0], (spec[1] if len(spec) > 1 else None)
                if labels_spec is not None and hasattr(labels_spec, "dtype"):
                    self.check_labels_dtype(labels_spec.dtype)
            self._check_batch_spec(spec.shape, spec.dtype)
            self._check_not_empty(x)
        elif x is not None and hasattr(x, "shape") and hasattr(x, "dtype"):
            self.check_images(x)
            if y is not None and hasattr(y, "dtype"):
                self.check_training_labels(np.asarray(y))

    def _check_evaluation_data(self, x, y=None):
        """What `evaluate` refuses before Keras starts (a model's own data checks)."""
        self._check_training_data(x, y, "evaluate")

    def _check_validation_data(self, validation):
        """`fit`'s `validation_data` as arrays, checked as `evaluate` checks them, before the
        first epoch's training rather than deep in its validation."""
        if isinstance(validation, (tuple, list)) and validation and hasattr(validation[0], "shape"):
            self._check_evaluation_data(validation[0], validation[1] if len(validation) > 1 else None)

    @staticmethod
    def _check_not_empty(dataset):
        """Refuse a dataset without batches before Keras runs a step on it: Keras 3 runs one
        (partial) step on an empty dataset, moving BatchNorm statistics and optimizer steps.
        A dataset of unknown length (`filter`, generators) is asked for its first batch."""
        spec = dataset.element_spec[0] if isinstance(dataset.element_spec, (tuple, list)) else dataset.element_spec
        if getattr(spec, "shape", None) is not None and spec.shape.rank and spec.shape[0] == 0:
            raise KerasGenError(f"the dataset's batches hold no images (shape {spec.shape.as_list()})")
        cardinality = int(dataset.cardinality())
        if cardinality == tf.data.UNKNOWN_CARDINALITY:
            cardinality = sum(1 for _ in dataset.take(1))
        if cardinality == 0:
            raise KerasGenError("the dataset is empty: it holds no batches to train or evaluate on")

    def check_labels_dtype(self, dtype):
        """Labels that come with the images (ignored by unconditional models)."""

    def check_training_labels(self, labels):
        """Label values given to `fit` / `evaluate` as an array (ignored by unconditional models)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-gen models are built when constructed and their optimizers in `compile`, so
        # Keras' symbolic build has nothing to build. Under a tf.distribute strategy Keras
        # 3.15 would still take a batch off the training iterator and average it across
        # replicas, which fails for uint8 images under MultiWorkerMirroredStrategy
        # (collectives take no uint8) and for replicas of unequal batches.
        optimizer = getattr(self, "optimizer", None)
        if self.built and (optimizer is None or optimizer.built):
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_training_data(x, y)
        self._check_validation_data(kwargs.get("validation_data"))
        x, y, kwargs = without_autotune_stall(x, y, args, kwargs, shuffle=True)
        with graph_checks_as_one_line("fit"):
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_evaluation_data(x, y)
        x, y, kwargs = without_autotune_stall(x, y, args, kwargs, shuffle=False)
        with graph_checks_as_one_line("evaluate"):
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        x, _, kwargs = without_autotune_stall(x, None, args, kwargs, shuffle=False)
        return super().predict(x, *args, **kwargs)

    # -- which step's loss went non-finite, also inside a group of steps -------------------
    # With `steps_per_execution` = k, Keras runs k steps in one call of the train function and
    # shows callbacks only the last one's logs, so a callback alone can name only the group.
    # The train function keras-gen compiles runs `train_step` and then notes, in two counters
    # outside the model's weights, how many steps it has run and the first of them whose loss
    # was not finite (`StopOnNonFinite` reads them to name the very step).
    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        if not hasattr(self, "_make_function"):  # a Keras without it: the group is named
            return super().make_train_function(force)
        with self.distribute_strategy.scope():
            watch = LossWatch()
        # Set past Keras' and TensorFlow's tracking: the counters are not weights, and are
        # neither saved in a .keras file nor exported.
        object.__setattr__(self, "_loss_watch", watch)
        self.train_function = self._make_function(self._watched_train_step)
        return self.train_function

    def _watched_train_step(self, data):
        logs = self.train_step(data)
        self._loss_watch.note(logs.get("loss"))
        return logs

    def first_non_finite_step(self):
        """`(first, run)`: the train function's count of steps run up to and including the
        first whose loss was not finite (None if none was), and of all steps run, since
        `reset_loss_watch`; None before `fit` has built the train function."""
        watch = getattr(self, "_loss_watch", None)
        return None if watch is None else watch.read(self.distribute_strategy)

    def reset_loss_watch(self):
        watch = getattr(self, "_loss_watch", None)
        if watch is not None:
            watch.reset(self.distribute_strategy)

    @staticmethod
    def images_to_float(images):
        """uint8 [0, 255] -> float32 [-1, 1], the networks' input range."""
        return tf.cast(images, tf.float32) / 127.5 - 1.0

    # -- what subclasses provide ---------------------------------------------------------
    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Keras' `model.save`, to a `.keras` file. Keras' legacy HDF5 format (`.h5`) keeps no
        subclassed model: it failed deep inside Keras after writing part of the file, and what
        it wrote could not be loaded. Refused here, before anything is written."""
        if str(filepath).lower().endswith((".h5", ".hdf5")):
            raise KerasGenError(f"{filepath}: a keras-gen model saves as a .keras file (Keras' legacy .h5 format "
                                "keeps no subclassed model); give a name ending in .keras, or use save_weights "
                                "with a name ending in .weights.h5")
        return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' `model.export(filepath)`: a SavedModel with the model's named signatures
        (`keras_gen.export`; Keras' own export knows no keras-gen model's inputs), written to
        the new folder `filepath` through a temporary one. For TF Serving's versioned layout
        use `keras_gen.export.export(model, out, name)` or `keras-gen export`."""
        from keras_gen import export

        if format != "tf_saved_model":
            raise KerasGenError(f"a keras-gen model exports as format='tf_saved_model', not {format!r}")
        if input_signature is not None or kwargs:
            given = ["input_signature"] * (input_signature is not None) + sorted(kwargs)
            raise KerasGenError(f"a keras-gen model exports its own named signatures; it takes no {', '.join(given)}")
        path = export.export_to(self, filepath)
        if verbose:
            print(f"exported {type(self).__name__} to {path}:\n{export.describe(self)}")
        return path

    def serving_endpoints(self) -> list[Endpoint]:
        """The named signatures a SavedModel export carries; the first is also serving_default."""
        raise NotImplementedError

    def sample_endpoint(self, sample_uint8, how: str) -> Endpoint:
        """The `sample` signature: `sample_uint8(batch_size, seed)` -> `{"images": uint8}`."""
        h, w, c = self.image_shape
        return Endpoint(
            "sample",
            lambda batch_size, seed: {"images": sample_uint8(*assert_sample_inputs(batch_size, seed))},
            SAMPLE_SIGNATURE,
            f"batch_size int32 (1 to {MAX_SAMPLES}), seed int32 (0 to {MAX_SEED}) -> images uint8 "
            f"[batch_size, {h}, {w}, {c}]; {how}",
        )

    # -- compile: checked arguments, and a loaded .keras comes back compiled --------------
    def compile_keras(self, keras_args: dict, remember: dict, optimizer=None):
        """Compile with the Keras arguments a keras-gen model accepts; refuse the rest.

        `remember` holds the model's own compile arguments (optimizers, losses, penalties),
        stored so `get_compile_config` restores them on load; `optimizer` is Keras' own.
        """
        unknown = sorted(set(keras_args) - set(KERAS_COMPILE_ARGS))
        if unknown:
            # Named parameters only: not the **keyword catch-all (e.g. "keras_args").
            own = [name for name, p in inspect.signature(self.compile).parameters.items() if p.kind != p.VAR_KEYWORD]
            raise KerasGenError(
                f"{type(self).__name__}.compile() got unknown argument(s) {', '.join(unknown)}; "
                f"it takes {', '.join(own + list(KERAS_COMPILE_ARGS))}"
            )
        if "steps_per_execution" in keras_args:  # -1 trained no step at all
            check_size("steps_per_execution", keras_args["steps_per_execution"], maximum=MAX_STEPS_PER_EXECUTION)
        for flag in ("run_eagerly", "jit_compile"):
            if flag in keras_args and not (isinstance(keras_args[flag], bool)
                                           or flag == "jit_compile" and keras_args[flag] == "auto"):
                raise KerasGenError(f"{flag} must be true or false{' or auto' if flag == 'jit_compile' else ''}, "
                                    f"got {keras_args[flag]!r}"[:300])
        # What the user chose is remembered (a loaded model compiles the same); XLA, when not
        # chosen or "auto", is decided on the CPU the model compiles on: on only where it was
        # measured faster (`keras_gen.hardware.auto_jit_compile`: AVX2-only CPUs). Keras' own
        # "auto" would ask its backend instead, which turns XLA off for these models on every CPU.
        self._compile_kwargs = {**remember, **keras_args}
        keras_args = {**keras_args, "jit_compile": keras_args.get("jit_compile", "auto")}
        if keras_args["jit_compile"] == "auto":
            keras_args["jit_compile"] = hardware.auto_jit_compile()
        super().compile(optimizer=optimizer, **keras_args)

    def get_compile_config(self):
        if self._compile_kwargs is None:
            return None
        return keras.saving.serialize_keras_object(self._compile_kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    @staticmethod
    def optimizer_from(spec, default=None):
        """An optimizer from an instance, a name, a Keras config dict, or `default()` for None.

        A config's `learning_rate` may itself be a schedule's config, such as
        {"class_name": "CosineDecay", "config": {"initial_learning_rate": 1e-3,
        "decay_steps": 3000}}: Keras alone reads that only with a "module" key, which a
        recipe written by hand lacks.
        """
        if spec is None and default is not None:
            return default()
        try:
            if isinstance(spec, dict) and isinstance(spec.get("config"), dict):
                rate = spec["config"].get("learning_rate")
                if isinstance(rate, dict):
                    rate = keras.optimizers.schedules.deserialize(rate)
                    spec = {**spec, "config": {**spec["config"], "learning_rate": rate}}
            return keras.optimizers.get(spec)
        except (ValueError, TypeError) as exc:
            raise KerasGenError(f"cannot make an optimizer from {spec!r}: {str(exc).splitlines()[0][:200]}") from None

    # -- presets (the KerasHub convention) -------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, compile: bool = True, precision=None, zoo_dir=None):
        """The zoo entry `name` as a ready model, offline (`keras_gen.zoo.load`: `precision`
        None for the entry's own, or "auto", "float32", "mixed_bfloat16"); refuses an entry of
        another class."""
        from keras_gen import zoo

        model = zoo.load(name, zoo_dir=zoo_dir, compile=compile, precision=precision)
        if not isinstance(model, cls):
            raise KerasGenError(f"zoo entry {name!r} is a {type(model).__name__}, not a {cls.__name__}")
        return model

    # -- saving: the noise generators' state travels with the weights ------------------------
    # Keras 3.15 saves no `keras.random.SeedGenerator` state in a .keras file, so a reloaded
    # GAN would draw its training noise (and Dropout its masks) from the start again. Each
    # generator's state is saved beside the model's own variables, in the order of
    # `keras_gen.resume.seed_generators` (fixed by how the model is built).
    SEED_STATE_KEY = "seed_generator_state_"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        from keras_gen.resume import seed_generators

        for i, (_, generator) in enumerate(seed_generators(self)):
            store[f"{self.SEED_STATE_KEY}{i}"] = generator.state

    def load_own_variables(self, store):
        from keras_gen.resume import seed_generators

        keys = list(store.keys())
        super().load_own_variables({k: store[k] for k in keys if not k.startswith(self.SEED_STATE_KEY)})
        saved = sorted((k for k in keys if k.startswith(self.SEED_STATE_KEY)),
                       key=lambda k: int(k[len(self.SEED_STATE_KEY):]))
        generators = seed_generators(self)
        if saved and len(saved) != len(generators):
            raise KerasGenError(f"the file holds {len(saved)} noise generator states, the model has "
                                f"{len(generators)}: it was saved by a model built differently")
        for key, (_, generator) in zip(saved, generators):  # files from before this: fresh noise
            generator.state.assign(np.asarray(store[key]))

    def get_config(self):
        return {
            "image_shape": list(self.image_shape),
            "precision": self.precision,
            "name": self.name,
        }
