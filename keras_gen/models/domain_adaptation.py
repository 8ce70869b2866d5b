"""Adversarial domain adaptation: a digit classifier trained with the labels of one domain
(the source, e.g. mnist5k) that has to work on another (the target, e.g. mnistm5k) whose
labels it never sees. E is an encoder (images -> features), C a label classifier, D a domain
discriminator on features (`keras_gen.networks.domain`); S the labelled source, T the target.

    source-only    min_{E,C} E_(x,y)~S CE(C(E(x)), y)                        the floor
    target-oracle  min_{E,C} E_(x,y)~T CE(C(E(x)), y)  with target labels:   the ceiling
    dann           min_{E,C,D} E_S CE(C(E(x)), y) + E_{S∪T} BCE(D(R_λ(E(x))), d)
                   (Ganin & Lempitsky 2015; Ganin et al. 2016): d = 0 for source, 1 for
                   target; R_λ, the gradient reversal layer, is the identity forward and
                   −λ times the gradient backward, so one minimisation trains D to tell the
                   domains apart and E to make them indistinguishable (min over E of
                   L_y − λ L_d). λ_p = 2 / (1 + exp(−10 p)) − 1 and the learning rate
                   μ_p = μ_0 / (1 + 10 p)^0.75 over the training progress p ∈ [0, 1]
                   (`DANNSchedule`).
    adda           (Tzeng et al. 2017) stage 1: min_{Es,C} E_S CE(C(Es(x)), y);
                   stage 2: Et ← Es, then per batch
                       D:  min −E_S log D(Es(x)) − E_T log(1 − D(Et(x)))
                       Et: min −E_T log D(Et(x))      (the GAN loss with inverted labels)
                   with Es and C frozen; stage 3: classify target images with C(Et(x)).

Inputs are uint8 images `[B, H, W, C]`; a model's `image_shape` is the TARGET's. Source images
with another number of channels (grey mnist5k into RGB mnistm5k, RGB syndigits5k into grey
mnist5k) are converted inside the model, in every training and evaluation step, by
`keras_gen.data.to_channels` (grey repeated to RGB; RGB to its luminance), so the data
pipeline hands each domain's images as they are. `classify`, `predict` and `evaluate` take
either too (the source's images are classified as training saw them); the exported `classify`
signature takes target-shaped images only.

Model selection never looks at target labels. A run keeps its last epoch, at the papers'
schedules; what it logs to choose by is the source validation accuracy (`val_accuracy`:
`keras-gen train` evaluates on the source's test split after every epoch) and, for the
adversarial models, the domain discriminator's confusion (`domain_accuracy`: 0.5 is
indistinguishable domains; ADDA warns when it saturates above 0.99). Target test labels only
give the reported figure (`evaluate` after training, `test` in run.json). The oracle is the
exception by definition: it trains on target labels, to show the ceiling.

Every model: `classify(images)` -> (probabilities float32 [B, 10], labels int32 [B]);
`evaluate(images, labels)` (or a dataset of (images, labels) batches) reports `loss`
(cross-entropy) and `accuracy`; the export's
`classify` signature (also `serving_default`) does what `classify` does.
"""
from __future__ import annotations

import math
import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gen import distribute
from keras_gen.data import to_channels
from keras_gen.errors import KerasGenError
from keras_gen.layers import GradientReversal
from keras_gen.models.base import (MAX_SAMPLES, Endpoint, GenerativeModel, assert_image_batch, check_data_kind,
                                   check_size, check_sizes, data_check, in_chunks, numpy_dtype,
                                   without_autotune_stall)
from keras_gen.models.labels import ClassLabels
from keras_gen.models.optimizers import SeveralOptimizers
from keras_gen.networks import domain as networks

CLASSIFY_CHUNK = 500  # images per network call in `classify` (activations of 500 28x28 images: ~40 MB)


# -- the DANN schedules (Ganin & Lempitsky 2015, sec. 5.2; Ganin et al. 2016, sec. 5.1) --------------
def dann_lambda(progress, gamma=10.0) -> float:
    """λ_p = 2 / (1 + exp(−γ p)) − 1: 0 at the start, approaching 1 (0.987 at p = 0.5 for γ = 10),
    so the domain classifier's noisy early signal does not reach the features."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


def dann_learning_rate(progress, base_learning_rate, alpha=10.0, beta=0.75) -> float:
    """μ_p = μ_0 / (1 + α p)^β (μ_0 = 0.01, α = 10, β = 0.75 in the paper)."""
    return float(base_learning_rate) / (1.0 + alpha * float(progress)) ** beta


class DiscriminatorSaturationWarning(UserWarning):
    """The domain discriminator tells the domains apart almost perfectly: the adversarial
    signal to the encoder has vanished (ADDA, DANN)."""


class DANNSchedule(keras.callbacks.Callback):
    """Sets DANN's λ (the gradient reversal's weight) and its optimizer's learning rate before
    every batch from the training progress p = step / total steps, the step being the
    optimizer's own count (so a resumed run continues the schedule exactly):
    λ_p = `dann_lambda(p, gamma)`, μ_p = `dann_learning_rate(p, μ_0, alpha, beta)`, μ_0 the
    model's `base_learning_rate` (its optimizer's learning rate when first compiled).

    Args:
      total_steps: the steps of the whole run; None: fit's epochs x steps per epoch. The
        progress counts the optimizer's steps since the model was compiled, so a second `fit`
        call continues the schedule where the first left it (at the end, λ ≈ 1, if the first
        ran its course): give the whole run's steps here to spread one schedule over several
        `fit` calls.
      gamma, alpha, beta: the paper's 10, 10, 0.75.
    """

    def __init__(self, total_steps=None, gamma=10.0, alpha=10.0, beta=0.75):
        super().__init__()
        self.total_steps = None if total_steps is None else check_size("total_steps", total_steps)
        self.gamma, self.alpha, self.beta = float(gamma), float(alpha), float(beta)
        self._total = None

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "set_progress", None)):
            raise KerasGenError(f"DANNSchedule drives a DANN model, not a {type(self.model).__name__}")
        total = self.total_steps
        if total is None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            if not epochs or not steps:
                raise KerasGenError("DANNSchedule needs total_steps: fit's data has no known number of steps")
            total = int(epochs) * int(steps)
        self._total = total

    def progress(self) -> float:
        return min(1.0, int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) / self._total)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.set_progress(self.progress(), self.gamma, self.alpha, self.beta)


class DiscriminatorSaturation(keras.callbacks.Callback):
    """After each epoch that logged `monitor` (the domain discriminator's accuracy over the
    epoch), log `discriminator_saturated` (1.0 above `threshold`, else 0.0) and, above it,
    warn (`DiscriminatorSaturationWarning`): a discriminator that wins outright gives the
    encoder no useful gradient (the GAN failure mode the ADDA paper's inverted labels are
    meant to ease). Put it before callbacks that record the logs (checkpoints, History)."""

    def __init__(self, threshold=0.99, monitor="domain_accuracy"):
        super().__init__()
        self.threshold, self.monitor = float(threshold), monitor

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.monitor not in logs:
            return
        value = float(logs[self.monitor])
        logs["discriminator_saturated"] = float(value > self.threshold)
        if value > self.threshold:
            warnings.warn(
                f"epoch {epoch + 1}: the domain discriminator's accuracy is {value:.4f} (> {self.threshold}): it "
                "tells the domains apart and the encoder gets no adversarial signal; try a smaller discriminator "
                "learning rate or fewer discriminator units", DiscriminatorSaturationWarning, stacklevel=2)


class DomainAdaptationModel(ClassLabels, GenerativeModel):
    """Base of the domain-adaptation models: an encoder and a label classifier, image and label
    checks (source images of another channel count are converted), `classify`, `evaluate`
    (accuracy on labelled images) and the `classify` export.

    Args:
      image_shape: the target's `(H, W, C)`; C of 1 or 3 also takes source images of 3 or 1.
      num_classes: classes of the labels (10 digits).
      filters: the encoder's 5x5 convolutions, each followed by 2x2 max pooling.
      feature_dim: None (the default: features are the flattened maps, 768 for 28x28 with
        (32, 48), as DANN's) or the width of a dense layer on them.
      classifier_widths: hidden layers of the label classifier (DANN's 100, 100).
      precision: as `GenerativeModel`.

    What `keras_gen.training` feeds a model: `TRAINING_DATA` names the roles, ("source",) labelled
    source pairs, ("target",) labelled target pairs, ("source", "target") labelled source pairs
    zipped with unlabelled target images.
    """

    TRAINING_DATA = ("source",)
    PAIRS = ("images", "labels")
    TRIPLES = ("source images", "source labels", "target images")

    def __init__(self, image_shape, num_classes=10, filters=(32, 48), feature_dim=None,
                 classifier_widths=(100, 100), precision="auto", **kwargs):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        self.init_labels(num_classes)
        channels = self.image_shape[2]
        # What a step accepts: the model's channels, and the other of grey / RGB (to_channels).
        self.accepted_channels = (1, 3) if channels in (1, 3) else (channels,)
        self.filters = check_sizes("filters", filters)
        self.feature_dim = None if feature_dim is None else check_size("feature_dim", feature_dim)
        self.classifier_widths = () if classifier_widths in ((), []) else check_sizes(
            "classifier_widths", classifier_widths)
        self.feature_size = networks.feature_size(self.image_shape, self.filters, self.feature_dim)
        self.encoder = networks.encoder(self.image_shape, self.filters, self.feature_dim, self.precision)
        self.classifier = networks.classifier(self.feature_size, self.classifier_widths, self.num_classes,
                                              self.precision)
        for name in ("loss", "class_loss", "domain_loss", "d_loss", "encoder_loss", "lambda"):
            self.track(name, "down")
        self.track("accuracy", "up")
        # 0.5 is the goal of the adversarial models (indistinguishable domains); logged, not minimised.
        self.track("domain_accuracy", "down")
        self._classify_fn = None

    # -- what the model classifies with, and how --------------------------------------------------
    @property
    def inference_encoder(self):
        """The encoder `classify` and `evaluate` use."""
        return self.encoder

    def current_optimizer(self):
        return self.optimizer

    def class_logits(self, x, training=False):
        """Class logits float32 `[B, num_classes]` of images in [-1, 1]."""
        return tf.cast(self.classifier(self.inference_encoder(x, training=training), training=training), tf.float32)

    def call(self, images, training=False):
        """Class probabilities float32 `[B, num_classes]` of images `[B, H, W, C]` in 0..255
        (what `predict` returns), C the model's channels or the other of grey / RGB; checked
        where traced, as `classify` checks them."""
        images = tf.convert_to_tensor(images)
        self._check_batch_spec(images.shape, images.dtype)
        images = self._to_model_channels(images)
        return tf.nn.softmax(self.class_logits(self.images_to_float(images), training=training), axis=-1)

    def _classify_graph(self, images):
        logits = self.class_logits(self.images_to_float(images))
        return tf.nn.softmax(logits, axis=-1), tf.argmax(logits, axis=-1, output_type=tf.int32)

    def classify(self, images):
        """`(probabilities float32 [B, num_classes], labels int32 [B])` for uint8 images of the
        model's (the target's) shape, or of the other of grey / RGB (a grey source's images for
        an RGB target: converted by `to_channels`, as in training)."""
        images = self.check_images(self._in_model_channels(images), max_batch=MAX_SAMPLES)
        if self._classify_fn is None:
            # In chunks inside the traced function: any batch size, also where traced with it
            # unknown (a tf.function, Dataset.map).
            outputs = [(tf.float32, [self.num_classes]), (tf.int32, [])]
            self._classify_fn = tf.function(
                lambda x: in_chunks(self._classify_graph, (x,), CLASSIFY_CHUNK, outputs),
                input_signature=[tf.TensorSpec([None, *self.image_shape], tf.uint8)], jit_compile=False)
        return self._classify_fn(images)

    def _reset_functions(self):
        """Forget traced steps (after a change of what they compute, e.g. ADDA's stage)."""
        self.train_function = self.test_function = self.predict_function = None
        self._classify_fn = None

    # -- data checks: the model's channels, or the other of grey / RGB for source images ------
    def _describe(self):
        h, w, _ = self.image_shape
        channels = " or ".join(map(str, self.accepted_channels))
        return f"uint8 images [batch, {h}, {w}, {channels}] with values 0..255"

    def _check_batch_spec(self, shape, dtype, strict=False):
        shape = tuple(shape) if getattr(shape, "rank", 0) is not None else ()
        channels = (self.image_shape[2],) if strict else self.accepted_channels
        unknown = shape[3] is None and not strict and len(self.accepted_channels) > 1 if len(shape) == 4 else False
        if (len(shape) != 4 or tuple(shape[1:3]) != self.image_shape[:2] or (shape[3] not in channels and not unknown)
                or tf.as_dtype(dtype) != tf.uint8):
            expected = (f"uint8 images [batch, {', '.join(map(str, self.image_shape))}]" if strict
                        else self._describe())
            hint = " (batch the dataset)" if len(shape) == 3 else ""
            raise KerasGenError(f"expected batches of {expected}, got {tf.as_dtype(dtype).name} {list(shape)}{hint}")

    def _in_model_channels(self, images):
        """Images given eagerly (arrays, tensors) with the other of grey / RGB, converted to the
        model's channels; anything else as it came (`check_images` then says what is wrong)."""
        shape = getattr(images, "shape", None)
        c = self.image_shape[2]
        if shape is not None and len(shape) == 4 and shape[3] != c and shape[3] in self.accepted_channels \
                and tuple(shape[1:3]) == self.image_shape[:2] and numpy_dtype(images) == np.uint8:
            return self._to_model_channels(tf.convert_to_tensor(images))
        return images

    def _to_model_channels(self, images):
        h, w, c = self.image_shape
        if images.shape[-1] == c:
            return images
        if images.shape[-1] is not None:
            return to_channels(images, c)
        # Channels unknown where traced: Keras relaxes a step's input shape once it has seen
        # grey and RGB batches (source validation, then target test). Decided when it runs.
        other = 3 if c == 1 else 1
        return tf.cond(tf.equal(tf.shape(images)[-1], c), lambda: tf.ensure_shape(images, [None, h, w, c]),
                       lambda: to_channels(tf.ensure_shape(images, [None, h, w, other]), c))

    def training_batches(self):
        """The parts of a training batch: `PAIRS` or `TRIPLES`."""
        return self.PAIRS

    def _check_batches(self, x, y, parts, verb):
        """Refuse, before Keras starts, data that cannot give `parts` batches."""
        what = f"{type(self).__name__} {verb} on ({', '.join(parts)}) batches"
        check_data_kind(x, "fit" if verb == "trains" else "evaluate")
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if not isinstance(spec, (tuple, list)) or len(spec) != len(parts):
                got = len(spec) if isinstance(spec, (tuple, list)) else 1
                raise KerasGenError(f"{what}; the dataset yields {got} part(s) per element")
            self._check_batch_spec(spec[0].shape, spec[0].dtype)
            self.check_labels_dtype(spec[1].dtype)
            if len(parts) == 3:
                self._check_batch_spec(spec[2].shape, spec[2].dtype, strict=True)
            self._check_not_empty(x)
        elif len(parts) == 3 and x is not None and (hasattr(x, "shape") or isinstance(x, (tuple, list, dict))):
            # Arrays cannot hold triples of two domains of different sizes; a generator or a
            # PyDataset yields them, checked by the step as a dataset's are here.
            raise KerasGenError(f"{what}: give a tf.data.Dataset, a generator or a keras.utils.PyDataset of such "
                                "triples, e.g. Dataset.zip of source (images, labels) and target images")
        elif x is not None and hasattr(x, "shape") and hasattr(x, "dtype"):
            self._check_batch_spec((None, *x.shape[1:]), x.dtype)
            if len(x) == 0:
                raise KerasGenError("expected at least one image, got none")
            if y is None:
                raise KerasGenError(f"{what}: give the labels too")
            self.check_training_labels(np.asarray(y))

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_batches(x, y, self.training_batches(), "trains")
        self._check_validation_data(kwargs.get("validation_data"))
        self._before_fit(kwargs.get("callbacks") or (args[3] if len(args) > 3 else None) or [])
        self.show_metrics(*self.training_metrics())
        x, y, kwargs = without_autotune_stall(x, y, args, kwargs, shuffle=True)
        return keras.Model.fit(self, x, y, *args, **kwargs)

    def _before_fit(self, callbacks):
        """What a model says once `fit`'s data passed its checks (DANN: whether λ will move)."""

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`loss` (cross-entropy) and `accuracy` on labelled (images, labels), through the
        classifying path; also `fit`'s validation."""
        self._check_evaluation_data(x, y)
        shown = self._metric_group
        self.show_metrics(*self.EVALUATION_METRICS)
        try:
            x, y, kwargs = without_autotune_stall(x, y, args, kwargs, shuffle=False)
            return keras.Model.evaluate(self, x, y, *args, **kwargs)
        finally:
            self._metric_group = shown  # fit's validation: the epoch goes on with its own

    def _check_evaluation_data(self, x, y=None):
        self._check_batches(x, y, self.PAIRS, "evaluates")

    def predict(self, x, *args, **kwargs):
        """Class probabilities, as `classify`'s first output; arrays are checked with their own
        shape (the traced check sees Keras' relaxed one, e.g. [None, 28, 28, None], once it
        has run on two shapes)."""
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            self._check_batch_spec((None, *x.shape[1:]), x.dtype)
            x = self._in_model_channels(x)
        return super().predict(x, *args, **kwargs)

    def _nonempty(self, images):
        with tf.control_dependencies([tf.debugging.assert_positive(
                tf.shape(images)[0], message=data_check("a batch holds no images (an empty dataset or array?)"))]):
            return tf.identity(images)

    def unpack_labelled(self, data):
        """`(images uint8 in the model's channels, labels int32 [B])` of an (images, labels) batch."""
        if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
            raise KerasGenError(f"{type(self).__name__} needs (images, labels) batches")
        images, labels = data[0], data[1]
        self._check_batch_spec(images.shape, images.dtype)
        return self._to_model_channels(self._nonempty(images)), self.batch_labels(labels, images)

    def unpack_domains(self, data):
        """`(source images, source labels, target images)` of a triple, source images in the
        model's channels."""
        if not isinstance(data, (tuple, list)) or len(data) != 3:
            raise KerasGenError(f"{type(self).__name__} trains on ({', '.join(self.TRIPLES)}) batches")
        source, labels = self.unpack_labelled(data[:2])
        target = data[2]
        self._check_batch_spec(target.shape, target.dtype, strict=True)
        return source, labels, self._nonempty(target)

    # -- metrics: what `fit` reports depends on the model (and ADDA's stage); `evaluate`
    # reports loss and accuracy. The shown trackers are exactly those a step updates, so Keras
    # resets them and reads them across replicas (`GenerativeModel.show_metrics`).
    EVALUATION_METRICS = ("loss", "accuracy")

    def training_metrics(self):
        return ("loss", "accuracy")

    def _ready(self):
        """End of a model's construction: built, reporting its training metrics."""
        self.show_metrics(*self.training_metrics())
        self.built = True

    # -- steps ------------------------------------------------------------------------------------
    def classification_step(self, images, labels, encoder, optimizer):
        """One step of min CE(C(encoder(x)), y) on labelled images, over encoder and C."""
        n = tf.shape(labels)[0]
        variables = encoder.trainable_variables + self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.cast(self.classifier(encoder(self.images_to_float(images), training=True), training=True),
                             tf.float32)
            class_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            # This replica's part of the global batch's mean (keras_gen.distribute).
            objective = distribute.global_mean_part(class_loss, n)
        optimizer.apply(tape.gradient(objective, variables), variables)
        self.update_metrics(distribute.batch_weight(n), loss=class_loss, accuracy=self._accuracy(logits, labels))
        return self.metric_results()

    @staticmethod
    def _accuracy(logits, labels):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))

    def test_step(self, data):
        """Cross-entropy and accuracy on labelled images, per example (the last, short batch
        weighs by its images), through the classifying path (`inference_encoder`)."""
        images, labels = self.unpack_labelled(data)
        logits = self.class_logits(self.images_to_float(images))
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
        self.update_metrics(loss=tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), accuracy=correct)
        return self.metric_results()

    def training_callbacks(self):
        """The callbacks the model's paper needs during `fit` (`keras_gen.training` adds them)."""
        return []

    # -- export -------------------------------------------------------------------------------------
    def serving_endpoints(self):
        h, w, c = self.image_shape

        def classify(images):
            probabilities, label = self._classify_graph(assert_image_batch(images, self.image_shape))
            return {"probabilities": probabilities, "label": label}

        return [Endpoint(
            "classify", classify, [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")],
            f"images uint8 [batch, {h}, {w}, {c}] (1 to {MAX_SAMPLES} images) -> probabilities float32 "
            f"[batch, {self.num_classes}], label int32 [batch]")]

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, filters=list(self.filters), feature_dim=self.feature_dim,
                      classifier_widths=list(self.classifier_widths))
        return config


class _Classifier(DomainAdaptationModel):
    """A plain classifier E, C trained with cross-entropy on the labelled pairs it is given."""

    def __init__(self, image_shape=(28, 28, 1), **kwargs):
        super().__init__(image_shape=image_shape, **kwargs)
        self._ready()

    def compile(self, optimizer=None, **keras_args):
        """Adam(1e-3) by default (ADDA's source stage); built here so a saved model keeps its state."""
        optimizer = self.optimizer_from(optimizer, lambda: keras.optimizers.Adam(1e-3))
        self.compile_keras(keras_args, {"optimizer": optimizer}, optimizer)
        self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        images, labels = self.unpack_labelled(data)
        return self.classification_step(images, labels, self.encoder, self.optimizer)


@keras.saving.register_keras_serializable(package="keras_gen")
class SourceOnly(_Classifier):
    """Source only: E and C trained on the source's labels alone, then applied to the target
    (the floor every adaptation method must beat). `fit` takes (source images, labels)."""


@keras.saving.register_keras_serializable(package="keras_gen")
class TargetOracle(_Classifier):
    """Target oracle: the same network trained on the TARGET's labels (the ceiling; it uses the
    very labels adaptation may not). `fit` takes (target images, labels)."""

    TRAINING_DATA = ("target",)


@keras.saving.register_keras_serializable(package="keras_gen")
class DANN(DomainAdaptationModel):
    """Domain-adversarial neural network (Ganin & Lempitsky 2015; Ganin et al. 2016).

    One minimisation, one tape, one optimizer: CE(C(E(x_s)), y_s) + BCE(D(R_λ(E(x))), d) over
    a batch of source and a batch of target images (d = 0 source, 1 target), R_λ a
    `GradientReversal` layer between E and D. λ and the learning rate follow the paper's
    schedules when `fit` gets `model.training_callbacks()` (a `DANNSchedule`; `keras-gen train`
    adds it): without it λ stays at `lambda_`.

    Args:
      discriminator_widths: hidden layers of D (the paper's MNIST domain classifier: 100).
      lambda_: λ before any schedule sets it, ≥ 0 (the schedule's λ at p = 0 is 0, so with a
        schedule this is overwritten at the first step: `fit` warns if it is not 0).
      lambda_max: the schedule's final λ, ≥ 0: λ_p = lambda_max · (2 / (1 + exp(−γ p)) − 1)
        (the paper's 1; smaller caps the reversed gradient, e.g. `--set hparams.lambda_max=0.3`).
      others: as `DomainAdaptationModel`.

    `fit` takes (source images, source labels, target images) batches (`tf.data`), e.g.
    `tf.data.Dataset.zip(source.batch(64), target_images.batch(64)).map(lambda s, t: (*s, t))`,
    and reports `loss` (= class_loss + domain_loss), `class_loss`, `domain_loss`,
    `domain_accuracy` (D's, on both domains; near 0.5 once the features are aligned) and
    `lambda`. Model selection without target labels: the source validation accuracy, or
    D's confusion; `keras-gen train` keeps the last epoch.
    """

    TRAINING_DATA = ("source", "target")

    def __init__(self, image_shape=(28, 28, 1), discriminator_widths=(100,), lambda_=0.0, lambda_max=1.0, **kwargs):
        super().__init__(image_shape=image_shape, **kwargs)
        self.discriminator_widths = check_sizes("discriminator_widths", discriminator_widths)
        for name, value in (("lambda_", lambda_), ("lambda_max", lambda_max)):
            # A negative λ would turn the reversal into a plain gradient: the encoder would
            # help the domain classifier, the opposite of DANN.
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
                raise KerasGenError(f"DANN's {name} must be a finite number >= 0, got {value!r}")
        self.lambda_max = float(lambda_max)
        self.discriminator = networks.discriminator(self.feature_size, self.discriminator_widths, self.precision)
        self.reversal = GradientReversal(lambda_, dtype=self.precision, name="gradient_reversal")
        self.initial_lambda = self.reversal.lambda_
        self.base_learning_rate = None
        self._ready()

    def training_batches(self):
        return self.TRIPLES

    def training_metrics(self):
        return ("loss", "class_loss", "domain_loss", "domain_accuracy", "accuracy", "lambda")

    def compile(self, optimizer=None, base_learning_rate=None, **keras_args):
        """SGD(0.01, momentum 0.9) by default, the paper's; `base_learning_rate` is μ_0 of the
        schedule (default: the optimizer's learning rate now), kept with the model so a reloaded
        or resumed model continues the same schedule."""
        optimizer = self.optimizer_from(optimizer, lambda: keras.optimizers.SGD(0.01, momentum=0.9))
        if isinstance(getattr(optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule):
            raise KerasGenError("DANN's schedule sets the learning rate itself: give an optimizer with a "
                                "constant learning rate")
        if base_learning_rate is None:
            base_learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if isinstance(base_learning_rate, bool) or not isinstance(base_learning_rate, (int, float)) \
                or not 0 < float(base_learning_rate) < float("inf"):
            raise KerasGenError(f"base_learning_rate must be a positive number, got {base_learning_rate!r}")
        self.base_learning_rate = float(base_learning_rate)
        self.compile_keras(keras_args, {"optimizer": optimizer, "base_learning_rate": self.base_learning_rate},
                           optimizer)
        self.optimizer.build(self.trainable_variables)

    def set_progress(self, progress, gamma=10.0, alpha=10.0, beta=0.75):
        """λ and the learning rate at training progress p ∈ [0, 1] (`DANNSchedule` calls this);
        neither retraces the step (both are variables)."""
        p = min(1.0, max(0.0, float(progress)))
        self.reversal.lambda_ = self.lambda_max * dann_lambda(p, gamma)
        if self.base_learning_rate is not None:
            self.optimizer.learning_rate = dann_learning_rate(p, self.base_learning_rate, alpha, beta)

    def training_callbacks(self):
        return [DANNSchedule(), DiscriminatorSaturation()]

    def _before_fit(self, callbacks):
        """`fit` warns when nothing will set λ (no `DANNSchedule` among the callbacks and λ = 0):
        the encoder then gets no adversarial gradient at all; and when a schedule will
        overwrite a `lambda_` that was set (λ_0 = 0 on the schedule). After the data's checks,
        so bad data gets its one-line error, not a warning first."""
        scheduled = any(isinstance(c, DANNSchedule) for c in callbacks)
        if not scheduled and self.reversal.lambda_ == 0.0:
            warnings.warn("DANN's λ is 0 and no DANNSchedule is among fit's callbacks: the encoder gets no "
                          "adversarial gradient (pass callbacks=model.training_callbacks(), or set lambda_)",
                          stacklevel=3)
        if scheduled and self.initial_lambda != 0.0:
            warnings.warn(f"DANN's lambda_ ({self.initial_lambda:g}) is overwritten by the DANNSchedule, whose λ "
                          f"rises from 0 to lambda_max ({self.lambda_max:g}): set lambda_max to change λ "
                          "under the schedule", stacklevel=3)

    def domain_logits(self, features):
        """D's logits float32 `[B, 1]` of features, through the gradient reversal."""
        return tf.cast(self.discriminator(self.reversal(features), training=True), tf.float32)

    def train_step(self, data):
        source, labels, target = self.unpack_domains(data)
        n_s, n_t = tf.shape(source)[0], tf.shape(target)[0]
        x = self.images_to_float(tf.concat([source, target], 0))
        domains = tf.concat([tf.zeros([n_s, 1]), tf.ones([n_t, 1])], 0)  # d = 0 source, 1 target
        with tf.GradientTape() as tape:
            features = self.encoder(x, training=True)
            logits = tf.cast(self.classifier(features[:n_s], training=True), tf.float32)
            class_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            domain_logits = self.domain_logits(features)
            domain_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(domains, domain_logits))
            # Each mean's part of the global batch's (keras_gen.distribute): class over the
            # source images, domain over source and target.
            objective = (distribute.global_mean_part(class_loss, n_s)
                         + distribute.global_mean_part(domain_loss, n_s + n_t))
        grads = tape.gradient(objective, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        domain_accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(domain_logits > 0, tf.float32), domains),
                                                 tf.float32))
        self.update_metrics(distribute.batch_weight(n_s), loss=class_loss + domain_loss, class_loss=class_loss,
                            accuracy=self._accuracy(logits, labels),
                            **{"lambda": tf.convert_to_tensor(self.reversal.lambda_variable)})
        self.update_metrics(distribute.batch_weight(n_s + n_t), domain_loss=domain_loss,
                            domain_accuracy=domain_accuracy)
        return self.metric_results()

    def get_config(self):
        config = super().get_config()
        config.update(discriminator_widths=list(self.discriminator_widths), lambda_=self.initial_lambda,
                      lambda_max=self.lambda_max)
        return config


@keras.saving.register_keras_serializable(package="keras_gen")
class ADDA(DomainAdaptationModel):
    """Adversarial discriminative domain adaptation (Tzeng et al. 2017), its three stages in
    one model (`stage`):

    1. `fit` on (source images, labels): the source encoder Es (`encoder`) and the classifier C
       by cross-entropy (`optimizer`, Adam(1e-3)).
    2. `set_stage(2)` copies Es into the target encoder Et (`target_encoder`); `fit` on
       (source images, source labels, target images) then takes, per batch, one step of D on
       Es(x_s) (label 1) against Et(x_t) (label 0), and one step of Et on the inverted label
       (−log D(Et(x_t))), each with its own tape and optimizer (`d_optimizer`,
       `target_optimizer`: Adam(2e-4, β1 0.5), as ADDA's public digit scripts); Es and C are
       not updated (the labels are not used).
    3. `set_stage(3)`: training is over; C(Et(x)) classifies target images.
    `classify` and `evaluate` use Es in stage 1 and Et from stage 2 on.

    `keras-gen train adda` runs all three: `source_epochs` of stage 1 (saved as stage1.keras),
    the recipe's epochs of stage 2 (stage2.keras), then model.keras in stage 3. Model selection
    never sees target labels: the run keeps the last epoch of each stage; stage 1 logs the
    source validation accuracy, stage 2 the discriminator's confusion (`domain_accuracy`;
    `DiscriminatorSaturation` warns and logs `discriminator_saturated` when it passes 0.99).

    Args:
      discriminator_widths: D's hidden layers (the paper's 500, 500).
      stage: 1, 2 or 3 (a saved model keeps its stage).
      source_epochs: stage 1's epochs in a `keras-gen train` run (default 20, source-only's: with
        the same recipe, stage 1 trains exactly the source-only model, so ADDA's gain is measured
        against its own starting point).
      others: as `DomainAdaptationModel`.

    `fit` reports `loss` and `accuracy` in stage 1; `loss` (= d_loss + encoder_loss), `d_loss`,
    `encoder_loss` and `domain_accuracy` (D's) in stage 2.
    """

    TRAINING_DATA = ("source", "target")
    STAGES = (1, 2, 3)
    STAGE_METRICS = {1: ("loss", "accuracy"), 2: ("loss", "d_loss", "encoder_loss", "domain_accuracy")}

    def __init__(self, image_shape=(28, 28, 1), discriminator_widths=(500, 500), stage=1, source_epochs=20,
                 **kwargs):
        super().__init__(image_shape=image_shape, **kwargs)
        if isinstance(stage, bool) or stage not in self.STAGES:
            raise KerasGenError(f"stage must be 1, 2 or 3, got {stage!r}")
        self.stage = int(stage)
        self.source_epochs = check_size("source_epochs", source_epochs)
        self.discriminator_widths = check_sizes("discriminator_widths", discriminator_widths)
        self.target_encoder = networks.encoder(self.image_shape, self.filters, self.feature_dim, self.precision,
                                               name="target_encoder")
        self.target_encoder.set_weights(self.encoder.get_weights())
        self.discriminator = networks.discriminator(self.feature_size, self.discriminator_widths, self.precision)
        self._ready()

    @property
    def source_encoder(self):
        return self.encoder

    @property
    def inference_encoder(self):
        return self.encoder if self.stage == 1 else self.target_encoder

    def current_optimizer(self):
        return self.source_optimizer if self.stage == 1 else self.target_optimizer

    def stage_optimizers(self):
        """The optimizers the current stage trains with."""
        return [self.source_optimizer] if self.stage == 1 else [self.d_optimizer, self.target_optimizer]

    def training_batches(self):
        return self.PAIRS if self.stage == 1 else self.TRIPLES

    def training_metrics(self):
        return self.STAGE_METRICS[1 if self.stage == 1 else 2]

    def set_stage(self, stage):
        """Go on to `stage`, one at a time: 2 initialises Et from Es (the paper's start of the
        adversarial stage), 3 ends training."""
        if self.stage == 3:
            raise KerasGenError(f"ADDA is at stage 3, its last (classifying): there is no stage {stage!r} to go to")
        if stage != self.stage + 1:
            raise KerasGenError(f"ADDA goes from stage {self.stage} to stage {self.stage + 1}, not to {stage!r}")
        if stage == 2:
            self.target_encoder.set_weights(self.encoder.get_weights())
        self.stage = stage
        self._reset_functions()
        self.show_metrics(*self.training_metrics())

    def compile(self, optimizer=None, d_optimizer=None, target_optimizer=None, **keras_args):
        """Stage 1's `optimizer` (Adam(1e-3)); stage 2's `d_optimizer` and `target_optimizer`
        (Adam(2e-4, β1 0.5) each); all built here, so a saved model keeps every state."""
        self.source_optimizer = self.optimizer_from(optimizer, lambda: keras.optimizers.Adam(1e-3))
        self.d_optimizer = self.optimizer_from(d_optimizer, lambda: keras.optimizers.Adam(2e-4, beta_1=0.5))
        self.target_optimizer = self.optimizer_from(target_optimizer, lambda: keras.optimizers.Adam(2e-4, beta_1=0.5))
        optimizers = [self.source_optimizer, self.d_optimizer, self.target_optimizer]
        if len({id(o) for o in optimizers}) != 3:
            raise KerasGenError("ADDA's three optimizers must be three instances")
        self.source_optimizer.name, self.d_optimizer.name, self.target_optimizer.name = (
            "source_optimizer", "d_optimizer", "target_optimizer")
        self.compile_keras(keras_args, {"optimizer": self.source_optimizer, "d_optimizer": self.d_optimizer,
                                        "target_optimizer": self.target_optimizer})
        # Built now, on their variables: Keras skips loading the state of unbuilt optimizers.
        self.source_optimizer.build(self.encoder.trainable_variables + self.classifier.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.target_optimizer.build(self.target_encoder.trainable_variables)
        # `model.optimizer` for Keras' callbacks: those of the stage that trains now, so that a
        # stage's callbacks leave the next stage's optimizers as compiled; its steps count.
        self.optimizer = SeveralOptimizers(
            lambda: {"source_optimizer": self.source_optimizer, "d_optimizer": self.d_optimizer,
                     "target_optimizer": self.target_optimizer},
            self.stage_optimizers, self.current_optimizer)

    def fit(self, *args, **kwargs):
        if self.stage == 3:
            raise KerasGenError("this ADDA model is adapted (stage 3): it trains no more")
        return super().fit(*args, **kwargs)

    def training_callbacks(self):
        return [DiscriminatorSaturation()]

    def train_step(self, data):
        if self.stage == 1:
            images, labels = self.unpack_labelled(data)
            return self.classification_step(images, labels, self.encoder, self.source_optimizer)
        source, _, target = self.unpack_domains(data)  # stage 2 uses no labels
        n_s, n_t = tf.shape(source)[0], tf.shape(target)[0]
        source_features = self.encoder(self.images_to_float(source), training=False)  # Es frozen
        target_x = self.images_to_float(target)
        target_features = self.target_encoder(target_x, training=True)
        domains = tf.concat([tf.ones([n_s, 1]), tf.zeros([n_t, 1])], 0)  # D: 1 source, 0 target

        # D: tell Es(x_s) from Et(x_t).
        with tf.GradientTape() as tape:
            d_logits = tf.cast(self.discriminator(tf.concat([source_features, target_features], 0), training=True),
                               tf.float32)
            d_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(domains, d_logits))
            d_objective = distribute.global_mean_part(d_loss, n_s + n_t)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(d_objective, variables), variables)

        # Et: make the updated D call target features "source" (the inverted label).
        with tf.GradientTape() as tape:
            t_logits = tf.cast(self.discriminator(self.target_encoder(target_x, training=True), training=True),
                               tf.float32)
            encoder_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(t_logits), t_logits))
            t_objective = distribute.global_mean_part(encoder_loss, n_t)
        variables = self.target_encoder.trainable_variables
        self.target_optimizer.apply(tape.gradient(t_objective, variables), variables)

        domain_accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(d_logits > 0, tf.float32), domains), tf.float32))
        self.update_metrics(distribute.batch_weight(n_s + n_t), d_loss=d_loss, domain_accuracy=domain_accuracy)
        self.update_metrics(distribute.batch_weight(n_t), loss=d_loss + encoder_loss, encoder_loss=encoder_loss)
        return self.metric_results()

    def get_config(self):
        config = super().get_config()
        config.update(discriminator_widths=list(self.discriminator_widths), stage=self.stage,
                      source_epochs=self.source_epochs)
        return config
