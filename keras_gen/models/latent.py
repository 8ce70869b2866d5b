"""The latent-variable base: a generator G maps z ~ N(0, I) (and a class label) to an image.

    x = G(z, y),  z ∈ R^latent_dim,  y ∈ {0, ..., num_classes - 1} (conditional models only)

What every such model offers, whatever trains it: `latents(n, seed)`, `generate(z, labels)`,
`sample(n, seed, labels)`, `interpolate(z0, z1, steps)` and the serving signatures
`serving_default` (z [, labels] -> images) and `sample` (seed [, labels] -> images). All
random draws a user can repeat are stateless: the same seed gives the same latents and
labels, in Python and in an export.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.models.base import SAMPLE_SIGNATURE, Endpoint, GenerativeModel, check_count, images_to_uint8, stateless_seed

# Streams of the stateless seed (seed, stream): one per kind of draw, so that adding labels
# to a model never changes its latents.
LATENT_STREAM, LABEL_STREAM = 0, 1


def truncated_normal(shape, seed, truncation):
    """N(0, 1) draws conditioned on |z| <= truncation (BigGAN's truncation trick), stateless.

    Exact, by inverting the normal CDF on U(Φ(-t), Φ(t)); `truncation=None` is plain N(0, 1).
    """
    if truncation is None:
        return tf.random.stateless_normal(shape, seed=seed)
    t = tf.cast(truncation, tf.float32)
    low = 0.5 * tf.math.erfc(t / np.sqrt(2.0))  # Φ(-t)
    u = tf.random.stateless_uniform(shape, seed=seed, minval=0.0, maxval=1.0)
    # The clip only removes float32 rounding past the bound (about 1 draw in 4 million).
    return tf.clip_by_value(tf.math.ndtri(low + u * (1.0 - 2.0 * low)), -t, t)


class LatentModel(GenerativeModel):
    """Base of models with a generator `self.generator` from latents (and labels) to images.

    Args:
      latent_dim: size of z.
      num_classes: number of classes a conditional model takes; None for unconditional.

    Subclasses set `self.generator` (a network mapping z, or [z, labels], to images in
    [-1, 1]); `sampling_generator` is the network used to draw images (an EMA copy, when a
    model keeps one).
    """

    # Whether `sample` and the exported `sample` signature take a truncation (BigGAN).
    offers_truncation = False

    def __init__(self, image_shape, latent_dim=64, num_classes=None, precision="float32", **kwargs):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        latent_dim = int(latent_dim)
        if latent_dim < 1:
            raise KerasGenError(f"latent_dim must be at least 1, got {latent_dim}")
        if num_classes is not None and int(num_classes) < 2:
            raise KerasGenError(f"num_classes must be at least 2 (or None), got {num_classes}")
        self.latent_dim = latent_dim
        self.num_classes = None if num_classes is None else int(num_classes)

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def sampling_generator(self):
        return self.generator

    # -- inputs ----------------------------------------------------------------------------
    def check_latents(self, z):
        shape = tuple(getattr(z, "shape", ()))
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise KerasGenError(f"expected latents z of shape [batch, {self.latent_dim}], got {list(shape)}")
        z = tf.cast(z, tf.float32)
        if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(z))):
            raise KerasGenError("latents z contain NaN or infinite values")
        return z

    def check_labels(self, labels, n):
        """Class labels as int32 `[n]`: an int (every image), a sequence of n, or None (uniform)."""
        if not self.conditional:
            if labels is not None:
                raise KerasGenError(f"{type(self).__name__} is unconditional; it takes no labels")
            return None
        if labels is None:
            return None
        if tf.is_tensor(labels) and not tf.executing_eagerly():  # traced: `predict`, a tf.function
            return self.assert_labels_in_range(labels)
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full([n], labels)
        if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
            raise KerasGenError(f"labels must be an int or {n} ints, got {labels.tolist()!r}"[:300])
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise KerasGenError(f"labels must be in 0..{self.num_classes - 1}, got {sorted(set(labels.tolist()))}")
        return tf.constant(labels, tf.int32)

    # -- the generator ---------------------------------------------------------------------
    def generator_inputs(self, z, labels):
        return [z, labels] if self.conditional else z

    def call(self, inputs, training=False):
        """`z` (or `[z, labels]` for a conditional model) -> images float32 in [0, 1]."""
        if self.conditional:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise KerasGenError(f"{type(self).__name__} is conditional: call it with [z, labels]")
            return self.generate(*inputs)
        return self.generate(inputs)

    def assert_labels_in_range(self, labels):
        """Labels as int32, with graph-time checks (a named InvalidArgumentError, never an
        embedding lookup out of range) for tensors that Python never sees: datasets, exports."""
        labels = tf.cast(labels, tf.int32)
        message = f"labels must be in 0..{self.num_classes - 1}"
        with tf.control_dependencies([
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, self.num_classes, message=message),
        ]):
            return tf.identity(labels)

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

    def generate(self, z, labels=None):
        """Latents `[B, latent_dim]` (and labels `[B]`) -> images float32 `[B, H, W, C]` in [0, 1]."""
        z = self.check_latents(z)
        if self.conditional:
            if labels is None:
                raise KerasGenError(f"{type(self).__name__} is conditional: give labels with z")
            labels = self.check_labels(labels, z.shape[0])
        elif labels is not None:
            self.check_labels(labels, 0)
        return self._generate(z, labels)

    def _generate(self, z, labels=None):
        """Graph-friendly `generate` without input checks (signatures, sampling)."""
        images = self.sampling_generator(self.generator_inputs(z, labels), training=False)
        return (tf.cast(images, tf.float32) + 1.0) / 2.0

    def latents(self, n, seed=0, truncation=None):
        """`n` latents z ~ N(0, I) (truncated to |z| <= truncation), the same for the same seed."""
        n = check_count(n)
        if truncation is not None and (isinstance(truncation, bool) or not float(truncation) > 0):
            raise KerasGenError(f"truncation must be positive (or None), got {truncation!r}")
        return truncated_normal([n, self.latent_dim], stateless_seed(seed, LATENT_STREAM), truncation)

    def _labels_graph(self, n, seed):
        return tf.random.stateless_uniform(
            [n], seed=stateless_seed(seed, LABEL_STREAM), minval=0, maxval=self.num_classes, dtype=tf.int32
        )

    def sample(self, n, seed=0, labels=None, truncation=None):
        """`n` images float32 `[n, H, W, C]` in [0, 1]; a pure function of weights, n and seed.

        Conditional models take `labels` (an int for all, or n ints; None draws classes
        uniformly from the seed). `truncation` (models that offer it) resamples |z| > t.
        """
        n = check_count(n)
        if truncation is not None and not self.offers_truncation:
            raise KerasGenError(f"{type(self).__name__} does not offer truncation")
        z = self.latents(n, seed, truncation)
        labels = self.check_labels(labels, n)
        if self.conditional and labels is None:
            labels = self._labels_graph(n, seed)
        return self._generate(z, labels)

    def interpolate(self, z0, z1, steps=10, method="slerp", labels=None):
        """Images along the path from z0 to z1 (both `[latent_dim]`), ends included.

        `method`: "slerp" (spherical, keeps latents at the norm the prior puts them) or
        "linear". A conditional model keeps `labels` (one int) fixed along the path.
        """
        from keras_gen import analysis

        z = analysis.interpolation_latents(np.asarray(z0), np.asarray(z1), check_count(steps, "steps"), method)
        return self.generate(tf.constant(z, tf.float32), None if labels is None else np.full([len(z)], labels))

    # -- serving ---------------------------------------------------------------------------
    def serving_endpoints(self):
        h, w, c = self.image_shape
        out = f"images uint8 [batch, {h}, {w}, {c}]"
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
        seed_spec = tf.TensorSpec([], tf.int32, name="seed")
        trunc_spec = [tf.TensorSpec([], tf.float32, name="truncation")] if self.offers_truncation else []
        trunc_doc = "; truncation float32 (> 0 resamples |z| > truncation, 0 none)" if self.offers_truncation else ""

        def draw_latents(n, seed, truncation):
            shape, seed = [n, self.latent_dim], stateless_seed(seed, LATENT_STREAM)
            if not truncation:
                return truncated_normal(shape, seed, None)
            (t,) = truncation  # 0 means none, drawn exactly as `sample(truncation=None)` draws
            return tf.cond(t > 0, lambda: truncated_normal(shape, seed, t), lambda: truncated_normal(shape, seed, None))

        if self.conditional:
            label_spec = tf.TensorSpec([None], tf.int32, name="labels")

            def from_latents(z, labels):
                return {"images": images_to_uint8(self._generate(z, self.assert_labels_in_range(labels)))}

            def sample(labels, seed, *truncation):
                labels = self.assert_labels_in_range(labels)
                z = draw_latents(tf.shape(labels)[0], seed, truncation)
                return {"images": images_to_uint8(self._generate(z, labels))}

            return [
                Endpoint("serving_default", from_latents, [z_spec, label_spec],
                         f"z float32 [batch, {self.latent_dim}], labels int32 [batch] -> {out}"),
                Endpoint("sample", sample, [label_spec, seed_spec, *trunc_spec],
                         f"labels int32 [batch], seed int32{trunc_doc} -> {out}; z ~ N(0, I) drawn "
                         "statelessly from the seed, so the same seed and labels give the same images"),
            ]

        def from_latents(z):
            return {"images": images_to_uint8(self._generate(z))}

        def sample(batch_size, seed, *truncation):
            return {"images": images_to_uint8(self._generate(draw_latents(batch_size, seed, truncation)))}

        return [
            Endpoint("serving_default", from_latents, [z_spec], f"z float32 [batch, {self.latent_dim}] -> {out}"),
            Endpoint("sample", sample, SAMPLE_SIGNATURE + trunc_spec,
                     f"batch_size int32, seed int32{trunc_doc} -> images uint8 [batch_size, {h}, {w}, {c}]; "
                     "z ~ N(0, I) drawn statelessly from the seed, so the same seed gives the same images"),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_classes=self.num_classes)
        return config
