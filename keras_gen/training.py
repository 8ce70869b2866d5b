"""One training run from a `Recipe`: data -> model -> fit -> run folder.

A run folder holds:
  recipe.json         the recipe, written first: what `train(..., resume=True)` continues
  run.json            the recipe (exactly what was asked), the model config, and what came
                      out: per-epoch history, test figures, training time, versions
  model.keras         the final model (weights, optimizer state, compile config); where
                      samples can be scored (a feature network for the data), the weights of
                      the epoch whose samples had the lowest FID against the training split
  checkpoints/best.keras   that best epoch's whole model
  samples/epoch_NNN.png   a fixed, seeded sample grid after every epoch (models that sample)
  checkpoints/epoch_NNN.keras   the newest whole-model checkpoints, each followed by
                      epoch_NNN.json: the noise generators' state, history, best epoch
                      (`keras_gen.resume`)
  logs/               TensorBoard scalars and sample images
"""
from __future__ import annotations

import contextlib
import inspect
import json
import platform
import sys
from pathlib import Path

from keras_gen import registry
from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir, missing_folders, remove_empty_folders
from keras_gen.recipe import Recipe
from keras_gen.text import count


SHUFFLE_BUFFER = 10_000
# The graph-level half of tf.data's seed pair for the per-epoch shuffles: fixed, so the
# order does not depend on TensorFlow's global seed (any nonzero constant would do).
DATA_ORDER_SEED = 1729


def make_dataset(name, split, batch_size, seed, image_size=None, shuffle=True, download=False, epochs=1,
                 first_epoch=0):
    """Batched, prefetched `(image uint8, label)` batches of a dataset.

    With `shuffle` (training): the full batches of epochs `first_epoch` .. `first_epoch +
    epochs - 1`, one epoch after another (fit it with `steps_per_epoch =` the split's size
    // `batch_size`). Epoch e reads the split in its own order: `Dataset.shuffle` (buffer
    `SHUFFLE_BUFFER`) with the seed pair `(DATA_ORDER_SEED, seed * 1_000_003 + e)`, a pure
    function of the seed and the epoch's index, not of how many epochs this process has
    iterated nor of TensorFlow's global seed, so a run resumed at epoch k reads exactly the
    batches the uninterrupted run read from epoch k on. Without `shuffle`: the split in its
    order, the last batch possibly smaller.
    """
    import tensorflow as tf

    from keras_gen import data

    ds = data.load(name, split, image_size=image_size, download=download)
    if not shuffle:
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)  # autotuning off since `data.load`
    steps = _split_size(ds) // batch_size

    def one_epoch(epoch):
        return _in_epoch_order(ds, seed, epoch).batch(batch_size, drop_remainder=True)

    return _epochs(one_epoch, first_epoch, epochs, steps)


def check_replica_batches(splits, batch_size, replicas, download=False):
    """Under `replicas` > 1 every batch must give each replica at least one image (a replica's
    step on no images divides by zero: its means are not defined). `splits`: `(name, split,
    image_size)` of each split read in batches, the last batch of an evaluated one possibly
    smaller. A one-line error before training, with a batch size that works, instead of a
    failure inside the first evaluation after an epoch's work."""
    from keras_gen import data

    if replicas <= 1:
        return
    if batch_size < replicas:
        raise KerasGenError(f"a batch of {count(batch_size, 'image')} cannot give each of the {replicas} replicas one; "
                            f"give a --batch-size of at least {replicas}")
    sizes = {(name, split): _split_size(data.load(name, split, image_size=image_size, download=download))
             for name, split, image_size in splits}

    def fits(b):
        return all(size % b == 0 or size % b >= replicas for size in sizes.values())

    for (name, split), size in sizes.items():
        last = size % batch_size
        if 0 < last < replicas:
            near = [b for d in range(1, batch_size) for b in (batch_size - d, batch_size + d) if b >= replicas]
            better = next((b for b in near if fits(b)), None)
            hint = f" (e.g. {better})" if better else ""
            raise KerasGenError(
                f"the {name} {split} split ({size:,} images) ends in a batch of {last} at batch size {batch_size}, "
                f"fewer than the {replicas} replicas, so one would get no image; give a --batch-size that leaves a "
                f"last batch of none or at least {replicas}{hint}")


def _split_size(ds) -> int:
    """The number of examples of a split (counted once where its cardinality is unknown, as
    for some tfds datasets)."""
    import tensorflow as tf

    size = int(ds.cardinality())
    if size < 0:
        size = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return size


def _in_epoch_order(ds, seed, epoch, offset=0, reshuffle=False):
    """`ds` shuffled in epoch `epoch`'s order: the seed pair `(DATA_ORDER_SEED, seed *
    1_000_003 + epoch + offset)`, a pure function of the run's seed and the epoch's index
    (called inside `_epochs`' `flat_map`, where `epoch` is a tensor)."""
    import tensorflow as tf

    tf.compat.v1.get_default_graph().seed = DATA_ORDER_SEED  # this function's graph only
    order_seed = tf.constant(seed, tf.int64) * 1_000_003 + epoch + offset
    return ds.shuffle(SHUFFLE_BUFFER, seed=order_seed, reshuffle_each_iteration=reshuffle)


def _epochs(one_epoch, first_epoch, epochs, steps):
    """Epochs `first_epoch` .. `first_epoch + epochs - 1` of `one_epoch(epoch)` (a dataset of
    `steps` batches each) one after another, prefetched."""
    import tensorflow as tf

    from keras_gen.data import without_autotune

    epochs_ds = tf.data.Dataset.range(first_epoch, first_epoch + epochs).flat_map(one_epoch)
    # The options of the datasets inside `flat_map` do not reach this pipeline's iterator.
    return without_autotune(epochs_ds.apply(tf.data.experimental.assert_cardinality(epochs * steps))
                            .prefetch(tf.data.AUTOTUNE))


def selection_seed(seed: int) -> int:
    """The seed of the samples that pick a GAN run's best epoch: the next one after the run's
    (wrapping), so that `evaluate` at the run's seed scores other samples than those chosen."""
    from keras_gen.seeds import MAX_SEED

    return (seed + 1) % (MAX_SEED + 1)


def quality_network(data_name, model):
    """The shipped feature network that scores `model`'s samples of `data_name` after every
    epoch, or None: a model that does not sample, data no shipped network reads (see
    `keras_gen.metrics.network_name_for`), or a likelihood model, whose held-out figure is its
    exact bits/dim (`evaluate` after training) and whose 1,000 samples an epoch would cost
    more than the epoch."""
    if not model.offers("sample") or model.offers("log_prob"):
        return None
    from keras_gen import metrics

    try:
        return metrics.network_for(data_name, model.image_shape)
    except KerasGenError:
        return None


def build_model(recipe: Recipe, image_shape, steps_per_epoch=None):
    """The recipe's model for images of `image_shape`, compiled with the recipe's arguments.

    Given `steps_per_epoch`, and unless the recipe sets `compile.steps_per_execution`, the
    model runs `hardware.steps_per_execution_for(steps_per_epoch)` training steps per call of
    its compiled train function (a divisor of the epoch, at most 16): the same weights, bit
    for bit, without Keras' return to Python after every step. It is the run's setting, not
    the model's: it is not stored in the model's compile config."""
    cls = registry.model_class(recipe.model)
    fixed = sorted({"image_shape", "precision", "seed", "name"} & set(recipe.hparams))
    if fixed:
        raise KerasGenError(
            f"hparams may not set {', '.join(fixed)}: the data and the recipe's precision, seed and model name do"
        )
    # The model is named as the recipe names it, and a model that draws noise takes the
    # recipe's seed, so its config (in run.json and model.keras) says what the run used.
    own = {"name": recipe.model, **({"seed": recipe.seed} if "seed" in inspect.signature(cls).parameters else {})}
    try:
        model = cls(image_shape=image_shape, precision=recipe.precision, **own, **recipe.hparams)
    except (TypeError, ValueError) as exc:  # unknown or ill-typed hyper-parameters
        raise KerasGenError(f"cannot build {recipe.model} with hparams {recipe.hparams}: {exc}") from None
    try:
        model.compile(**recipe.compile)
    except (TypeError, ValueError) as exc:
        raise KerasGenError(f"cannot compile {recipe.model} with {recipe.compile}: {exc}") from None
    if steps_per_epoch and "steps_per_execution" not in recipe.compile:
        from keras_gen.hardware import steps_per_execution_for

        model.steps_per_execution = steps_per_execution_for(steps_per_epoch)
    return model


def write_json(path, obj):
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def versions():
    import keras
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()}


# `train(verbose=...)`: nothing, Keras' progress bar, one line per epoch, or 1 on a terminal and 2 elsewhere.
VERBOSITY = (0, 1, 2, "auto")


def train(recipe: Recipe | None, out, *, grid_size=64, verbose="auto", download=False, callbacks=(),
          resume=False, strategy=None):
    """Train what `recipe` says and write a run folder at `out`; returns `(model, run_info)`.

    `download` lets tensorflow-datasets fetch a `tfds:` dataset that is not on disk. Models
    that evaluate (e.g. PixelCNN's bits/dim, a GAN's held-out losses) are evaluated on the
    test split after training; the figures go into run.json as `test`.

    `verbose`: 0 prints nothing, 1 Keras' progress bar, 2 one plain line per epoch (epoch n/N,
    the logged figures, seconds); "auto" (default) is 1 when stdout is a terminal and 2
    otherwise, so a piped or logged run never gets the bar's escape sequences.

    run.json holds the recipe exactly as asked (`precision` may be "auto") beside what it
    became on this machine: the model's config (its `precision`, "float32" or
    "mixed_bfloat16"; its `seed` and `name`, the recipe's), `precision`, `jit_compile` and
    the CPU.

    Faults (`keras_gen.resume`):
    - `resume=True` continues the run in `out` (killed, interrupted or failed) from its
      newest complete checkpoint, with the run's own recipe (`recipe` may be None; a
      different one is refused). It ends exactly as the uninterrupted run would have: same
      weights, sample grids and run.json but for the seconds.
    - SIGINT (Ctrl-C) stops at the next batch end (or after the epoch's checkpoint, if it
      comes during one) and raises `keras_gen.resume.TrainingInterrupted` naming the newest
      checkpoint; a second SIGINT interrupts at once.
    - A NaN or infinite loss stops training at once (`keras_gen.resume.NonFiniteLoss`, a
      `KerasGenError` naming the epoch and step); the last good checkpoint becomes the run's
      model.keras and run.json says where it stopped.
    - A run that fails before its first checkpoint removes the run folder it made.
    `keras.callbacks.BackupAndRestore` is refused in `callbacks` (it restores neither the
    noise generators nor the data order; see `keras_gen.resume`).

    `strategy`: None (one device), "mirrored" (`MirroredStrategy`: every GPU of this machine)
    or "multiworker" (`MultiWorkerMirroredStrategy`, one process per machine with its own
    `TF_CONFIG`); see `keras_gen.distribute`. The recipe's batch size is the global batch,
    split between the replicas, and a step computes what the one-device step computes on it
    (up to float rounding), so a recipe means the same run on any number of devices. Under
    "multiworker" the chief (worker 0) writes the run folder `out`; the other workers write
    theirs to a temporary folder that is removed at the end. run.json records the strategy
    and the number of replicas.
    """
    import keras

    from keras_gen import resume as resume_lib

    if verbose not in VERBOSITY:
        raise KerasGenError(f"verbose must be one of {', '.join(map(repr, VERBOSITY))}, got {verbose!r}")
    if verbose == "auto":
        verbose = 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2
    if any(isinstance(c, keras.callbacks.BackupAndRestore) for c in callbacks):
        raise KerasGenError("BackupAndRestore cannot resume a keras-gen run exactly (noise state, data order); "
                            "use train(..., resume=True) or keras-gen train --resume DIR")
    if strategy is not None:
        from keras_gen import distribute

        if strategy not in distribute.STRATEGIES:
            raise KerasGenError(f"strategy must be one of {', '.join(distribute.STRATEGIES)} or None, got {strategy!r}")
        if strategy == "multiworker" and resume:
            raise KerasGenError("--resume with --strategy multiworker is not supported yet: resume the run with "
                                "one worker (--strategy mirrored or none)")
        if strategy == "multiworker" and not distribute.is_chief():
            return _train_as_worker(recipe, out, grid_size=grid_size, download=download, callbacks=callbacks)
        # The CPU's logical devices can only be made before TensorFlow starts, which reading
        # a resumed run's checkpoint does: a resumed 2-replica run went on with 1.
        distribute.cpu_replica_devices()
    with contextlib.ExitStack() as held:
        if resume:
            if str(out) and Path(out).is_dir():  # else `prepare` says there is none
                held.enter_context(resume_lib.run_lock(out))  # before `prepare` tidies the folder
            recipe, first_epoch, state = resume_lib.prepare(out, recipe)
            out, made = Path(out), []
        else:
            if recipe is None:
                raise KerasGenError("give a recipe to train (or resume=True and a run folder)")
            recipe = recipe.resolved()
            made = missing_folders(out)
            out = ensure_writable_dir(out)
            if any(p.name != resume_lib.LOCK for p in out.iterdir()):  # a killed run's lock alone: empty
                raise KerasGenError(f"run folder {str(out)!r} is not empty; give a new one so no earlier run is "
                                    "mixed in")
            held.enter_context(resume_lib.run_lock(out))
            first_epoch, state = 0, None
        return _train_in_folder(recipe, out, made, first_epoch, state, resume, grid_size=grid_size,
                                verbose=verbose, download=download, callbacks=callbacks, strategy=strategy)


def _train_in_folder(recipe, out, made, first_epoch, state, resume, *, grid_size, verbose, download, callbacks,
                     strategy):
    """`_train` in the run folder `out`, held by this process; a failure leaves the newest
    checkpoint (or, for a new run without one, no folder) and a one-line error."""
    from keras_gen import resume as resume_lib

    checkpoints = out / "checkpoints"
    try:
        if not (out / resume_lib.RECIPE).is_file():
            write_json(out / resume_lib.RECIPE, recipe.to_dict())
        return _train(recipe, out, first_epoch, state, grid_size=grid_size, verbose=verbose, download=download,
                      callbacks=callbacks, strategy=strategy)
    except resume_lib.TrainingInterrupted as exc:
        newest = resume_lib.newest_checkpoint(checkpoints)
        epochs = getattr(exc, "epochs", None) or recipe.epochs  # ADDA: both stages' epochs
        where = f"interrupted in epoch {getattr(exc, 'epoch', '?')} of {epochs}"
        if getattr(exc, "finished", False):
            where = f"interrupted after epoch {exc.epoch} of {epochs}"
        if newest is None and resume:
            raise resume_lib.TrainingInterrupted(
                f"{where}, before the first checkpoint; keras-gen train --resume {out} starts it again") from None
        if newest is None:
            _remove_run(out, made)
            raise resume_lib.TrainingInterrupted(f"{where}, before the first checkpoint; nothing was kept") from None
        raise resume_lib.TrainingInterrupted(
            f"{where}; the newest checkpoint is {newest}; resume with keras-gen train --resume {out}") from None
    except OSError as exc:  # a full disk, a folder that went away: every write was atomic
        newest = resume_lib.newest_checkpoint(checkpoints)
        if not resume and newest is None:
            _remove_run(out, made)
        what = f"{exc.strerror or exc}" + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")
        kept = (f"the newest checkpoint is {newest}; make room and resume with keras-gen train --resume {out}"
                if newest is not None else "nothing was kept")
        raise KerasGenError(f"training stopped, a file could not be written: {what}; {kept}") from None
    except BaseException:
        if not resume and not resume_lib.complete_checkpoints(checkpoints):
            _remove_run(out, made)
        raise


def _train_as_worker(recipe, out, *, grid_size, download, callbacks):
    """A multi-worker worker other than the chief: the same steps (every worker takes part
    in every all-reduce), its files in a temporary folder that is removed at the end."""
    import shutil
    import tempfile

    if recipe is None:
        raise KerasGenError("give a recipe to train")
    scratch = Path(tempfile.mkdtemp(prefix="keras-gen-worker-"))
    try:
        return _train(recipe.resolved(), scratch, 0, None, grid_size=grid_size, verbose=0, download=download,
                      callbacks=callbacks, strategy="multiworker")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_run(out, made):
    """A failed new run leaves nothing: the run folder and the parents it made (`made`,
    deepest first) go, if still empty; a folder that existed (empty) is emptied again."""
    import shutil

    if not made:
        for path in Path(out).iterdir():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return
    shutil.rmtree(out, ignore_errors=True)
    remove_empty_folders(made[1:])


def _train(recipe, out, first_epoch, state, *, grid_size, verbose, download, callbacks, strategy=None):
    import keras
    import tensorflow as tf

    from keras_gen import data, distribute
    from keras_gen import resume as resume_lib
    from keras_gen.callbacks import (AtomicCheckpoint, EpochLine, QualityCheckpoint, SampleGrid, StopOnNonFinite,
                                     StopOnRequest)

    # First: a strategy sets up its devices before TensorFlow runs anything.
    devices = distribute.strategy(strategy)
    keras.utils.set_random_seed(recipe.seed)

    if len(recipe.data) == 2:  # domain adaptation: a source and a target (registry data_roles)
        return _train_domains(recipe, out, first_epoch, state, devices, verbose=verbose, download=download,
                              callbacks=callbacks, strategy=strategy)
    (data_name,) = recipe.data
    remaining = max(1, recipe.epochs - first_epoch)  # 0 left: the run died after its last epoch
    train_ds = make_dataset(data_name, "train", recipe.batch_size, recipe.seed, recipe.image_size, download=download,
                            epochs=remaining, first_epoch=first_epoch)
    shape = train_ds.element_spec[0].shape[1:]
    if not shape.is_fully_defined():
        raise KerasGenError(f"{data_name} has images of varying size {shape.as_list()}; give an image size (--image-size)")
    steps = int(tf.data.experimental.cardinality(train_ds)) // remaining
    if steps == 0:
        raise KerasGenError(
            f"batch size {recipe.batch_size} is larger than the {data_name} training split: no full batch to train on"
        )
    # Models and their optimizers are built (eagerly) in the strategy's scope: their
    # variables are mirrored, and Keras 3.14-3.15.1 cannot trace a custom train_step with an
    # optimizer built later (keras issue 23085).
    # Several steps per call on one device only: under tf.distribute, Keras 3.15.1's
    # multi-step loop fails to trace a keras-gen step (a captured placeholder in `has_next`).
    with devices.scope():
        model = build_model(recipe, tuple(int(d) for d in shape), steps_per_epoch=steps if strategy is None else None)
    check_replica_batches([(data_name, "test", recipe.image_size)] if model.offers("evaluate") else [],
                          recipe.batch_size, int(devices.num_replicas_in_sync), download)
    test_ds = (
        make_dataset(data_name, "test", recipe.batch_size, recipe.seed, recipe.image_size, shuffle=False,
                     download=download)
        if model.offers("evaluate")
        else None
    )

    checkpoints = out / "checkpoints"
    best_path = checkpoints / "best.keras"
    quality = None
    run_callbacks = [StopOnNonFinite()]
    network = quality_network(data_name, model)
    if network is not None:  # first, so that its fid reaches the other callbacks' logs
        # The epoch is picked by the FID of the training split, from samples of another seed than
        # the run's: the test split and the run's seed stay for the figures reported, which a
        # choice of the lowest of many epochs would bias low.
        reference, _ = data.load_arrays(data_name, "train", image_size=recipe.image_size)
        # The best model goes to best.keras by AtomicCheckpoint, once the epoch's checkpoint is complete.
        quality = QualityCheckpoint(reference, network, None, seed=selection_seed(recipe.seed), prefix="")
        run_callbacks.append(quality)
    if first_epoch:
        resume_lib.restore(model, checkpoints, first_epoch, state, quality, best_path)
        if verbose:
            print(f"resuming {out} after epoch {first_epoch} of {recipe.epochs}", flush=True)
    if model.offers("sample"):
        run_callbacks.append(SampleGrid(out / "samples", grid_size, recipe.seed, out / "logs" / "samples",
                                        last_only=not model.samples_fast))
    checkpoint = AtomicCheckpoint(checkpoints, quality=quality, best_path=best_path, resumed=state,
                                  user_callbacks=callbacks)
    request = resume_lib.StopRequest()
    run_callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), write_graph=False),
        *callbacks,
        # A resumed run's own callbacks get back their state (EarlyStopping's patience so far).
        *([resume_lib.restoring_callback(list(callbacks), state.get("callbacks"))] if first_epoch else []),
        checkpoint,  # after every callback that adds to the logs, so the checkpoint's history has it all
    ]
    if verbose == 2:  # after the checkpoint, so its line holds what the other callbacks logged (fid)
        run_callbacks.append(EpochLine())
    run_callbacks.append(StopOnRequest(request))  # last: stops after the epoch's checkpoint and line
    # SIGINT is a request until the run folder is whole: after fit, the short rest is finished.
    with request.installed():
        try:
            model.fit(train_ds, epochs=recipe.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
                      callbacks=run_callbacks, verbose=1 if verbose == 1 else 0, shuffle=False)
        except resume_lib.NonFiniteLoss as exc:
            raise _keep_last_good(exc, recipe, out, model, checkpoint, strategy) from None
        train_seconds = checkpoint.train_seconds()
        test = model.evaluate(test_ds, verbose=0, return_dict=True) if test_ds is not None else None

        with atomic_path(out / "model.keras", suffix=".keras") as tmp:
            model.save(tmp)
        info = {
            **_run_facts(recipe, model),
            "strategy": {"name": strategy, "replicas": int(devices.num_replicas_in_sync)},
            "train_seconds": round(train_seconds, 1),
            # Every epoch's logs, from the first epoch of the run (also when it was resumed).
            "history": checkpoint.history,
            "test": {k: float(v) for k, v in test.items()} if test else None,
            # The model saved is the epoch with the lowest training-split FID, where one was measured.
            "best": {"epoch": quality.best_epoch, quality.monitor: float(quality.best)} if quality is not None else None,
            "versions": versions(),
        }
        write_json(out / "run.json", info)
    return model, info


# The target's order of epoch e is drawn with the source's seed for e plus this: never the
# source's own order (mnistm5k holds mnist5k's digits, in the same split: equal orders would
# pair each source image with its own target version, which unpaired adaptation must not see).
TARGET_ORDER_OFFSET = 500_001


def make_domain_dataset(source, target, batch_size, seed, image_size=None, download=False, epochs=1,
                        first_epoch=0):
    """`(source image, source label, target image)` batches for domain adaptation, the target's
    labels left out: the full batches of epochs `first_epoch` .. `first_epoch + epochs - 1`.

    Epoch e reads the source's train split in the order `make_dataset` gives it, and beside each
    batch a batch of target train images from the target's own order for that epoch (seed
    offset by `TARGET_ORDER_OFFSET`; the target is cycled, reshuffled, when it is smaller), so an
    epoch is one pass over the source, and both orders are pure functions of the seed and the
    epoch (a resumed run reads the same batches). Returns `(dataset, steps per epoch)`.
    """
    import tensorflow as tf

    from keras_gen import data

    source_ds = data.load(source, "train", image_size=image_size, download=download)
    target_ds = data.load(target, "train", image_size=image_size, download=download).map(lambda image, _: image)
    steps = _split_size(source_ds) // batch_size

    def one_epoch(epoch):
        sources = _in_epoch_order(source_ds, seed, epoch).batch(batch_size, drop_remainder=True)
        targets = _in_epoch_order(target_ds, seed, epoch, offset=TARGET_ORDER_OFFSET, reshuffle=True)
        targets = targets.repeat().batch(batch_size, drop_remainder=True)
        return tf.data.Dataset.zip(sources, targets.take(steps)).map(lambda pair, images: (pair[0], pair[1], images))

    return _epochs(one_epoch, first_epoch, epochs, steps), steps


def pair_image_size(source, target, image_size=None):
    """The image size a pair of domains trains at: `image_size` when given; else, when their
    sizes differ and just one of them has a size of its own (mnist5k, mnistm5k and
    syndigits5k are 28x28 only; digits is 8x8 unless resized), that size, to which the other
    is resized; else None (each its own size)."""
    from keras_gen import data
    from keras_gen.data.loaders import FIXED_SIZES

    if image_size is not None:
        return image_size
    if data.image_shape(source)[:2] == data.image_shape(target)[:2]:
        return None
    fixed = [FIXED_SIZES[name] for name in (source, target) if name in FIXED_SIZES]
    return fixed[0] if len(fixed) == 1 else None


def _train_domains(recipe, out, first_epoch, state, devices, *, verbose, download, callbacks, strategy):
    """A domain-adaptation run (`keras_gen.models.domain_adaptation`; recipe.data = (source,
    target)). The model's `TRAINING_DATA` says what it trains on: labelled source pairs
    (source-only, ADDA's stage 1), labelled target pairs (the oracle), or labelled source pairs
    zipped with target images WITHOUT their labels (DANN, ADDA's stage 2;
    `make_domain_dataset`). The model's `image_shape` is the target's; source images of the
    other channel count are converted inside the model. After every epoch the run evaluates on
    the source's test split (`val_accuracy`: source validation, never target labels); it keeps
    the last epoch. After training: `test` in run.json = the target's test split (its labels
    used here only). ADDA runs its stages in one fit each, epochs numbered on (stage 1:
    hparam `source_epochs`, stage 2: the recipe's epochs), writes stage1.keras and stage2.keras
    as each ends, and model.keras in stage 3."""
    import keras
    import tensorflow as tf

    from keras_gen import data
    from keras_gen import resume as resume_lib
    from keras_gen.callbacks import AtomicCheckpoint, EpochLine, StopOnNonFinite, StopOnRequest

    source, target = recipe.data
    image_size = pair_image_size(source, target, recipe.image_size)
    source_shape = data.image_shape(source, image_size)
    target_shape = data.image_shape(target, image_size)
    if source_shape[:2] != target_shape[:2]:
        raise KerasGenError(
            f"the source {source} has {source_shape[0]}x{source_shape[1]} images and the target {target} "
            f"{target_shape[0]}x{target_shape[1]}: give an image size both take (--image-size)")
    if source_shape[2] != target_shape[2] and {source_shape[2], target_shape[2]} != {1, 3}:
        raise KerasGenError(f"the source {source} has {source_shape[2]} channels and the target {target} "
                            f"{target_shape[2]}: only grey and RGB convert into each other")
    # One step per call of the train function (no steps_per_execution): DANN's schedule
    # (`DANNSchedule`) sets lambda and the learning rate before every step, from a callback.
    with devices.scope():
        model = build_model(recipe, target_shape)
    check_replica_batches([(source, "test", image_size), (target, "test", image_size)], recipe.batch_size,
                          int(devices.num_replicas_in_sync), download)
    staged = callable(getattr(model, "set_stage", None))  # ADDA: stage 1, then stage 2
    stages = [(1, model.source_epochs), (2, recipe.epochs)] if staged else [(None, recipe.epochs)]
    total_epochs = sum(epochs for _, epochs in stages)

    def batches(first, epochs):
        """`(dataset, steps)` of what the model trains on now, for `epochs` epochs from `first`."""
        if model.training_batches() == model.TRIPLES:
            return make_domain_dataset(source, target, recipe.batch_size, recipe.seed, image_size, download,
                                       epochs=epochs, first_epoch=first)
        name = target if model.TRAINING_DATA == ("target",) else source
        ds = make_dataset(name, "train", recipe.batch_size, recipe.seed, image_size, download=download,
                          epochs=epochs, first_epoch=first)
        return ds, int(tf.data.experimental.cardinality(ds)) // epochs

    validation = make_dataset(source, "test", recipe.batch_size, recipe.seed, image_size, shuffle=False,
                              download=download)
    test_ds = make_dataset(target, "test", recipe.batch_size, recipe.seed, image_size, shuffle=False,
                           download=download)

    class SaveStage(keras.callbacks.Callback):
        """Writes stage<k>.keras after the stage's last epoch, before that epoch's checkpoint."""

        def __init__(self):
            super().__init__()
            self.stage, self.last_epoch = None, None

        def on_epoch_end(self, epoch, logs=None):
            if self.stage is not None and epoch + 1 == self.last_epoch:
                with atomic_path(out / f"stage{self.stage}.keras", suffix=".keras") as tmp:
                    self.model.save(tmp)

    checkpoints = out / "checkpoints"
    save_stage = SaveStage()
    checkpoint = AtomicCheckpoint(checkpoints, resumed=state, user_callbacks=callbacks)
    request = resume_lib.StopRequest()
    run_callbacks = [
        StopOnNonFinite(),
        *model.training_callbacks(),  # DANN's schedules; the saturation check adds to the logs
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), write_graph=False),
        *callbacks,
        *([resume_lib.restoring_callback(list(callbacks), state.get("callbacks"))] if first_epoch else []),
        save_stage,
        checkpoint,  # after every callback that adds to the logs
    ]
    epoch_line = EpochLine()
    epoch_line.epochs = total_epochs
    if verbose == 2:
        run_callbacks.append(epoch_line)
    run_callbacks.append(StopOnRequest(request))
    if first_epoch:
        if staged and first_epoch > model.source_epochs:
            model.set_stage(2)  # a stage-2 checkpoint: its own Et is restored (at the boundary, Et <- Es after it)
        resume_lib.restore(model, checkpoints, first_epoch, state)
        if verbose:
            print(f"resuming {out} after epoch {first_epoch} of {total_epochs}", flush=True)
    with request.installed():
        begin, fitted = 0, False
        for stage, epochs in stages:
            end = begin + epochs
            if first_epoch < end:
                if stage is not None and model.stage < stage:
                    model.set_stage(stage)
                start = max(first_epoch, begin)
                train_ds, steps = batches(start - begin, end - start)
                if steps == 0:
                    raise KerasGenError(f"batch size {recipe.batch_size} is larger than the training split: "
                                        "no full batch to train on")
                save_stage.stage, save_stage.last_epoch = stage, end
                epoch_line.stage = stage
                if fitted:  # the stages' times add up (fit restarts the checkpoint's clock)
                    checkpoint.seconds_before = checkpoint.train_seconds()
                fitted = True
                try:
                    model.fit(train_ds, epochs=end, initial_epoch=start, steps_per_epoch=steps,
                              validation_data=validation, callbacks=run_callbacks, verbose=1 if verbose == 1 else 0,
                              shuffle=False)
                except resume_lib.NonFiniteLoss as exc:
                    raise _keep_last_good(exc, recipe, out, model, checkpoint, strategy) from None
            begin = end
        if staged and model.stage == 2:
            model.set_stage(3)  # adapted: C(Et(x)) classifies the target
        train_seconds = checkpoint.train_seconds()
        test = model.evaluate(test_ds, verbose=0, return_dict=True)

        with atomic_path(out / "model.keras", suffix=".keras") as tmp:
            model.save(tmp)
        info = {
            **_run_facts(recipe, model),
            "strategy": {"name": strategy, "replicas": int(devices.num_replicas_in_sync)},
            "train_seconds": round(train_seconds, 1),
            "history": checkpoint.history,
            # The target's test split, its labels used only for this figure; val_* in the
            # history are the source's test split.
            "test": {k: float(v) for k, v in test.items()},
            "evaluated_on": {"test": f"{target} test split", "validation": f"{source} test split"},
            "best": None,  # the last epoch is kept: no choice looks at target labels
            "stages": ([{"stage": k, "epochs": n, "model": f"stage{k}.keras"} for k, n in stages]
                       if staged else None),
            "versions": versions(),
        }
        write_json(out / "run.json", info)
    return model, info


def _run_facts(recipe, model) -> dict:
    """What every run.json says first: the recipe, the model's config, and how it ran on this
    CPU (the precision "auto" became, XLA, training steps per call, the CPU)."""
    from keras_gen.hardware import describe_cpu

    return {
        "recipe": recipe.to_dict(),
        "config": model.get_config(),
        "precision": model.precision,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "cpu": describe_cpu(),
    }


def _keep_last_good(exc, recipe, out, model, checkpoint, strategy=None):
    """After a non-finite loss: the newest complete checkpoint becomes model.keras and run.json
    says where training stopped; the error to raise (a `NonFiniteLoss`)."""
    from keras_gen import resume as resume_lib

    done = resume_lib.complete_checkpoints(checkpoint.out_dir)
    if not done:
        return resume_lib.NonFiniteLoss(f"{exc}: training stopped before the first checkpoint; nothing was kept",
                                        exc.epoch, exc.step)
    good = done[-1]
    resume_lib.copy_file(resume_lib.checkpoint_path(checkpoint.out_dir, good), out / "model.keras")
    state = resume_lib.read_state(checkpoint.out_dir, good)
    stopped = f"{exc}: training stopped; model.keras is epoch {good}, the last good checkpoint"
    quality_state = state.get("quality")
    write_json(out / "run.json", {
        **_run_facts(recipe, model),
        "strategy": {"name": strategy, "replicas": int(model.distribute_strategy.num_replicas_in_sync)},
        "train_seconds": round(checkpoint.train_seconds(), 1),
        "history": state.get("history", {}),
        "test": None,
        "best": ({"epoch": quality_state["best_epoch"], quality_state["monitor"]: quality_state["best"]}
                 if quality_state and quality_state.get("best_epoch") else None),
        "stopped": stopped,
        "kept_epoch": good,
        "versions": versions(),
    })
    return resume_lib.NonFiniteLoss(f"{stopped} ({out / 'model.keras'})", exc.epoch, exc.step)
