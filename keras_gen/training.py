"""One training run for any registered model: data -> model -> fit -> run folder.

A run folder holds:
  run.json            what was trained (model, config, data, epochs, seed) and its history
  model.keras         the final model (weights, optimizer state, compile config)
  samples/epoch_NNN.png   a fixed, seeded sample grid after every epoch
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
from keras_gen.seeds import check_seed


def make_dataset(name, split, batch_size, seed, image_size=None, shuffle=True, download=False):
    """Batched, shuffled (seeded), prefetched `(image uint8, label)` batches of a dataset."""
    import tensorflow as tf

    from keras_gen import data

    ds = data.load(name, split, image_size=image_size, download=download)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


def build_model(model_name, image_shape, hparams=None, precision="float32"):
    cls = registry.model_class(model_name)
    try:
        return cls(image_shape=image_shape, precision=precision, **(hparams or {}))
    except (TypeError, ValueError) as exc:  # unknown or ill-typed hyper-parameters
        raise KerasGenError(f"cannot build {model_name} with hyper-parameters {hparams}: {exc}") from None


def write_json(path, obj):
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def versions():
    import keras
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()}


def train(
    model_name,
    out,
    data="mnist5k",
    epochs=None,
    batch_size=None,
    seed=0,
    hparams=None,
    image_size=None,
    precision="float32",
    jit_compile=None,
    grid_size=64,
    verbose=1,
    download=False,
):
    """Train `model_name` on `data` and write a run folder at `out`; returns `(model, run_info)`.

    `download` lets tensorflow-datasets fetch a `tfds:` dataset that is not on disk. The
    final evaluation on the test split (models that define one, e.g. PixelCNN's
    bits/dim) is recorded in run.json as `test`.
    """
    import keras
    import tensorflow as tf

    from keras_gen.callbacks import AtomicCheckpoint, SampleGrid

    spec = registry.spec(model_name)
    epochs = epochs or spec.default_epochs
    batch_size = batch_size or spec.default_batch_size
    seed = check_seed(seed)
    out = ensure_writable_dir(out)
    if any(out.iterdir()):
        raise KerasGenError(f"run folder {str(out)!r} is not empty; give a new one so no earlier run is mixed in")
    keras.utils.set_random_seed(seed)

    train_ds = make_dataset(data, "train", batch_size, seed, image_size, download=download)
    shape = train_ds.element_spec[0].shape[1:]
    if not shape.is_fully_defined():
        raise KerasGenError(f"{data} has images of varying size {shape.as_list()}; give an image size (--image-size)")
    if int(tf.data.experimental.cardinality(train_ds)) == 0:
        raise KerasGenError(f"batch size {batch_size} is larger than the {data} training split: no full batch to train on")
    image_shape = tuple(int(d) for d in shape)
    model = build_model(model_name, image_shape, hparams, precision)
    model.compile(**({} if jit_compile is None else {"jit_compile": jit_compile}))
    test_ds = (
        make_dataset(data, "test", batch_size, seed, image_size, shuffle=False, download=download)
        if model.has_test_step
        else None
    )

    callbacks = [
        SampleGrid(out / "samples", grid_size, seed, out / "logs" / "samples"),
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), write_graph=False),
        AtomicCheckpoint(out / "checkpoints"),
    ]
    start = time.perf_counter()
    history = model.fit(train_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    train_seconds = time.perf_counter() - start
    test = model.evaluate(test_ds, verbose=0, return_dict=True) if test_ds is not None else None

    with atomic_path(out / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    info = {
        "model": model_name,
        "config": model.get_config(),
        "data": data,
        "image_size": image_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "precision": precision,
        "jit_compile": bool(model.jit_compile),
        "train_seconds": round(train_seconds, 1),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "test": {k: float(v) for k, v in test.items()} if test else None,
        "versions": versions(),
    }
    write_json(out / "run.json", info)
    return model, info

