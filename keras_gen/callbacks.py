"""Callbacks that every keras-gen training run uses: sample grids, atomic checkpoints (with
what an exact resume needs, `keras_gen.resume`), the best epoch by held-out quality, stops on
a non-finite loss and on SIGINT, and one plain line per epoch for output that is not a
terminal."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from keras_gen.files import atomic_path
from keras_gen.images import sample_grid, save_png


class SampleGrid(keras.callbacks.Callback):
    """After each epoch, sample a fixed, seeded grid and write `epoch_NNN.png`.

    The same seed every epoch makes epochs comparable (the same latents for a GAN, the same
    per-pixel random streams for an autoregressive model). With `log_dir`, the grid also
    goes to TensorBoard as an image summary (Keras' TensorBoard callback logs none), at
    step = the epoch's index from 0, the step Keras' TensorBoard callback gives that epoch's
    scalars, so images and curves line up (the file names count from 1: `epoch_001.png` is
    step 0). With `last_only`, only after the run's last epoch (for models that draw a grid in
    minutes: an autoregressive model without a cached sampler passes its network once per
    sub-pixel, 784 times for 28x28 digits, several epochs' worth of training).
    """

    def __init__(self, out_dir, n=64, seed=0, log_dir=None, last_only=False):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.n = n
        self.seed = seed
        self.last_only = last_only
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        if self.last_only and epoch + 1 != self.params.get("epochs"):
            return
        grid = sample_grid(self.model, self.n, self.seed, label_rows=bool(getattr(self.model, "num_classes", None)))
        save_png(self.out_dir / f"epoch_{epoch + 1:03d}.png", grid)
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch)
            self.writer.flush()


def format_value(value) -> str:
    """A logged figure in at most 5 significant digits: 0.69315, 621.37, 1.2e-05."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.5g}" if math.isfinite(value) else str(value)


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch: `epoch 3/20 - d_loss 1.3863 - g_loss 0.69315 - 12.4 s`.

    For output that is not a terminal (a pipe, a log file, CI), where Keras' progress bar
    writes kilobytes of ANSI escapes and carriage returns per epoch; `fit(verbose=0)` with
    this callback last sees every figure other callbacks add (e.g. `fid`). The seconds
    are the epoch's wall time, callbacks included. Whoever runs ADDA's stages (one `fit` each)
    sets `stage`, which heads the line, and `epochs`, both stages' total:
    `stage 2, epoch 23/40 - ...`, the epochs numbered on through the stages.
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream
        self.stage = self.epochs = None
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        figures = "".join(f" - {name} {format_value(value)}" for name, value in (logs or {}).items())
        stage = "" if self.stage is None else f"stage {self.stage}, "
        epochs = self.epochs or self.params.get("epochs", "?")
        print(f"{stage}epoch {epoch + 1}/{epochs}{figures} - {seconds:.1f} s",
              file=self.stream or sys.stdout, flush=True)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (weights, both optimizers' state, config) after each epoch, and
    beside it what a resumed run needs to continue exactly (`keras_gen.resume`).

    Each checkpoint is `epoch_NNN.keras`, then `epoch_NNN.json` (the epoch, every
    SeedGenerator's state, the history so far, `quality`'s best, training seconds): the
    `.json` is written last, so a checkpoint is complete when it exists. Both are written to
    a temporary name and renamed, so a crash never leaves a half-written checkpoint; only the
    newest `keep` are kept. With `quality` (a `QualityCheckpoint`) and `best_path`, an epoch
    that is the best so far is also copied to `best_path`, after its checkpoint is complete.

    `history` holds every epoch's logs as `keras.callbacks.History` does (from the first
    epoch of the run, also when it was resumed: `resumed` is the state it continues from),
    one entry per epoch in every list: None for an epoch that did not log the metric.
    `user_callbacks`: the run's own callbacks, whose state (`keras_gen.resume.callback_state`)
    each checkpoint keeps too.
    """

    def __init__(self, out_dir, keep=2, quality=None, best_path=None, resumed=None, user_callbacks=()):
        super().__init__()
        from keras_gen import resume

        self.user_callbacks = list(user_callbacks)
        self.out_dir = Path(out_dir)
        self.keep = keep
        self.quality = quality
        self.best_path = Path(best_path) if best_path else None
        self.history = {k: list(v) for k, v in ((resumed or {}).get("history") or {}).items()}
        self.seconds_before = float((resumed or {}).get("train_seconds") or 0.0)
        # Only what this callback (or the run it continues) wrote is ever deleted.
        self.written = resume.complete_checkpoints(self.out_dir) if resumed else []
        self._start = time.perf_counter()

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def train_seconds(self) -> float:
        """Training time so far, including the processes this run was resumed from."""
        return self.seconds_before + time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        from keras_gen import resume

        # One entry per epoch in every list, None where an epoch did not log that metric (ADDA's
        # stages log different ones), so that entry k of every list is epoch k + 1's.
        epochs_before = max((len(values) for values in self.history.values()), default=0)
        logged = {}
        for name, value in (logs or {}).items():
            try:
                logged[name] = float(value)
            except (TypeError, ValueError):
                pass
        for name in [*self.history, *(name for name in logged if name not in self.history)]:
            self.history.setdefault(name, [None] * epochs_before).append(logged.get(name))
        done = epoch + 1
        with atomic_path(resume.checkpoint_path(self.out_dir, done), suffix=".keras") as tmp:
            self.model.save(tmp)
        resume.write_state(self.out_dir, done, {
            "epoch": done,
            "noise": resume.noise_state(self.model),
            "history": self.history,
            "quality": self.quality.get_state() if self.quality is not None else None,
            "callbacks": [{"class": type(c).__name__, "state": resume.callback_state(c)} for c in self.user_callbacks],
            "train_seconds": round(self.train_seconds(), 3),
            "precision": getattr(self.model, "precision", None),
        })
        if self.quality is not None and self.best_path is not None and self.quality.best_epoch == done:
            resume.copy_file(resume.checkpoint_path(self.out_dir, done), self.best_path)
        self.written.append(done)
        while len(self.written) > self.keep:
            old = self.written.pop(0)
            resume.state_path(self.out_dir, old).unlink(missing_ok=True)  # first: no longer complete
            resume.checkpoint_path(self.out_dir, old).unlink(missing_ok=True)


class StopOnNonFinite(keras.callbacks.Callback):
    """`keras.callbacks.TerminateOnNaN` that keeps what is good: at the first batch whose
    `monitor` (the loss) is NaN or infinite, raise `keras_gen.resume.NonFiniteLoss` naming
    the epoch and step, before the epoch's end writes anything from the broken weights
    (`keras_gen.training.train` then keeps the last good checkpoint as the run's model).
    A step's loss is computed before its update, so an update that breaks the weights in an
    epoch's last step leaves every loss finite: at each epoch's end the weights (batch-norm
    statistics included) are checked too, before the later callbacks draw or save them."""

    def __init__(self, monitor="loss"):
        super().__init__()
        self.monitor = monitor
        self.epoch = 0

    def on_train_begin(self, logs=None):
        reset = getattr(self.model, "reset_loss_watch", None)
        if reset is not None:
            reset()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        from keras_gen.resume import NonFiniteLoss

        broken = [v.path for v in self.model.weights if "float" in str(v.dtype)
                  and not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))))]
        if broken:
            raise NonFiniteLoss(
                f"the weights hold NaN or infinite values after epoch {epoch + 1} ({len(broken)} of "
                f"{len(self.model.weights)} arrays, e.g. {broken[0]}), though every loss was finite",
                epoch=epoch + 1)

    def on_train_batch_end(self, batch, logs=None):
        from keras_gen.resume import NonFiniteLoss, is_finite

        value = (logs or {}).get(self.monitor)
        if value is not None and not is_finite(value):
            steps = self.params.get("steps")
            step, where = self._bad_step(batch)
            # Keras logs the group's last step: its value is that step's, not always the named one's.
            what = f"is {float(value)}" if step == batch + 1 else "is not finite"
            raise NonFiniteLoss(
                f"the {self.monitor} {what} at epoch {self.epoch + 1}, {where}"
                f"{f' of {steps}' if steps else ''}",
                epoch=self.epoch + 1, step=step,
            )

    def _bad_step(self, batch):
        """`(step, words)`: the 1-based step of this epoch whose loss went non-finite. Keras
        reports the last step of a group of `steps_per_execution`; a keras-gen model's train
        function counts steps (`GenerativeModel.first_non_finite_step`), which names the
        very step; for another model, or a `monitor` other than the loss, the group is named."""
        group = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if group == 1:
            return batch + 1, f"step {batch + 1}"
        counted = getattr(self.model, "first_non_finite_step", lambda: None)() if self.monitor == "loss" else None
        if counted is not None and counted[0] is not None:
            first, run = counted
            step = batch + 1 - (run - first)
            if max(1, batch + 2 - group) <= step <= batch + 1:
                return step, f"step {step}"
        return batch + 1, f"steps {max(1, batch + 2 - group)}-{batch + 1}"


class StopOnRequest(keras.callbacks.Callback):
    """Stop `fit` once `request.requested` (a `keras_gen.resume.StopRequest`, set by SIGINT):
    at the next batch end, or, when the request comes during an epoch's end, after that
    epoch's checkpoint (put this callback after `AtomicCheckpoint`). Raises
    `keras_gen.resume.TrainingInterrupted` with the epoch in `.epoch` (1-based), whether
    that epoch was finished in `.finished`, and `fit`'s last epoch in `.epochs` (a run of
    several fits numbers its epochs on: ADDA's stage 2 ends at the run's last)."""

    def __init__(self, request):
        super().__init__()
        self.request = request
        self.epoch = 0

    def _stop(self, finished):
        from keras_gen.resume import TrainingInterrupted

        error = TrainingInterrupted(f"interrupted in epoch {self.epoch + 1}")
        error.epoch, error.finished = self.epoch + 1, finished
        error.epochs = self.params.get("epochs") if self.params else None
        raise error

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.request.requested:
            self._stop(False)

    def on_train_batch_end(self, batch, logs=None):
        if self.request.requested:
            self._stop(False)

    def on_epoch_end(self, epoch, logs=None):
        if self.request.requested:
            self._stop(True)


class QualityCheckpoint(keras.callbacks.Callback):
    """Score samples against reference images every `every` epochs and keep the best model.

    After each scored epoch it draws `n` seeded samples, computes their FID (and the number
    of classes they cover) against the `reference` images in the feature space of a shipped
    feature network (`keras_gen.metrics`), and adds them to the epoch's logs as
    `<prefix>fid` and `<prefix>classes_covered` (so History, TensorBoard and any other
    callback see them). The best model so far (lowest FID, or the best `monitor`) is written
    to `path` (atomically) and its weights are put back into the model when training ends:
    GANs peak and then degrade, so the run keeps its best epoch, not its last.

    What picks the epoch must not be what reports the result: a figure chosen as the lowest
    of many epochs is biased low. `keras_gen.training` therefore scores against the
    training split (`prefix=""`, as Keras names figures of the training data) with samples
    of another seed than those `evaluate` and the zoo cards score against the test split.

    Args:
      reference: uint8 images `[N, H, W, C]` the samples are compared with.
      network: a feature network name (e.g. "mnist28") or a loaded `FeatureNetwork`.
      path: where the best model goes (`.keras`); None keeps it in memory only.
      n, seed: how many samples, drawn with which seed (the same every time).
      every: score every this many epochs (and always after the last).
      restore_best: put the best weights back at the end of training.
      monitor: the figure that picks the best epoch (`MONITORS`: FID and KID lowest,
        precision, recall, coverage and classes covered highest), with or without the prefix.
      prefix: of the logged names: "val_" (the default) for held-out reference images,
        "" for training images.
    """

    # What each monitor keeps: the lowest or the highest value.
    MONITORS = {"fid": "min", "kid": "min", "precision": "max", "recall": "max", "coverage": "max",
                "classes_covered": "max"}

    def __init__(self, reference, network="mnist28", path=None, n=1000, seed=0, every=1, restore_best=True,
                 monitor="fid", prefix="val_"):
        super().__init__()
        from keras_gen import metrics
        from keras_gen.errors import KerasGenError

        if prefix not in ("val_", ""):
            raise KerasGenError(f"QualityCheckpoint's prefix is 'val_' or '', got {prefix!r}")
        figure = monitor.removeprefix(prefix) if isinstance(monitor, str) else monitor
        if figure not in self.MONITORS:
            raise KerasGenError(f"QualityCheckpoint monitors one of {', '.join(prefix + m for m in self.MONITORS)}, "
                                f"got {monitor!r}")
        self.network = metrics.load_feature_network(network) if isinstance(network, str) else network
        self.reference_features, self.reference_classes = self.network.features_and_classes(reference)
        self.path = Path(path) if path else None
        self.n, self.seed, self.every, self.restore_best = n, seed, every, restore_best
        self.prefix, self.figure = prefix, figure
        self.monitor, self.mode = prefix + figure, self.MONITORS[figure]
        self.best, self.best_epoch, self.best_weights = None, None, None

    def score(self) -> dict:
        """`{"<prefix>fid": ..., "<prefix>classes_covered": ..., and the monitored figure}` of
        the model's seeded samples against the reference."""
        from keras_gen import metrics
        from keras_gen.images import to_uint8

        samples = to_uint8(keras.ops.convert_to_numpy(self.model.sample(self.n, self.seed)))
        features, classes = self.network.features_and_classes(samples)
        coverage = metrics.class_coverage(classes, self.reference_classes, classes.shape[1])
        scores = {"fid": metrics.fid(features, self.reference_features),
                  "classes_covered": coverage.classes_covered}
        if self.figure == "kid":
            size = max(2, min(len(features), len(self.reference_features)) // 2)  # as evaluate_samples
            scores["kid"] = metrics.kid(features, self.reference_features, subset_size=size, seed=self.seed)[0]
        elif self.figure in ("precision", "recall"):
            precision, recall = metrics.precision_recall(self.reference_features, features, k=metrics.PR_K)
            scores.update(precision=precision, recall=recall)
        elif self.figure == "coverage":
            scores["coverage"] = metrics.density_coverage(self.reference_features, features, k=metrics.DC_K)[1]
        return {self.prefix + name: value for name, value in scores.items()}

    def _improved(self, value) -> bool:
        return self.best is None or (value < self.best if self.mode == "min" else value > self.best)

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") == epoch + 1
        if (epoch + 1) % self.every and not last:
            return
        scores = self.score()
        if logs is not None:
            logs.update(scores)
        if self._improved(scores[self.monitor]):
            self.best, self.best_epoch = scores[self.monitor], epoch + 1
            self.best_weights = self.model.get_weights()
            if self.path is not None:
                with atomic_path(self.path, suffix=".keras") as tmp:
                    self.model.save(tmp)

    def get_state(self) -> dict:
        """The best so far, for a checkpoint (`keras_gen.resume`); the weights are not in it."""
        return {"monitor": self.monitor, "best": None if self.best is None else float(self.best),
                "best_epoch": self.best_epoch}

    def set_state(self, state):
        """Continue from `get_state()` (the best weights are put in `best_weights` separately)."""
        if state:
            self.best, self.best_epoch = state.get("best"), state.get("best_epoch")

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
