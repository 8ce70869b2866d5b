"""The autoregressive base: exact likelihoods by the chain rule, sampling in raster order.

    log p(x) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c})

A model defines `call(images) -> per-sub-pixel distribution parameters` (causal: the output
at sub-pixel k depends only on sub-pixels before k) and `rows_seen_above` (how many rows above
a pixel its output can depend on). This base turns that into `log_prob`, `pixel_log_prob`,
bits/dim, the training and evaluation steps, exact ancestral sampling and the `log_prob` and
`sample` serving signatures. The head is a 256-way categorical per sub-pixel
(`keras_gen.likelihoods`); a model with another head overrides `pixel_log_prob_from` and
`draw_from`.
"""
from __future__ import annotations

import tensorflow as tf

from keras_gen import likelihoods
from keras_gen.models.base import SAMPLE_SIGNATURE, Endpoint, GenerativeModel, check_count, stateless_seed
from keras_gen.seeds import check_seed


class AutoregressiveModel(GenerativeModel):
    """Base of likelihood models over uint8 images `[B, H, W, C]`.

    `fit` minimises the mean negative log-likelihood per image and reports `loss` (= `nll`,
    nats per image) and `bits_per_dim` = NLL / (H·W·C·ln 2); `evaluate` reports both on
    held-out images.
    """

    # Rows above pixel i that its distribution may depend on; a subclass sets it in __init__.
    rows_seen_above: int

    def __init__(self, image_shape, precision="float32", **kwargs):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        self.num_dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        for name in ("loss", "nll", "bits_per_dim"):
            self.track(name, "down")
        self.show_metrics("loss", "nll", "bits_per_dim")
        self._sample_fn = None

    # -- the head: distribution parameters -> log-probabilities and draws ------------------------
    def pixel_log_prob_from(self, outputs, images):
        """log p of each observed sub-pixel, float32 `[B, H, W, C]`, from `call`'s outputs."""
        return likelihoods.categorical_pixel_log_prob(outputs, images)

    def draw_from(self, outputs, seed):
        """One value per example, int32 `[B]`, from the outputs of one sub-pixel `[B, 256]`."""
        return tf.random.stateless_categorical(tf.cast(outputs, tf.float32), 1, seed=seed, dtype=tf.int32)[:, 0]

    # -- likelihoods ------------------------------------------------------------------------------
    def _pixel_log_prob(self, images, training=False):
        return self.pixel_log_prob_from(self(images, training=training), images)

    def _image_log_prob(self, images, training=False):
        return tf.reduce_sum(self._pixel_log_prob(images, training=training), axis=[1, 2, 3])

    def pixel_log_prob(self, images):
        """log p(x_{i,c} | x_{<(i,c)}) in nats, float32 `[B, H, W, C]`, for uint8 `[B, H, W, C]`."""
        return self._pixel_log_prob(self.check_images(images))

    def log_prob(self, images):
        """log p(x) in nats per image, float32 `[B]`, for uint8 images `[B, H, W, C]`."""
        return self._image_log_prob(self.check_images(images))

    def _step_metrics(self, image_nll):
        # Per-image values, so a short last batch weighs by its images, not as a whole batch.
        self.update_metrics(loss=image_nll, nll=image_nll,
                            bits_per_dim=likelihoods.bits_per_dim(-image_nll, self.num_dims))
        return self.metric_results()

    def train_step(self, data):
        images, _ = self.unpack(data)
        with tf.GradientTape() as tape:
            image_nll = -self._image_log_prob(images, training=True)
            loss = tf.reduce_mean(image_nll)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._step_metrics(image_nll)

    def test_step(self, data):
        images, _ = self.unpack(data)
        return self._step_metrics(-self._image_log_prob(images))

    # -- sampling -------------------------------------------------------------------------------------
    def _sample_graph(self, n, seed):
        """Raster-order ancestral sampling; sub-pixel k draws with stateless seed (seed, k).

        The network runs once per sub-pixel, on rows `i - rows_seen_above .. i` only: the
        distribution of row i depends on nothing else, so this is exact and about
        H / (rows_seen_above + 1) times cheaper than running on the whole image.
        """
        h, w, c = self.image_shape
        n = tf.cast(n, tf.int32)
        images = tf.zeros([n, h, w, c], tf.int32)
        batch_index = tf.range(n)

        def step(k, images):
            i, j, ch = k // (w * c), (k // c) % w, k % c
            top = tf.maximum(i - self.rows_seen_above, 0)
            outputs = self(images[:, top:i + 1], training=False)[:, i - top, j, ch]
            values = self.draw_from(outputs, stateless_seed(seed, k))
            index = tf.stack([batch_index, tf.fill([n], i), tf.fill([n], j), tf.fill([n], ch)], axis=1)
            return k + 1, tf.tensor_scatter_nd_update(images, index, values)

        _, images = tf.while_loop(lambda k, _: k < h * w * c, step, [tf.constant(0), images])
        return tf.cast(images, tf.uint8)

    def sample_uint8(self, n, seed=0):
        """`n` images uint8 `[n, H, W, C]`; the same seed always gives the same images."""
        n = check_count(n)
        check_seed(seed)
        if self._sample_fn is None:
            self._sample_fn = tf.function(
                self._sample_graph,
                input_signature=SAMPLE_SIGNATURE,
                # Not XLA: XLA draws different random bits for the same stateless seed, and
                # the export (run by TF Serving without XLA) must give the same images.
                jit_compile=False,
            )
        return self._sample_fn(tf.constant(n, tf.int32), tf.constant(seed, tf.int32))

    def sample(self, n, seed=0):
        """`n` images float32 `[n, H, W, C]` in [0, 1] (the uint8 samples / 255)."""
        return tf.cast(self.sample_uint8(n, seed), tf.float32) / 255.0

    def serving_endpoints(self):
        h, w, c = self.image_shape

        def log_prob(images):
            lp = self._image_log_prob(images)
            return {"log_prob": lp, "bits_per_dim": likelihoods.bits_per_dim(lp, self.num_dims)}

        return [
            Endpoint(
                "log_prob",
                log_prob,
                [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")],
                f"images uint8 [batch, {h}, {w}, {c}] -> log_prob float32 [batch] (nats per image), "
                "bits_per_dim float32 [batch]",
            ),
            self.sample_endpoint(
                self._sample_graph, "raster order, sub-pixel k drawn with stateless seed (seed, k)"
            ),
        ]
