"""One training run from a `Recipe`: data -> model -> fit -> run folder.

A run folder holds:
  run.json            the recipe (exactly what was asked), the model config, and what came
                      out: per-epoch history, test figures, training time, versions
  model.keras         the final model (weights, optimizer state, compile config); where
                      samples can be scored (a feature network for the data), the weights of
                      the epoch with the lowest held-out FID
  checkpoints/best.keras   that best epoch's whole model
  samples/epoch_NNN.png   a fixed, seeded sample grid after every epoch (models that sample)
  checkpoints/epoch_NNN.keras   the newest whole-model checkpoints
  logs/               TensorBoard scalars and sample images
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from keras_gen import registry
from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir
from keras_gen.recipe import Recipe


def make_dataset(name, split, batch_size, seed, image_size=None, shuffle=True, download=False):
    """Batched, shuffled (seeded), prefetched `(image uint8, label)` batches of a dataset."""
    import tensorflow as tf

    from keras_gen import data

    ds = data.load(name, split, image_size=image_size, download=download)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


# The shipped feature network that scores samples of a dataset (keras_gen.metrics), by name.
FEATURE_NETWORKS = {"mnist5k": "mnist28"}


def quality_network(data_name, model):
    """The feature network that can score `model`'s samples of `data_name`, or None."""
    name = FEATURE_NETWORKS.get(data_name)
    if name is None or not model.offers("sample"):
        return None
    from keras_gen import metrics

    network = metrics.load_feature_network(name)
    return network if tuple(network.image_shape) == tuple(model.image_shape) else None


def build_model(recipe: Recipe, image_shape):
    """The recipe's model for images of `image_shape`, compiled with the recipe's arguments."""
    cls = registry.model_class(recipe.model)
    fixed = sorted({"image_shape", "precision"} & set(recipe.hparams))
    if fixed:
        raise KerasGenError(f"hparams may not set {', '.join(fixed)}: the data and the recipe's precision do")
    try:
        model = cls(image_shape=image_shape, precision=recipe.precision, **recipe.hparams)
    except (TypeError, ValueError) as exc:  # unknown or ill-typed hyper-parameters
        raise KerasGenError(f"cannot build {recipe.model} with hparams {recipe.hparams}: {exc}") from None
    try:
        model.compile(**recipe.compile)
    except (TypeError, ValueError) as exc:
        raise KerasGenError(f"cannot compile {recipe.model} with {recipe.compile}: {exc}") from None
    return model


def write_json(path, obj):
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def versions():
    import keras
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()}


def train(recipe: Recipe, out, *, grid_size=64, verbose=1, download=False, callbacks=()):
    """Train what `recipe` says and write a run folder at `out`; returns `(model, run_info)`.

    `download` lets tensorflow-datasets fetch a `tfds:` dataset that is not on disk. Models
    that evaluate (e.g. PixelCNN's bits/dim, a GAN's held-out losses) are evaluated on the
    test split after training; the figures go into run.json as `test`.
    """
    import keras
    import tensorflow as tf

    from keras_gen import data
    from keras_gen.callbacks import AtomicCheckpoint, QualityCheckpoint, SampleGrid

    recipe = recipe.resolved()
    out = ensure_writable_dir(out)
    if any(out.iterdir()):
        raise KerasGenError(f"run folder {str(out)!r} is not empty; give a new one so no earlier run is mixed in")
    keras.utils.set_random_seed(recipe.seed)

    (data_name,) = recipe.data
    train_ds = make_dataset(data_name, "train", recipe.batch_size, recipe.seed, recipe.image_size, download=download)
    shape = train_ds.element_spec[0].shape[1:]
    if not shape.is_fully_defined():
        raise KerasGenError(f"{data_name} has images of varying size {shape.as_list()}; give an image size (--image-size)")
    if int(tf.data.experimental.cardinality(train_ds)) == 0:
        raise KerasGenError(
            f"batch size {recipe.batch_size} is larger than the {data_name} training split: no full batch to train on"
        )
    model = build_model(recipe, tuple(int(d) for d in shape))
    test_ds = (
        make_dataset(data_name, "test", recipe.batch_size, recipe.seed, recipe.image_size, shuffle=False,
                     download=download)
        if model.offers("evaluate")
        else None
    )

    run_callbacks = []
    network = quality_network(data_name, model)
    if network is not None:  # first, so that val_fid reaches the other callbacks' logs
        reference, _ = data.load_arrays(data_name, "test", image_size=recipe.image_size)
        quality = QualityCheckpoint(reference, network, out / "checkpoints" / "best.keras", seed=recipe.seed)
        run_callbacks.append(quality)
    if model.offers("sample"):
        run_callbacks.append(SampleGrid(out / "samples", grid_size, recipe.seed, out / "logs" / "samples"))
    run_callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), write_graph=False),
        AtomicCheckpoint(out / "checkpoints"),
        *callbacks,
    ]
    start = time.perf_counter()
    history = model.fit(train_ds, epochs=recipe.epochs, callbacks=run_callbacks, verbose=verbose, shuffle=False)
    train_seconds = time.perf_counter() - start
    test = model.evaluate(test_ds, verbose=0, return_dict=True) if test_ds is not None else None

    with atomic_path(out / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    info = {
        "recipe": recipe.to_dict(),
        "config": model.get_config(),
        "jit_compile": bool(model.jit_compile),
        "train_seconds": round(train_seconds, 1),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "test": {k: float(v) for k, v in test.items()} if test else None,
        # The model saved is the epoch with the lowest held-out FID, where one was measured.
        "best": {"epoch": quality.best_epoch, "val_fid": float(quality.best)} if network is not None else None,
        "versions": versions(),
    }
    write_json(out / "run.json", info)
    return model, info
