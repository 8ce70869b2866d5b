"""Callbacks of a training run: the best model by FID is the one kept."""
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
    assert quality.score()["val_fid"] == fids[best]  # the restored model scores what its epoch scored
    loaded = keras.models.load_model(tmp_path / "best.keras")
    z = model.latents(2, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.generate(z)), keras.ops.convert_to_numpy(model.generate(z)))


def test_quality_checkpoint_keeps_the_highest_value_of_a_figure_to_maximise():
    x, _ = data.load_arrays("mnist5k", "train")
    reference, _ = data.load_arrays("mnist5k", "test")
    model = DCGAN(image_shape=(28, 28, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=0)
    model.compile()
    quality = QualityCheckpoint(reference[:200], n=200, seed=0, monitor="val_coverage")
    history = model.fit(x[:128], batch_size=64, epochs=3, verbose=0, callbacks=[quality]).history
    coverage = history["val_coverage"]
    assert len(coverage) == 3 and "val_fid" in history
    assert quality.best == max(coverage) and quality.best_epoch == int(np.argmax(coverage)) + 1


def test_quality_checkpoint_refuses_an_unknown_monitor():
    import pytest

    from keras_gen.errors import KerasGenError

    with pytest.raises(KerasGenError, match="val_fid"):
        QualityCheckpoint(np.zeros((4, 28, 28, 1), np.uint8), monitor="val_accuracy")
    with pytest.raises(KerasGenError, match="one of fid, kid, "):
        QualityCheckpoint(np.zeros((4, 28, 28, 1), np.uint8), monitor="val_fid", prefix="")
    with pytest.raises(KerasGenError, match="prefix"):
        QualityCheckpoint(np.zeros((4, 28, 28, 1), np.uint8), prefix="test_")
    # The monitor with or without the prefix, logged with it.
    for monitor in ("coverage", "val_coverage"):
        assert QualityCheckpoint(np.zeros((4, 28, 28, 1), np.uint8), monitor=monitor).monitor == "val_coverage"


def test_epoch_lines_are_plain_text_with_every_logged_figure():
    import io

    from keras_gen.callbacks import EpochLine

    stream = io.StringIO()
    line = EpochLine(stream=stream)
    line.set_params({"epochs": 12})
    line.on_epoch_begin(0)
    line.on_epoch_end(0, {"loss": np.float32(0.5), "d_loss": -1.2345678, "val_fid": 123.456789, "x": float("nan")})
    (text,) = stream.getvalue().splitlines()
    assert text.startswith("epoch 1/12 - loss 0.5 - d_loss -1.2346 - val_fid 123.46 - x nan - ")
    assert text.endswith(" s") and "\x1b" not in text and "\r" not in text


def test_sample_images_are_on_the_steps_of_the_epoch_scalars(tmp_path):
    """Keras' TensorBoard callback logs epoch e's scalars at step e (from 0): so do the grids."""
    import tensorflow as tf

    from keras_gen.callbacks import SampleGrid

    def steps(folder, plugin):
        found = {}
        for path in folder.glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == plugin:
                        found.setdefault(value.tag, set()).add(event.step)
        return found

    x, _ = data.load_arrays("digits", "train")
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8,), discriminator_widths=(8,), seed=0)
    model.compile()
    callbacks = [SampleGrid(tmp_path / "samples", 4, 0, tmp_path / "logs" / "samples"),
                 keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"), write_graph=False)]
    model.fit(x[:128], batch_size=64, epochs=3, verbose=0, callbacks=callbacks)
    scalars = steps(tmp_path / "logs" / "train", "scalars")
    images = steps(tmp_path / "logs" / "samples", "images")
    assert scalars["epoch_loss"] == {0, 1, 2} and images == {"samples": {0, 1, 2}}
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]


def test_a_conditional_models_epoch_grids_name_each_rows_class(tmp_path):
    from PIL import Image

    from keras_gen.callbacks import SampleGrid
    from keras_gen.images import sample_grid
    from keras_gen.models import CGAN

    model = CGAN(image_shape=(8, 8, 1), num_classes=3, latent_dim=4, generator_widths=(8,),
                 discriminator_widths=(8,), seed=0)
    model.compile()
    x, y = data.load_arrays("digits", "train")
    keep = y < 3
    model.fit(x[keep][:64], y[keep][:64], batch_size=32, epochs=1, verbose=0,
              callbacks=[SampleGrid(tmp_path, 6, 0)])
    grid = np.asarray(Image.open(tmp_path / "epoch_001.png"))
    np.testing.assert_array_equal(grid, sample_grid(model, 6, 0, label_rows=True)[..., 0])
    assert grid.shape[1] > sample_grid(model, 6, 0).shape[1]  # the margin of class numbers


def test_a_model_that_samples_slowly_draws_its_grid_after_the_last_epoch_only(tmp_path):
    """Training gives `SampleGrid(last_only=True)` to models without fast sampling (an
    autoregressive model without a cached sampler: one network pass per sub-pixel)."""
    from keras_gen import training
    from keras_gen.models.pixelcnn import PixelCNN
    from keras_gen.models.pixelcnnpp import PixelCNNPlusPlus
    from keras_gen.models.pixelrnn import PixelRNN
    from keras_gen.recipe import Recipe

    assert PixelCNN(image_shape=(8, 8, 1), filters=4, num_layers=1).samples_fast
    # PixelCNN++ samples fast when its height and width are multiples of 4 (its strides).
    assert PixelCNNPlusPlus(image_shape=(8, 8, 1), filters=4, num_mixtures=2).samples_fast
    assert not PixelCNNPlusPlus(image_shape=(6, 8, 1), filters=4, num_mixtures=2).samples_fast
    assert PixelRNN(image_shape=(8, 8, 1), hidden_size=4, num_layers=1).samples_fast
    assert PixelRNN(image_shape=(8, 8, 1), hidden_size=4, num_layers=1, rnn="diagonal_bilstm").samples_fast
    assert DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8,), discriminator_widths=(8,)).samples_fast
    recipe = Recipe("pixelcnn++", data="digits", image_size=6, epochs=3, batch_size=512,
                    hparams={"filters": 4, "num_mixtures": 2, "blocks_per_resolution": 0})
    training.train(recipe, tmp_path / "run", grid_size=4, verbose=0)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["epoch_003.png"]


def test_atomic_checkpoints_hold_what_a_resumed_run_needs(tmp_path):
    """Each epoch_NNN.keras gets an epoch_NNN.json: the epoch, every noise generator's state,
    the history so far and the best epoch; the best epoch's model is copied to best.keras."""
    import json

    from keras_gen import resume
    from keras_gen.callbacks import AtomicCheckpoint

    x, _ = data.load_arrays("mnist5k", "train")
    reference, _ = data.load_arrays("mnist5k", "test")
    model = DCGAN(image_shape=(28, 28, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=0)
    model.compile()
    quality = QualityCheckpoint(reference[:200], n=200, seed=0)
    folder = tmp_path / "checkpoints"
    checkpoint = AtomicCheckpoint(folder, quality=quality, best_path=folder / "best.keras")
    history = model.fit(x[:128], batch_size=64, epochs=3, verbose=0, callbacks=[quality, checkpoint]).history
    assert resume.complete_checkpoints(folder) == [2, 3] and (folder / "best.keras").is_file()
    state = json.loads((folder / "epoch_003.json").read_text())
    assert state["epoch"] == 3 and state["history"] == {k: [float(v) for v in vs] for k, vs in history.items()}
    assert state["noise"] == resume.noise_state(model) and set(state["noise"]) == {"seed_generator", "eval_seed_generator"}
    assert state["noise"]["seed_generator"] != [0, 0] and state["precision"] == model.precision
    assert state["quality"] == {"monitor": "val_fid", "best": quality.best, "best_epoch": quality.best_epoch}
    best = keras.models.load_model(folder / "best.keras")
    for a, b in zip(best.get_weights(), quality.best_weights):
        np.testing.assert_array_equal(a, b)
    fresh = QualityCheckpoint(reference[:10], n=10)
    fresh.set_state(state["quality"])
    assert (fresh.best, fresh.best_epoch) == (quality.best, quality.best_epoch)
