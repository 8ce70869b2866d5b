"""Callbacks that every keras-gen training run uses: sample grids and atomic checkpoints."""
from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from keras_gen.files import atomic_path
from keras_gen.images import sample_grid, save_png


class SampleGrid(keras.callbacks.Callback):
    """After each epoch, sample a fixed, seeded grid and write `epoch_NNN.png`.

    The same seed every epoch makes epochs comparable (the same latents for a GAN, the same
    per-pixel random streams for an autoregressive model). With `log_dir`, the grid also
    goes to TensorBoard as an image summary (Keras' TensorBoard callback logs none).
    """

    def __init__(self, out_dir, n=64, seed=0, log_dir=None):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.n = n
        self.seed = seed
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        grid = sample_grid(self.model, self.n, self.seed)
        save_png(self.out_dir / f"epoch_{epoch + 1:03d}.png", grid)
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self.writer.flush()


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (weights, both optimizers' state, config) after each epoch.

    Written to a temporary name and renamed, so a crash never leaves a half-written
    checkpoint; only the newest `keep` are kept.
    """

    def __init__(self, out_dir, keep=2):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.keep = keep
        self.written = []  # only what this callback wrote is ever deleted

    def on_epoch_end(self, epoch, logs=None):
        path = self.out_dir / f"epoch_{epoch + 1:03d}.keras"
        with atomic_path(path, suffix=".keras") as tmp:
            self.model.save(tmp)
        self.written.append(path)
        while len(self.written) > self.keep:
            self.written.pop(0).unlink(missing_ok=True)


class QualityCheckpoint(keras.callbacks.Callback):
    """Score samples against held-out images every `every` epochs and keep the best model.

    After each scored epoch it draws `n` seeded samples, computes their FID (and the number
    of classes they cover) against the held-out `reference` images in the feature space of a
    shipped feature network (`keras_gen.metrics`), and adds `val_fid` and
    `val_classes_covered` to the epoch's logs (so History, TensorBoard and any other callback
    see them). The best model so far (lowest FID) is written to `path` (atomically) and its
    weights are put back into the model when training ends: GANs peak and then degrade, so
    the run keeps its best epoch, not its last.

    Args:
      reference: uint8 held-out images `[N, H, W, C]` (e.g. the test split).
      network: a feature network name (e.g. "mnist28") or a loaded `FeatureNetwork`.
      path: where the best model goes (`.keras`); None keeps it in memory only.
      n, seed: how many samples, drawn with which seed (the same every time).
      every: score every this many epochs (and always after the last).
      restore_best: put the best weights back at the end of training.
    """

    def __init__(self, reference, network="mnist28", path=None, n=1000, seed=0, every=1, restore_best=True):
        super().__init__()
        from keras_gen import metrics

        self.network = metrics.load_feature_network(network) if isinstance(network, str) else network
        self.reference_features, self.reference_classes = self.network.features_and_classes(reference)
        self.path = Path(path) if path else None
        self.n, self.seed, self.every, self.restore_best = n, seed, every, restore_best
        self.best, self.best_epoch, self.best_weights = None, None, None

    def score(self):
        """`(fid, classes_covered)` of the model's seeded samples against the reference."""
        from keras_gen import metrics
        from keras_gen.images import to_uint8

        samples = to_uint8(keras.ops.convert_to_numpy(self.model.sample(self.n, self.seed)))
        features, classes = self.network.features_and_classes(samples)
        coverage = metrics.class_coverage(classes, self.reference_classes, classes.shape[1])
        return metrics.fid(features, self.reference_features), coverage.classes_covered

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") == epoch + 1
        if (epoch + 1) % self.every and not last:
            return
        fid, covered = self.score()
        if logs is not None:
            logs["val_fid"], logs["val_classes_covered"] = fid, covered
        if self.best is None or fid < self.best:
            self.best, self.best_epoch = fid, epoch + 1
            self.best_weights = self.model.get_weights()
            if self.path is not None:
                with atomic_path(self.path, suffix=".keras") as tmp:
                    self.model.save(tmp)

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
