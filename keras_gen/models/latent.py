"""The latent-variable base: a generator G maps z ~ N(0, I) (and a class label) to an image.

    x = G(z, y),  z ∈ R^latent_dim,  y ∈ {0, ..., num_classes - 1} (conditional models only)

What every such model offers, whatever trains it: `latents(n, seed)`, `generate(z, labels)`,
`sample(n, seed, labels)`, `interpolate(z0, z1, steps)` and the serving signatures
`serving_default` (z [, labels] -> images) and `sample` (seed [, labels] -> images). All
random draws a user can repeat are stateless: the same seed gives the same latents and
labels, in Python and in an export.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.models.base import (
    MAX_SAMPLES,
    MAX_SEED,
    SAMPLE_SIGNATURE,
    Endpoint,
    GenerativeModel,
    assert_sample_inputs,
    check_count,
    check_size,
    images_to_uint8,
    stateless_seed,
    whole_number,
)
from keras_gen.models.labels import LATENT_STREAM, ClassLabels


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


def check_truncation(truncation):
    """None, or a finite positive number as a float; a one-line error for anything else (at t =
    inf the bound Φ(-t) is 0 and a uniform draw of exactly 0 gave z = -inf)."""
    if truncation is None:
        return None
    if isinstance(truncation, bool) or not isinstance(truncation, numbers.Real) \
            or not (math.isfinite(float(truncation)) and float(truncation) > 0):
        raise KerasGenError(f"truncation must be a finite positive number (or None), got {truncation!r}"[:300])
    return float(truncation)


class LatentModel(ClassLabels, GenerativeModel):
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
        self.latent_dim = check_size("latent_dim", latent_dim)
        self.init_labels(num_classes)

    @property
    def sampling_generator(self):
        return self.generator

    # -- inputs ----------------------------------------------------------------------------
    def check_latents(self, z):
        """Latents as float32 `[batch, latent_dim]`: real numbers, 1 to MAX_SAMPLES rows, finite."""
        expected = f"[batch, {self.latent_dim}]"
        if not tf.is_tensor(z):
            try:
                z = np.asarray(z)
            except (TypeError, ValueError):  # ragged nested lists
                z = np.asarray(None)
        rank = z.ndim if isinstance(z, np.ndarray) else z.shape.rank
        shape = tuple(z.shape) if rank is not None else ()
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise KerasGenError(f"expected latents z of shape {expected}, got shape {list(shape)}")
        try:
            dtype = tf.as_dtype(z.dtype)
        except TypeError:  # strings, objects
            dtype = None
        if dtype is None or not (dtype.is_floating or dtype.is_integer):
            raise KerasGenError(f"expected float32 latents z {expected}, got dtype {getattr(dtype, 'name', z.dtype)}")
        if shape[0] is not None and not 1 <= shape[0] <= MAX_SAMPLES:
            raise KerasGenError(f"expected 1 to {MAX_SAMPLES} latents {expected} per call, got {shape[0]}"
                                + ("; pass them in chunks and concatenate" if shape[0] else ""))
        z = tf.cast(z, tf.float32)
        if tf.executing_eagerly():
            bad = int(tf.reduce_sum(tf.cast(~tf.math.is_finite(z), tf.int32)))
            if bad:
                raise KerasGenError(f"latents z contain {bad} non-finite values (NaN or infinity) of {int(tf.size(z))}")
        return z

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
        """`n` latents z ~ N(0, I) (truncated to |z| <= truncation), the same for the same seed.

        Any model's latents may be truncated (the trick is a choice of z, e.g.
        `generate(latents(n, seed, truncation=0.5))`); `sample(truncation=)` and the exported
        signature offer it only where the model was trained for it (BigGAN's orthogonal
        regularisation keeps its generator smooth near z = 0), so others do not imply it works.
        """
        n = check_count(n)
        return truncated_normal([n, self.latent_dim], stateless_seed(seed, LATENT_STREAM), check_truncation(truncation))

    def sample(self, n, seed=0, labels=None, truncation=None):
        """`n` images float32 `[n, H, W, C]` in [0, 1]; a pure function of weights, n and seed.

        Conditional models take `labels` (an int for all, or n ints; None draws classes
        uniformly from the seed). `truncation` (models that offer it) resamples |z| > t.
        """
        n = check_count(n)
        if truncation is not None and not self.offers_truncation:
            raise KerasGenError(f"{type(self).__name__} does not offer truncation (it was not trained for it; to try it "
                                "anyway, truncate its latents: generate(latents(n, seed, truncation=t)))")
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

        if labels is not None and (isinstance(labels, bool) or not isinstance(labels, numbers.Integral)):
            raise KerasGenError(f"labels of an interpolation must be one class number, kept along the path; "
                                f"got {labels!r}"[:300])
        number = whole_number(steps)
        if number is None or number < 2:  # both ends at least
            raise KerasGenError(f"steps must be a whole number >= 2, got {steps!r}"[:300])
        z = analysis.interpolation_latents(np.asarray(z0), np.asarray(z1), check_count(number, "steps"), method)
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
            message = "truncation must be a finite number >= 0 (0: no truncation)"
            with tf.control_dependencies([
                tf.debugging.assert_non_negative(t, message=message),
                tf.debugging.Assert(tf.math.is_finite(t), [message]),
            ]):
                t = tf.identity(t)
            return tf.cond(t > 0, lambda: truncated_normal(shape, seed, t), lambda: truncated_normal(shape, seed, None))

        def checked_latents(z):
            # Graph-time twin of `check_latents` (the spec's shape is enforced by the export).
            finite = tf.math.is_finite(z)
            batch_message = f"z must hold 1 to {MAX_SAMPLES} latents [batch, {self.latent_dim}]"
            with tf.control_dependencies([
                tf.debugging.assert_greater_equal(tf.shape(z)[0], 1, message=batch_message),
                tf.debugging.assert_less_equal(tf.shape(z)[0], MAX_SAMPLES, message=batch_message),
                tf.debugging.Assert(tf.reduce_all(finite), [
                    "z must be finite; number of NaN or infinite values:",
                    tf.reduce_sum(tf.cast(~finite, tf.int32)),
                ]),
            ]):
                return tf.identity(z)

        if self.conditional:
            label_spec = tf.TensorSpec([None], tf.int32, name="labels")

            def from_latents(z, labels):
                z = checked_latents(z)
                labels_message = "labels must hold one int32 label per row of z"
                with tf.control_dependencies([
                    tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(z)[0], message=labels_message),
                ]):
                    labels = self.assert_labels_in_range(labels)
                return {"images": images_to_uint8(self._generate(z, labels))}

            def sample(labels, seed, *truncation):
                labels = self.assert_labels_in_range(labels)
                n, seed = assert_sample_inputs(tf.shape(labels)[0], seed, what="the number of labels")
                z = draw_latents(n, seed, truncation)
                return {"images": images_to_uint8(self._generate(z, labels))}

            return [
                Endpoint("serving_default", from_latents, [z_spec, label_spec],
                         f"z float32 [batch, {self.latent_dim}], labels int32 [batch] -> {out}"),
                Endpoint("sample", sample, [label_spec, seed_spec, *trunc_spec],
                         f"labels int32 [batch] (1 to {MAX_SAMPLES}), seed int32 (0 to {MAX_SEED}){trunc_doc} "
                         f"-> {out}; z ~ N(0, I) drawn "
                         "statelessly from the seed, so the same seed and labels give the same images"),
            ]

        def from_latents(z):
            return {"images": images_to_uint8(self._generate(checked_latents(z)))}

        def sample(batch_size, seed, *truncation):
            batch_size, seed = assert_sample_inputs(batch_size, seed)
            return {"images": images_to_uint8(self._generate(draw_latents(batch_size, seed, truncation)))}

        return [
            Endpoint("serving_default", from_latents, [z_spec], f"z float32 [batch, {self.latent_dim}] -> {out}"),
            Endpoint("sample", sample, SAMPLE_SIGNATURE + trunc_spec,
                     f"batch_size int32 (1 to {MAX_SAMPLES}), seed int32 (0 to {MAX_SEED}){trunc_doc} "
                     f"-> images uint8 [batch_size, {h}, {w}, {c}]; "
                     "z ~ N(0, I) drawn statelessly from the seed, so the same seed gives the same images"),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_classes=self.num_classes)
        return config
