"""What every keras-gen model shares: image checks, metrics Keras understands, compile
round-trips, presets and serving signatures.

Family bases build on it: `LatentModel` (a generator from z, `models/latent.py`),
`AdversarialModel` (two players, `models/adversarial.py`) and `AutoregressiveModel`
(exact likelihoods, `models/autoregressive.py`). A model then defines only its networks and
what its paper changes; training, sample grids, export and the zoo ask a model what it
offers (`offers("sample")`) instead of assuming it.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.compile_utils import MetricsList

from keras_gen.errors import KerasGenError
from keras_gen.recipe import PRECISIONS
from keras_gen.seeds import check_seed


# XLA is off by default: on the 2-core AVX-512 CPUs we measure on it was slower than
# TensorFlow's oneDNN kernels for DCGAN (float32 0.78x and 0.95x, bfloat16 0.68x and 0.55x
# in two runs of bench/dcgan_throughput.py, 2026-11-25) and PixelCNN training (0.83x).
# `compile(jit_compile=True)` turns it on.
DEFAULT_JIT_COMPILE = False

# The Keras compile arguments every keras-gen model accepts as they are.
KERAS_COMPILE_ARGS = ("jit_compile", "run_eagerly", "steps_per_execution")


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
    if not tf.is_tensor(seed):  # tensors (export signatures) are the caller's to keep in range
        check_seed(seed)
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(stream, tf.int32)])


def check_count(n, what="n") -> int:
    """A positive number of images, as a Python int."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise KerasGenError(f"{what} must be a whole number of at least 1, got {n!r}")
    return int(n)


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
    """Base of keras-gen models. `image_shape` is `(H, W, C)`; `precision` a Keras dtype policy.

    Subclasses declare their trackers with `track(name, direction)`, update them in
    `train_step` / `test_step`, and return `self.metric_results()`. Every model reports a
    `loss`: the total it minimises, so Keras' default callbacks work.
    """

    def __init__(self, image_shape, precision="float32", **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise KerasGenError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}")
        if precision not in PRECISIONS:
            raise KerasGenError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.image_shape = image_shape
        self.precision = precision
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

    def update_metrics(self, **values):
        for name, value in values.items():
            self._trackers[name].update_state(value)

    def metric_results(self):
        return self._metric_group.result()

    # -- what the model offers -----------------------------------------------------------
    def offers(self, capability: str) -> bool:
        """Whether the model provides `capability`: "sample", "log_prob", "evaluate", ...

        Sample grids, export and the CLI ask this instead of assuming.
        """
        if capability == "evaluate":
            return type(self).test_step is not keras.Model.test_step
        return callable(getattr(type(self), capability, None))

    # -- images in -----------------------------------------------------------------------
    def check_images(self, images):
        """Validate a batch of uint8 images `[B, H, W, C]` of this model's shape."""
        shape = tuple(getattr(images, "shape", ()))
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise KerasGenError(
                f"expected images of shape [batch, {', '.join(map(str, self.image_shape))}], got {list(shape)}"
            )
        dtype = np.dtype(getattr(images.dtype, "as_numpy_dtype", images.dtype))
        if dtype != np.uint8:
            raise KerasGenError(f"expected uint8 images with values 0..255, got dtype {dtype.name}")
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
        return images, labels

    def _check_batch_spec(self, shape, dtype):
        shape = tuple(shape) if getattr(shape, "rank", 0) is not None else ()
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape or tf.as_dtype(dtype) != tf.uint8:
            hint = " (batch the dataset)" if len(shape) == 3 else ""
            raise KerasGenError(
                f"expected batches of uint8 images [batch, {', '.join(map(str, self.image_shape))}] with values "
                f"0..255, got {tf.as_dtype(dtype).name} {list(shape)}{hint}"
            )

    def _check_training_data(self, x, y=None):
        """Fail before Keras starts on arrays and datasets that cannot be images of this model."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if isinstance(spec, (tuple, list)):
                spec, labels_spec = spec[0], (spec[1] if len(spec) > 1 else None)
                if labels_spec is not None and hasattr(labels_spec, "dtype"):
                    self.check_labels_dtype(labels_spec.dtype)
            self._check_batch_spec(spec.shape, spec.dtype)
        elif x is not None and hasattr(x, "shape") and hasattr(x, "dtype"):
            self.check_images(x)
            if y is not None and hasattr(y, "dtype"):
                self.check_training_labels(np.asarray(y))

    def check_labels_dtype(self, dtype):
        """Labels that come with the images (ignored by unconditional models)."""

    def check_training_labels(self, labels):
        """Label values given to `fit` / `evaluate` as an array (ignored by unconditional models)."""

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_training_data(x, y)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_training_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    @staticmethod
    def images_to_float(images):
        """uint8 [0, 255] -> float32 [-1, 1], the networks' input range."""
        return tf.cast(images, tf.float32) / 127.5 - 1.0

    # -- what subclasses provide ---------------------------------------------------------
    def serving_endpoints(self) -> list[Endpoint]:
        """The named signatures a SavedModel export carries; the first is also serving_default."""
        raise NotImplementedError

    def sample_endpoint(self, sample_uint8, how: str) -> Endpoint:
        """The `sample` signature: `sample_uint8(batch_size, seed)` -> `{"images": uint8}`."""
        h, w, c = self.image_shape
        return Endpoint(
            "sample",
            lambda batch_size, seed: {"images": sample_uint8(batch_size, seed)},
            SAMPLE_SIGNATURE,
            f"batch_size int32, seed int32 -> images uint8 [batch_size, {h}, {w}, {c}]; {how}",
        )

    # -- compile: checked arguments, and a loaded .keras comes back compiled --------------
    def compile_keras(self, keras_args: dict, remember: dict, optimizer=None):
        """Compile with the Keras arguments a keras-gen model accepts; refuse the rest.

        `remember` holds the model's own compile arguments (optimizers, losses, penalties),
        stored so `get_compile_config` restores them on load; `optimizer` is Keras' own.
        """
        unknown = sorted(set(keras_args) - set(KERAS_COMPILE_ARGS))
        if unknown:
            own = [p for p in inspect.signature(self.compile).parameters if p != "kwargs"]
            raise KerasGenError(
                f"{type(self).__name__}.compile() got unknown argument(s) {', '.join(unknown)}; "
                f"it takes {', '.join(own + list(KERAS_COMPILE_ARGS))}"
            )
        keras_args.setdefault("jit_compile", DEFAULT_JIT_COMPILE)
        super().compile(optimizer=optimizer, **keras_args)
        self._compile_kwargs = {**remember, **keras_args}

    def get_compile_config(self):
        if self._compile_kwargs is None:
            return None
        return keras.saving.serialize_keras_object(self._compile_kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    @staticmethod
    def optimizer_from(spec, default=None):
        """An optimizer from an instance, a name, a Keras config dict, or `default()` for None."""
        if spec is None and default is not None:
            return default()
        try:
            return keras.optimizers.get(spec)
        except (ValueError, TypeError) as exc:
            raise KerasGenError(f"cannot make an optimizer from {spec!r}: {str(exc).splitlines()[0][:200]}") from None

    # -- presets (the KerasHub convention) -------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, compile: bool = True):
        """The zoo entry `name` as a ready model, offline; refuses an entry of another class."""
        from keras_gen import zoo

        model = zoo.load(name, compile=compile)
        if not isinstance(model, cls):
            raise KerasGenError(f"zoo entry {name!r} is a {type(model).__name__}, not a {cls.__name__}")
        return model

    def get_config(self):
        return {
            "image_shape": list(self.image_shape),
            "precision": self.precision,
            "name": self.name,
        }
