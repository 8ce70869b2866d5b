"""Class labels of conditional models, shared by every family (latent and autoregressive).

A conditional model takes labels y ∈ {0, ..., num_classes − 1}: from the user as an int (for
every image) or one int per image, from datasets and exports as int tensors (checked in the
graph, so a bad label is a named error and never an out-of-range embedding lookup), and,
when `sample` is given none, drawn uniformly from the seed's own label stream.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.models.base import check_size, data_check, stateless_seed

# Streams of the stateless seed (seed, stream): one per kind of draw, so that adding labels
# to a model never changes its other draws.
LATENT_STREAM, LABEL_STREAM = 0, 1


class ClassLabels:
    """Mixin of a `GenerativeModel` with optional class labels (`num_classes`)."""

    num_classes = None

    def init_labels(self, num_classes):
        self.num_classes = None if num_classes is None else check_size("num_classes", num_classes, minimum=2)

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def check_labels(self, labels, n):
        """Class labels as int32 `[n]`: an int (every image), a sequence of n (`[n, 1]` too, as
        `fit` takes them), or None (uniform). `n` is a scalar tensor where traced with the batch
        size unknown."""
        if not self.conditional:
            if labels is not None:
                raise KerasGenError(f"{type(self).__name__} is unconditional; it takes no labels")
            return None
        if labels is None:
            return None
        if tf.is_tensor(labels) and not tf.executing_eagerly():  # traced: `predict`, a tf.function
            if labels.shape.rank == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            return self.assert_labels_in_range(labels)
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        known = isinstance(n, int)
        what = f"{n} ints" if known else "one int per image"
        if labels.ndim > 1 or (known and labels.ndim == 1 and len(labels) != n) \
                or not np.issubdtype(labels.dtype, np.integer):
            raise KerasGenError(f"labels must be an int or {what}, got {labels.tolist()!r}"[:300])
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise KerasGenError(f"labels must be in 0..{self.num_classes - 1}, got {sorted(set(labels.ravel().tolist()))}")
        if labels.ndim == 0:
            return tf.fill([n], tf.constant(int(labels), tf.int32))
        if known:
            return tf.constant(labels, tf.int32)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.size(labels), tf.cast(n, tf.int32), message="labels must hold one int per image")]):
            return tf.identity(tf.constant(labels, tf.int32))

    def assert_labels_in_range(self, labels):
        """Labels as int32, with graph-time checks (a named InvalidArgumentError, never an
        embedding lookup out of range) for tensors that Python never sees: datasets, exports."""
        labels = tf.cast(labels, tf.int32)
        message = data_check(f"labels must be in 0..{self.num_classes - 1}")
        with tf.control_dependencies([
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, self.num_classes, message=message),
        ]):
            return tf.identity(labels)

    def batch_labels(self, labels, images):
        """A training or evaluation batch's labels as int32 `[B]`, checked in the graph: one
        integer label per image of `images`, given as `[B]` or `[B, 1]` (or of unknown rank:
        Keras relaxes a traced step's spec when `fit` sees both), each in range."""
        if not labels.dtype.is_integer:
            raise KerasGenError(f"labels must be integers 0..{self.num_classes - 1}, got {labels.dtype.name}")
        labels = tf.reshape(labels, [-1])
        message = data_check("expected one integer label per image: labels [batch] or [batch, 1] (not one-hot)")
        with tf.control_dependencies([
            tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(images)[0], message=message),
        ]):
            return self.assert_labels_in_range(labels)

    def check_labels_dtype(self, dtype):
        if self.conditional and not tf.as_dtype(dtype).is_integer:
            raise KerasGenError(f"labels must be integers 0..{self.num_classes - 1}, got {tf.as_dtype(dtype).name}")

    def check_training_labels(self, labels):
        if not self.conditional:
            return
        self.check_labels_dtype(labels.dtype)
        labels = labels.reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise KerasGenError(
                f"labels must be in 0..{self.num_classes - 1}, got values from {labels.min()} to {labels.max()}"
            )

    def _labels_graph(self, n, seed):
        """`n` labels drawn uniformly from the seed's label stream, int32 `[n]`."""
        return tf.random.stateless_uniform(
            [n], seed=stateless_seed(seed, LABEL_STREAM), minval=0, maxval=self.num_classes, dtype=tf.int32
        )
