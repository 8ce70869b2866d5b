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
