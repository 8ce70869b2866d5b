"""What every keras-gen model shares: image shape checks, compile round-trips, signatures.

A model family subclasses `GenerativeModel` and defines only its networks, its
`train_step`, `sample(n, seed)` and `serving_endpoints()`; training, sampling grids, export
and the zoo work on that interface.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.seeds import check_seed

PRECISIONS = ("float32", "mixed_bfloat16")

# XLA is off by default: on the 2-core AVX-512 CPUs we measure on it was slower than
# TensorFlow's oneDNN kernels for DCGAN (float32 0.78x and 0.95x, bfloat16 0.68x and 0.55x
# in two runs of bench/dcgan_throughput.py, 2026-11-25) and PixelCNN training (0.83x).
# `compile(jit_compile=True)` turns it on.
DEFAULT_JIT_COMPILE = False


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One named serving signature: `fn(*inputs) -> dict of named tensors`."""

    name: str
    fn: Callable
    input_signature: list
    doc: str


# The inputs of every model's `sample` signature (and of PixelCNN's sampling function).
SAMPLE_SIGNATURE = [tf.TensorSpec([], tf.int32, name="batch_size"), tf.TensorSpec([], tf.int32, name="seed")]


def images_to_uint8(images01):
    """Float images in [0, 1] -> uint8 [0, 255], rounded (graph-friendly)."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images01, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def stateless_seed(seed, stream=0):
    """The `[2]` int32 seed of a stateless random op: a user's seed and a stream (e.g. a pixel)."""
    if isinstance(seed, int):  # tensors (export signatures) are the caller's to keep in range
        check_seed(seed)
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(stream, tf.int32)])


class GenerativeModel(keras.Model):
    """Base of keras-gen models. `image_shape` is `(H, W, C)`; `precision` a Keras dtype policy."""

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

    @property
    def has_test_step(self) -> bool:
        """Whether the model defines `evaluate` on held-out images (e.g. a likelihood)."""
        return type(self).test_step is not keras.Model.test_step

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

    def _check_training_data(self, x):
        """Fail early, in one line, on images that do not match the model (fit / evaluate)."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, (tuple, list)) else spec
            if spec.dtype != tf.uint8 or tuple(spec.shape[1:]) != self.image_shape:
                raise KerasGenError(
                    f"expected batches of uint8 images [batch, {', '.join(map(str, self.image_shape))}], "
                    f"got {spec.dtype.name} {spec.shape.as_list()} (batch the dataset; images must be uint8 0..255)"
                )
        elif x is not None and hasattr(x, "shape") and hasattr(x, "dtype"):
            self.check_images(x)

    def fit(self, x=None, *args, **kwargs):
        self._check_training_data(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_training_data(x)
        return super().evaluate(x, *args, **kwargs)

    @staticmethod
    def images_to_float(images):
        """uint8 [0, 255] -> float32 [-1, 1], the networks' input range."""
        return tf.cast(images, tf.float32) / 127.5 - 1.0

    # -- what subclasses provide ---------------------------------------------------------
    def sample(self, n: int, seed: int = 0):
        """`n` images as float32 `[n, H, W, C]` in [0, 1], reproducible from `seed`."""
        raise NotImplementedError

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

    # -- compile round-trip: a loaded .keras comes back compiled, optimizer state included --
    def _remember_compile(self, **kwargs):
        self._compile_kwargs = kwargs

    def get_compile_config(self):
        if self._compile_kwargs is None:
            return None
        return keras.saving.serialize_keras_object(self._compile_kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_config(self):
        return {
            "image_shape": list(self.image_shape),
            "precision": self.precision,
            "name": self.name,
        }
