"""Callbacks of a training run: the best model by held-out FID is the one kept."""
import keras
import numpy as np

from keras_gen import data
from keras_gen.callbacks import QualityCheckpoint
from keras_gen.models import DCGAN


def test_quality_checkpoint_logs_fid_and_keeps_the_best_epoch(tmp_path):
    x, _ = data.load_arrays("mnist5k", "train")
    reference, _ = data.load_arrays("mnist5k", "test")
    model = DCGAN(image_shape=(28, 28, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=0)
    model.compile()
    quality = QualityCheckpoint(reference[:300], path=tmp_path / "best.keras", n=300, seed=0)

    class KeepWeights(keras.callbacks.Callback):  # runs after QualityCheckpoint in each epoch
        weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append(self.model.get_weights())

    history = model.fit(x[:256], batch_size=64, epochs=3, verbose=0, callbacks=[quality, KeepWeights()]).history
    fids = history["val_fid"]
    assert len(fids) == 3 and all(f > 0 for f in fids) and all(1 <= c <= 10 for c in history["val_classes_covered"])
    best = int(np.argmin(fids))
    assert quality.best_epoch == best + 1 and quality.best == fids[best]
    for restored, kept in zip(model.get_weights(), KeepWeights.weights[best]):
        np.testing.assert_array_equal(restored, kept)
    assert quality.score()[0] == fids[best]  # the restored model scores what its epoch scored
    loaded = keras.models.load_model(tmp_path / "best.keras")
    z = model.latents(2, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.generate(z)), keras.ops.convert_to_numpy(model.generate(z)))
