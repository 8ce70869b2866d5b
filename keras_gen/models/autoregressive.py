"""The autoregressive base: exact likelihoods by the chain rule, sampling in raster order.

    log p(x | y) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c}, y)

A model defines `call(images)` (conditional models: `call([images, labels])`) -> per-pixel
distribution parameters (causal: the output for sub-pixel k depends only on sub-pixels
before k) and `rows_seen_above` (how many rows above a pixel its output can depend on). This
base turns that into `log_prob`, `pixel_log_prob`, bits/dim, the training and evaluation
steps, exact ancestral sampling with a temperature, completion of partly known images, Bayes
classification for conditional models, and the serving signatures. The default head is a
256-way categorical per sub-pixel (`keras_gen.likelihoods`); a model with another head
overrides `pixel_log_prob_from` and `subpixel_logits` (and `draw_subpixel` if it can draw
from its distribution more cheaply than from the 256 logits).
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_gen import distribute, likelihoods
from keras_gen.errors import KerasGenError
from keras_gen.models.base import (
    MAX_SAMPLES,
    MAX_SEED,
    Endpoint,
    GenerativeModel,
    assert_image_batch,
    assert_sample_inputs,
    batch_size_of,
    check_count,
    in_chunks,
    numpy_dtype,
    stateless_seed,
)
from keras_gen.models.labels import ClassLabels
from keras_gen.networks import cached
from keras_gen.seeds import check_seed, check_temperature


# Columns the cached sampler draws per step of its column loop (at most): more make a bigger
# graph (slower to trace), fewer pay the loop's per-step overhead more often.
COLUMNS_PER_STEP = 7

# Images per pass of the network in the likelihoods (`log_prob`, `pixel_log_prob`,
# `class_log_likelihoods`, `classify`, and their signatures). A pass holds every layer's
# activations and the logits [B, H, W, C, 256]: about 6.7 MB per 28x28 image for the zoo's
# PixelCNN, so the 10,000 images a call may take would need 67 GB at once (2,000 ran out of
# memory on a 12 GB limit).
LIKELIHOOD_CHUNK = 100


def _static_or_float32(temperature):
    """A Python temperature stays a number (known when tracing); a tensor becomes float32."""
    return float(temperature) if isinstance(temperature, (int, float)) else tf.cast(temperature, tf.float32)


class AutoregressiveModel(ClassLabels, GenerativeModel):
    """Base of likelihood models over uint8 images `[B, H, W, C]`, optionally class-conditional.

    `fit` minimises the mean negative log-likelihood per image and reports `loss` (= `nll`,
    nats per image) and `bits_per_dim` = NLL / (H·W·C·ln 2); `evaluate` reports both on
    held-out images. Conditional models (`num_classes`) train on `(images, labels)`.
    """

    # Rows above pixel i that its distribution may depend on; a subclass sets it in __init__.
    rows_seen_above: int

    def __init__(self, image_shape, num_classes=None, precision="auto", **kwargs):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        self.init_labels(num_classes)
        self.num_dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        for name in ("loss", "nll", "bits_per_dim"):
            self.track(name, "down")
        self.show_metrics("loss", "nll", "bits_per_dim")
        self._sample_fns = {}

    def compile(self, optimizer=None, **keras_args):
        """Default optimizer Adam(1e-3), as the PixelCNN papers; built here so that a saved
        model restores its state."""
        optimizer = self.optimizer_from(optimizer, lambda: keras.optimizers.Adam(1e-3))
        self.compile_keras(keras_args, {"optimizer": optimizer}, optimizer)
        self.optimizer.build(self.trainable_variables)

    # -- inputs -----------------------------------------------------------------------------------
    def split_inputs(self, inputs):
        """`call`'s inputs -> `(images, labels or None)`; a conditional model needs both."""
        if self.conditional:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise KerasGenError(f"{type(self).__name__} is conditional: call it with [images, labels]")
            return self.call_images(inputs[0]), inputs[1]
        return self.call_images(inputs), None

    def call_images(self, images):
        """`call`'s images, checked where traced (`predict`, `model(x)`): integer values 0..255
        `[B, rows, W, C]` with rows ≤ H (the samplers run the network on the rows so far). Float
        images in [0, 1] would otherwise be read as levels 0 and 1."""
        images = tf.convert_to_tensor(images)
        h, w, c = self.image_shape
        shape = tuple(images.shape) if images.shape.rank is not None else ()
        if not images.dtype.is_integer or len(shape) != 4 or (shape[1] is not None and shape[1] > h) \
                or shape[2] != w or shape[3] != c:
            raise KerasGenError(f"{type(self).__name__} reads uint8 images [batch, {h}, {w}, {c}] (or their first "
                                f"rows) with values 0..255, got {images.dtype.name} {list(shape)}")
        return images

    def _outputs(self, images, labels, training=False):
        return self([images, labels] if self.conditional else images, training=training)

    def _checked_labels(self, labels, n):
        if self.conditional and labels is None:
            raise KerasGenError(f"{type(self).__name__} is conditional: give labels (an int or one per image)")
        return self.check_labels(labels, n)

    # -- the head: distribution parameters -> log-probabilities and draws ------------------------
    @property
    def num_levels(self) -> int:
        """The values of a sub-pixel the head tells apart (256; 2 for a binarising head)."""
        return likelihoods.NUM_LEVELS

    def observed(self, images):
        """The values the head models, from integer images `[B, H, W, C]`: the images themselves
        for heads over the 256 levels (a binarising head maps them to 0 and 255). Applied before
        every likelihood and to the known sub-pixels of `complete`."""
        return images

    def pixel_log_prob_from(self, outputs, images):
        """log p of each observed sub-pixel, float32 `[B, H, W, C]`, from `call`'s outputs."""
        return likelihoods.categorical_pixel_log_prob(outputs, images)

    def subpixel_logits(self, pixel_outputs, pixel_values, channel):
        """Log-probabilities (up to a constant) of the 256 values of sub-pixel `channel` of one
        pixel, float32 `[B, 256]`, from `call`'s outputs at that pixel (`[B, C, 256]` for the
        categorical head) and the pixel's values so far (int32 `[B, C]`, channels < `channel`
        already drawn)."""
        del pixel_values  # a categorical per sub-pixel: the network already saw x_{i,<c}
        return tf.cast(pixel_outputs[:, channel], tf.float32)

    # -- likelihoods ------------------------------------------------------------------------------
    def _pixel_log_prob(self, images, labels=None, training=False):
        images = self.observed(images)
        return self.pixel_log_prob_from(self._outputs(images, labels, training=training), images)

    def _image_log_prob(self, images, labels=None, training=False):
        return tf.reduce_sum(self._pixel_log_prob(images, labels, training=training), axis=[1, 2, 3])

    def _chunked(self, kind, images, labels=None):
        """The likelihood `kind` of images `[B, H, W, C]` in chunks of `LIKELIHOOD_CHUNK`
        (the graph every public likelihood and signature runs): "log_prob" `[B]`,
        "pixel_log_prob" `[B, H, W, C]`, "class_log_likelihoods" `[B, num_classes]`."""
        if kind == "class_log_likelihoods":
            def every_class(x):
                return tf.stack([self._image_log_prob(x, tf.fill([tf.shape(x)[0]], k))
                                 for k in range(self.num_classes)], axis=1)

            return in_chunks(every_class, (images,), LIKELIHOOD_CHUNK, [(tf.float32, [self.num_classes])])
        fn, shape = {"log_prob": (self._image_log_prob, []),
                     "pixel_log_prob": (self._pixel_log_prob, list(self.image_shape))}[kind]
        return in_chunks(fn, (images, labels), LIKELIHOOD_CHUNK, [(tf.float32, shape)])

    def _likelihood(self, kind, images, labels=None):
        """`_chunked` as one traced function per kind, whether called eagerly, in a `tf.function`
        or `Dataset.map`: the same graph as the exports', so that the same images get the same
        figure everywhere (eager execution rounds mixed bfloat16 differently: several nats per
        image apart in PixelCNN++)."""
        with_labels = self.conditional and kind != "class_log_likelihoods"
        spec = [tf.TensorSpec([None, *self.image_shape], tf.uint8), *([tf.TensorSpec([None], tf.int32)] * with_labels)]
        fn = self._compiled(kind, lambda images, *labels: self._chunked(kind, images, *labels), spec)
        return fn(images, *([labels] if with_labels else []))

    def pixel_log_prob(self, images, labels=None):
        """log p(x_{i,c} | x_{<(i,c)}, y) in nats, float32 `[B, H, W, C]`, for uint8 `[B, H, W, C]`
        (and, for a conditional model, labels: an int or one per image)."""
        images = self.check_images(images, max_batch=MAX_SAMPLES)
        return self._likelihood("pixel_log_prob", images, self._checked_labels(labels, batch_size_of(images)))

    def log_prob(self, images, labels=None):
        """log p(x | y) in nats per image, float32 `[B]`, for uint8 images `[B, H, W, C]`."""
        images = self.check_images(images, max_batch=MAX_SAMPLES)
        return self._likelihood("log_prob", images, self._checked_labels(labels, batch_size_of(images)))

    def class_log_likelihoods(self, images):
        """log p(x | y) for every class y, float32 `[B, num_classes]` (conditional models)."""
        if not self.conditional:
            raise KerasGenError(f"{type(self).__name__} is unconditional: it has no classes")
        return self._likelihood("class_log_likelihoods", self.check_images(images, max_batch=MAX_SAMPLES))

    def classify(self, images):
        """Bayes' rule with a uniform prior: p(y | x) ∝ p(x | y). Returns `(probabilities float32
        [B, num_classes], labels int32 [B])`, the label being argmax_y log p(x | y)."""
        log_likelihoods = self.class_log_likelihoods(images)
        return tf.nn.softmax(log_likelihoods, axis=1), tf.argmax(log_likelihoods, axis=1, output_type=tf.int32)

    def _step_metrics(self, image_nll):
        # Per-image values, so a short last batch weighs by its images, not as a whole batch.
        self.update_metrics(loss=image_nll, nll=image_nll,
                            bits_per_dim=likelihoods.bits_per_dim(-image_nll, self.num_dims))
        return self.metric_results()

    def _training_labels(self, labels, images):
        if not self.conditional:
            return None
        if labels is None:
            raise KerasGenError(f"{type(self).__name__} is conditional: train it on (images, labels)")
        return self.batch_labels(labels, images)

    def train_step(self, data):
        images, labels = self.unpack(data)
        labels = self._training_labels(labels, images)
        with tf.GradientTape() as tape:
            image_nll = -self._image_log_prob(images, labels, training=True)
            # This replica's part of the global batch's mean (keras_gen.distribute).
            loss = distribute.global_mean_part(tf.reduce_mean(image_nll), tf.shape(image_nll)[0])
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._step_metrics(image_nll)

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self._step_metrics(-self._image_log_prob(images, self._training_labels(labels, images)))

    # -- sampling and completion --------------------------------------------------------------------
    @property
    def samples_fast(self) -> bool:
        # Asked of the instance: one class may have a cached sampler for some of its networks
        # only (PixelCNN++: heights and widths that are multiples of 4).
        return self.cached_sampler() is not None

    def cached_sampler(self, labels=None):
        """The network evaluated a pixel at a time from cached activations
        (`keras_gen.networks.cached.RasterSampler`, given the labels `[n]` of a conditional
        model), or None: then sampling runs the network once per sub-pixel."""
        del labels
        return None

    def _fill_graph(self, images, known, seed, labels=None, temperature=1.0, cached=True):
        """Raster-order ancestral sampling of the sub-pixels where `known` is False.

        Sub-pixel k = (i·W + j)·C + c is drawn from p(x_k | x_{<k}, y)^(1/T) (renormalised)
        with the stateless seed (seed, k), so a draw depends on the seed and on the values
        before it only; known sub-pixels are kept. With a `cached_sampler` (and `cached`), the
        network runs a pixel at a time from cached activations (`_fill_graph_cached`), else once
        per drawn sub-pixel on the rows it can see (`_fill_graph_naive`); both give the same
        images up to float round-off in the logits.

        Args: images int32 `[n, H, W, C]`; known bool `[n, H, W, C]`; labels int32 `[n]` or
        None; temperature a positive number (known when tracing) or float32 scalar.
        """
        images = self.observed(images)
        sampler = self.cached_sampler(labels) if cached else None
        if sampler is None:
            return self._fill_graph_naive(images, known, seed, labels, temperature)
        return self._fill_graph_cached(sampler, images, known, seed, labels, temperature)

    def draw_subpixel(self, pixel_outputs, pixel_values, channel, k, seed, temperature):
        """Sub-pixel k's values int32 `[n]`: the one draw both samplers make, from the pixel's
        outputs and its values so far (as `subpixel_logits` takes them; `channel` = k mod C).
        A categorical over the logits / T with the stateless seed (seed, k); a head that can
        draw more cheaply overrides this with a draw from the same distribution."""
        logits = self.subpixel_logits(pixel_outputs, pixel_values, channel)
        if tf.is_tensor(temperature) or temperature != 1.0:
            logits = logits / temperature
        return tf.random.stateless_categorical(logits, 1, seed=stateless_seed(seed, k),
                                               dtype=tf.int32)[:, 0]

    def _fill_graph_naive(self, images, known, seed, labels=None, temperature=1.0):
        """`_fill_graph` running the network once per drawn sub-pixel, on rows
        `i - rows_seen_above .. i` only: the distribution of row i depends on nothing else, so
        this is exact and about H / (rows_seen_above + 1) times cheaper than running on the
        whole image; fully known sub-pixels are skipped."""
        h, w, c = self.image_shape
        n = tf.shape(images)[0]
        batch_index = tf.range(n)
        temperature = _static_or_float32(temperature)

        def draw(k, images):
            i, j, ch = k // (w * c), (k // c) % w, k % c
            top = tf.maximum(i - self.rows_seen_above, 0)
            pixel_outputs = self._outputs(images[:, top:i + 1], labels)[:, i - top, j]
            values = self.draw_subpixel(pixel_outputs, images[:, i, j], ch, k, seed, temperature)
            values = tf.where(known[:, i, j, ch], images[:, i, j, ch], values)
            index = tf.stack([batch_index, tf.fill([n], i), tf.fill([n], j), tf.fill([n], ch)], axis=1)
            return tf.tensor_scatter_nd_update(images, index, values)

        def step(k, images):
            i, j, ch = k // (w * c), (k // c) % w, k % c
            images = tf.cond(tf.reduce_all(known[:, i, j, ch]), lambda: images, lambda: draw(k, images))
            return k + 1, images

        _, images = tf.while_loop(lambda k, _: k < h * w * c, step, [tf.constant(0), images])
        return tf.cast(images, tf.uint8)

    def _fill_graph_cached(self, sampler, images, known, seed, labels=None, temperature=1.0):
        """`_fill_graph` with a `keras_gen.networks.cached.RasterSampler`: a `tf.while_loop` over
        rows, and in each a `tf.while_loop` over columns, a few columns per step (unrolled) and
        the sub-pixels of a pixel unrolled; the network's activations at every pixel are
        computed once. Every sub-pixel is drawn with its seed and then replaced by the known
        value where there is one (the same values as skipping the draw)."""
        del labels  # given to `cached_sampler`
        h, w, c = self.image_shape
        n = tf.shape(images)[0]
        temperature = _static_or_float32(temperature)
        # The network's input for each of the 256 values: one gather per pixel.
        levels = self.images_to_float(tf.range(likelihoods.NUM_LEVELS))
        # Row-major, then column-major rows: a step reads and writes slices along axis 0.
        rows = tf.transpose(images, [1, 2, 0, 3])  # [H, W, n, C]
        known_rows = tf.transpose(known, [1, 2, 0, 3])
        # Every tensor a loop step uses costs a few control-flow ops per step: a step of a
        # few columns shares them (a divisor of W, so that every step is alike, and a multiple
        # of the sampler's column period, so that each unrolled column has a fixed phase).
        period = sampler.column_period
        columns = max(d for d in range(period, max(period, min(w, COLUMNS_PER_STEP)) + 1, period) if w % d == 0)

        def one_row(i, row_phase, rows, state):
            row = cached.begin_row(sampler, state, row_phase)
            values, is_known = cached.entry(rows, i), cached.entry(known_rows, i)  # [W, n, C]

            def pixel_step(j, phase, carry):
                pixel, pixel_known = cached.entry(values, j), cached.entry(is_known, j)  # [n, C]
                after = carry
                for ch in range(c):
                    if ch == 0 or sampler.reads_the_pixel:
                        outputs, after = cached.pixel_outputs(sampler, row, j, tf.gather(levels, pixel), carry,
                                                              phase)
                    drawn = self.draw_subpixel(outputs, pixel, ch, (i * w + j) * c + ch, seed, temperature)
                    drawn = tf.where(pixel_known[:, ch], pixel[:, ch], drawn)[:, None]
                    pixel = drawn if c == 1 else tf.concat([pixel[:, :ch], drawn, pixel[:, ch + 1:]], axis=1)
                return cached.finish_pixel(sampler, row, tf.gather(levels, pixel), after, phase), pixel

            def column_step(j, carry, pixels):
                for offset in range(columns):
                    carry, pixel = pixel_step(j + offset, offset % period, carry)
                    pixels = pixels.write(j + offset, pixel)
                return j + columns, carry, pixels

            _, carry, pixels = tf.while_loop(
                lambda j, *_: j < w, column_step,
                [tf.constant(0), row.initial_carry(n), tf.TensorArray(tf.int32, size=w, element_shape=[None, c])])
            row_values = pixels.stack()  # [W, n, C]
            state = row.end(carry, tf.gather(levels, row_values))
            return tf.tensor_scatter_nd_update(rows, [[i]], row_values[None]), state

        def row_step(i, rows, state):
            # `row_period` rows per step, each with its phase (h is a multiple of it).
            for phase in range(sampler.row_period):
                rows, state = one_row(i + phase, phase, rows, state)
            return i + sampler.row_period, rows, state

        _, rows, _ = tf.while_loop(lambda i, *_: i < h, row_step, [tf.constant(0), rows, sampler.initial_state(n)])
        return tf.cast(tf.transpose(rows, [2, 0, 1, 3]), tf.uint8)

    def _sample_graph(self, n, seed, labels=None, temperature=1.0, cached=True):
        """`n` images uint8 drawn from nothing known (see `_fill_graph`)."""
        h, w, c = self.image_shape
        n = tf.cast(n, tf.int32)
        if self.conditional and labels is None:
            labels = self._labels_graph(n, seed)
        return self._fill_graph(tf.zeros([n, h, w, c], tf.int32), tf.zeros([n, h, w, c], tf.bool), seed, labels,
                                temperature, cached=cached)

    def _compiled(self, name, fn, signature):
        # Not XLA: XLA draws different random bits for the same stateless seed, and the export
        # (run by TF Serving without XLA) must give the same images. Not AutoGraph: the loops
        # and conditions are TensorFlow's already, as the export traces them, and converting
        # the sampler's code took several seconds of each trace.
        if name not in self._sample_fns:
            # A partial, not `fn` itself: TensorFlow counts traces per code object of the traced
            # Python function, so every model's lambda (one source line) would add to one count
            # and warn of "retracing" once a few models were used; a partial is counted alone.
            self._sample_fns[name] = tf.function(functools.partial(fn), input_signature=signature, jit_compile=False,
                                                 autograph=False)
        return self._sample_fns[name]

    def _call_at(self, temperature, name, graph, signature, *args):
        """`graph(*args, temperature)`, traced once per `name`. Temperature 1, the model's own
        distribution and what most calls ask for, is traced as the number 1.0, so that a head
        can choose its draw when tracing (PixelCNN++'s direct draw, without a condition per
        sub-pixel); any other is a float32 input of a second trace."""
        if temperature == 1.0:
            return self._compiled(name, lambda *inputs: graph(*inputs, 1.0), signature)(*args)
        fn = self._compiled(f"{name}_tempered", graph, signature + [tf.TensorSpec([], tf.float32)])
        return fn(*args, tf.constant(temperature, tf.float32))

    def sample_uint8(self, n, seed=0, labels=None, temperature=1.0):
        """`n` images uint8 `[n, H, W, C]`; the same seed (and labels) always give the same images.

        Conditional models take `labels` (an int for all, or n ints; None draws classes
        uniformly from the seed). `temperature` T draws from p^(1/T): below 1 sharper and
        less varied, above 1 noisier; 1 is the model's distribution.
        """
        n = check_count(n)
        seed = check_seed(seed)
        temperature = check_temperature(temperature)
        labels = self.check_labels(labels, n)
        if self.conditional and labels is None:
            labels = self._labels_graph(n, seed)
        spec = [tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)]
        if self.conditional:
            return self._call_at(temperature, "sample_labels", lambda n, s, y, t: self._sample_graph(n, s, y, t),
                                 spec + [tf.TensorSpec([None], tf.int32)], tf.constant(n), tf.constant(seed), labels)
        return self._call_at(temperature, "sample", lambda n, s, t: self._sample_graph(n, s, None, t), spec,
                             tf.constant(n), tf.constant(seed))

    def sample(self, n, seed=0, labels=None, temperature=1.0):
        """`n` images float32 `[n, H, W, C]` in [0, 1] (the uint8 samples / 255)."""
        return tf.cast(self.sample_uint8(n, seed, labels, temperature), tf.float32) / 255.0

    def complete(self, images, mask, seed=0, labels=None, temperature=1.0):
        """Fill in the unknown sub-pixels of `images`, keeping every known one.

        Sub-pixels where `mask` is False are drawn in raster order, each from
        p(x_k | every sub-pixel before k, known or drawn). An autoregressive model factorises
        p(x) in raster order, so a drawn sub-pixel cannot condition on known sub-pixels that
        come *after* it (e.g. completing the left half of an image ignores the known right
        half of the same rows, and anything below): those are not sampled from the true
        conditional p(x_unknown | x_known), but from p(x_k | x_{<k}) left to right.

        Args:
          images: uint8 `[B, H, W, C]`; the values of unknown sub-pixels are ignored.
          mask: bool `[B, H, W, C]` (or broadcastable, e.g. `[H, W, 1]`): True = known.
          seed: the draws' seed; labels, temperature as in `sample_uint8`.
        Returns uint8 `[B, H, W, C]`, equal to `images` wherever `mask` is True (to
        `observed(images)`, their binarisation, for a Bernoulli head).
        """
        images = self.check_images(images, max_batch=MAX_SAMPLES)
        n = int(images.shape[0])
        mask_dtype = numpy_dtype(mask)
        if mask_dtype != np.bool_:  # np.asarray(mask, bool) took 0.3 as known and a string as all known
            raise KerasGenError(f"mask must be bool (True = known), got {mask_dtype.name}")
        try:
            known = np.broadcast_to(np.asarray(mask, dtype=bool), images.shape)
        except ValueError:
            raise KerasGenError(f"mask of shape {list(np.shape(mask))} does not broadcast to the images' "
                                f"{list(images.shape)}") from None
        seed = check_seed(seed)
        temperature = check_temperature(temperature)
        labels = self._checked_labels(labels, n) if self.conditional else self.check_labels(labels, n)
        values = tf.where(tf.constant(known), tf.cast(images, tf.int32), 0)
        spec = [tf.TensorSpec([None, *self.image_shape], tf.int32), tf.TensorSpec([None, *self.image_shape], tf.bool),
                tf.TensorSpec([], tf.int32)]
        args = (values, tf.constant(known), tf.constant(seed))
        if self.conditional:
            return self._call_at(temperature, "complete_labels", lambda x, m, s, y, t: self._fill_graph(x, m, s, y, t),
                                 spec + [tf.TensorSpec([None], tf.int32)], *args, labels)
        return self._call_at(temperature, "complete", lambda x, m, s, t: self._fill_graph(x, m, s, None, t), spec,
                             *args)

    def serving_endpoints(self):
        h, w, c = self.image_shape
        images_spec = tf.TensorSpec([None, h, w, c], tf.uint8, name="images")
        labels_spec = tf.TensorSpec([None], tf.int32, name="labels")
        seed_spec = tf.TensorSpec([], tf.int32, name="seed")
        with_labels = [labels_spec] if self.conditional else []
        label_doc = ", labels int32 [batch]" if self.conditional else ""

        def batch_checked(images, labels=None):
            images = assert_image_batch(images, self.image_shape)
            if labels is None:
                return images, None
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.shape(labels)[0], tf.shape(images)[0], message="labels must hold one int32 label per image")]):
                return tf.identity(images), self.assert_labels_in_range(labels)

        def log_prob(images, *labels):
            images, labels = batch_checked(images, *labels)
            lp = self._chunked("log_prob", images, labels)
            return {"log_prob": lp, "bits_per_dim": likelihoods.bits_per_dim(lp, self.num_dims)}

        def complete(images, mask, seed, *labels):
            images, labels = batch_checked(images, *labels)
            _, seed = assert_sample_inputs(tf.shape(images)[0], seed)
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.shape(mask)[0], tf.shape(images)[0],
                    message=f"mask must be bool [batch, {h}, {w}, {c}], one per image")]):
                known = tf.identity(mask)
            return {"images": self._fill_graph(tf.where(known, tf.cast(images, tf.int32), 0), known, seed, labels)}

        endpoints = [
            Endpoint("log_prob", log_prob, [images_spec, *with_labels],
                     f"images uint8 [batch, {h}, {w}, {c}] (1 to {MAX_SAMPLES} images){label_doc} -> "
                     "log_prob float32 [batch] (nats per image), bits_per_dim float32 [batch]"),
        ]
        if self.conditional:
            def sample(labels, seed):
                labels = self.assert_labels_in_range(labels)
                n, seed = assert_sample_inputs(tf.shape(labels)[0], seed, what="the number of labels")
                return {"images": self._sample_graph(n, seed, labels)}

            endpoints.append(Endpoint(
                "sample", sample, [labels_spec, seed_spec],
                f"labels int32 [batch] (1 to {MAX_SAMPLES}), seed int32 (0 to {MAX_SEED}) -> images uint8 "
                f"[batch, {h}, {w}, {c}]; raster order, sub-pixel k drawn with stateless seed (seed, k)"))
        else:
            endpoints.append(self.sample_endpoint(
                self._sample_graph, "raster order, sub-pixel k drawn with stateless seed (seed, k)"))
        endpoints.append(Endpoint(
            "complete", complete,
            [images_spec, tf.TensorSpec([None, h, w, c], tf.bool, name="mask"), seed_spec, *with_labels],
            f"images uint8 [batch, {h}, {w}, {c}] (1 to {MAX_SAMPLES} images), mask bool (same shape; True = "
            f"known), seed int32 (0 to {MAX_SEED}){label_doc} -> "
            "images uint8: known sub-pixels kept, the others drawn in raster order given those before them"))
        if self.conditional:
            def classify(images):
                images, _ = batch_checked(images)
                scores = self._chunked("class_log_likelihoods", images)
                return {"probabilities": tf.nn.softmax(scores, axis=1),
                        "label": tf.argmax(scores, axis=1, output_type=tf.int32)}

            endpoints.append(Endpoint(
                "classify", classify, [images_spec],
                f"images uint8 [batch, {h}, {w}, {c}] (1 to {MAX_SAMPLES} images) -> probabilities float32 "
                f"[batch, {self.num_classes}] "
                "(Bayes' rule, uniform prior: p(y | x) ∝ p(x | y)), label int32 [batch]"))
        return endpoints

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config
