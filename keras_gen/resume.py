"""Resuming a killed run exactly, and stopping a run cleanly (SIGINT, a non-finite loss).

A run folder's `checkpoints/epoch_NNN.keras` holds the model (weights, every optimizer's
state); `checkpoints/epoch_NNN.json`, written after it, holds what a `.keras` file cannot:

- `epoch`: the epochs done;
- `noise`: the state of every `keras.random.SeedGenerator` in the model (the training noise:
  latents, penalty draws, DiffAugment, instance noise). Keras 3.15 does not save it (a
  `SeedGenerator` is not a layer variable), and `keras.callbacks.BackupAndRestore` does not
  either, so without it a resumed GAN would draw other noise than the run it continues;
- `history`: every epoch's logs so far, so a resumed run's `run.json` equals the
  uninterrupted run's;
- `quality`: `QualityCheckpoint`'s best figure and epoch (the best weights are
  `checkpoints/best.keras`, or the epoch's own checkpoint when it is the best);
- `train_seconds` and the `precision` the model trains in.

A checkpoint is complete when its `.json` exists; a run resumes from the newest complete
one (`prepare`, then `restore`), after removing what a killed process left: temporaries,
a `.keras` without its `.json`, sample grids of epochs after the checkpoint. The data order
needs no state: epoch e reads the training split in an order that is a function of the
recipe's seed and e alone (`keras_gen.training.make_dataset`).

Why not `keras.callbacks.BackupAndRestore`: it restores the weights, built optimizers and the
epoch, but not the noise generators, callback state or the data position, and it sets the
first epoch from inside `fit`, after the data pipeline is built; a run resumed with it
continues, but not bit-identically. `keras_gen.training.train` therefore refuses it in
`callbacks` and offers `resume=True`; a keras-gen model in a plain `fit` still works with it.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import signal
import sys
import threading
from pathlib import Path

from keras_gen.errors import KerasGenError
from keras_gen.files import TEMPORARY_MARK, atomic_path, remove_stale_temporaries

RECIPE = "recipe.json"  # the run's recipe (resolved), written before training starts
# What a run writes before its first checkpoint (and after): nothing else may be in a folder resumed
# from scratch.
RUN_ENTRIES = (RECIPE, "checkpoints", "logs", "samples", "stage1.keras", "stage2.keras")
CHECKPOINT = re.compile(r"^epoch_(\d{3,})\.(keras|json)$")


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) at a batch end or after an epoch's checkpoint; the
    message names the newest checkpoint and how to resume."""


class NonFiniteLoss(KerasGenError):
    """The loss became NaN or infinite; the message names the epoch and step."""

    def __init__(self, message, epoch=None, step=None):
        super().__init__(message)
        self.epoch, self.step = epoch, step


# -- what a checkpoint holds -----------------------------------------------------------------------
def checkpoint_path(folder, epoch) -> Path:
    return Path(folder) / f"epoch_{epoch:03d}.keras"


def state_path(folder, epoch) -> Path:
    return Path(folder) / f"epoch_{epoch:03d}.json"


def seed_generators(model) -> list:
    """`[(path, SeedGenerator)]`: every `keras.random.SeedGenerator` reachable from `model`
    through its attributes and sub-layers (its own, its networks', their layers' such as
    Dropout's), each once, named by the attribute path that first reaches it (public names
    before private ones, so `seed_generator`, `generator.dropout.seed_generator`). The paths
    depend on how the model is built, not on the process (unlike Keras' variable names)."""
    import keras

    found, seen = [], set()

    def visit(obj, path):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, keras.random.SeedGenerator):
            found.append((path, obj))
        elif isinstance(obj, keras.layers.Layer):
            attributes = sorted(vars(obj).items(), key=lambda kv: (kv[0].startswith("_"), kv[0]))
            for name, value in attributes:
                visit(value, f"{path}.{name}" if path else name)
        elif isinstance(obj, (list, tuple)):
            for i, value in enumerate(obj):
                visit(value, f"{path}[{i}]")
        elif isinstance(obj, dict):
            for key in sorted(obj, key=str):
                visit(obj[key], f"{path}[{key!r}]")

    visit(model, "")
    return found


def noise_state(model) -> dict:
    """`{path: [int, ...]}`: the state of every SeedGenerator in the model (`seed_generators`)."""
    import keras

    return {path: [int(v) for v in keras.ops.convert_to_numpy(sg.state).ravel()]
            for path, sg in seed_generators(model)}


def restore_noise_state(model, state: dict):
    """Put back what `noise_state` returned; the model must have the same generators."""
    import numpy as np

    generators = dict(seed_generators(model))
    if set(generators) != set(state):
        raise KerasGenError(
            f"the checkpoint's noise generators ({', '.join(sorted(state)) or 'none'}) are not the model's "
            f"({', '.join(sorted(generators)) or 'none'}); it was written by another model"
        )
    for path, values in state.items():
        sg = generators[path]
        sg.state.assign(np.asarray(values).reshape(sg.state.shape).astype(sg.state.dtype))


def write_state(folder, epoch, state: dict):
    with atomic_path(state_path(folder, epoch), suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(state, indent=1, sort_keys=True, allow_nan=True) + "\n")


def read_state(folder, epoch):
    """The epoch's checkpoint state, or None if it is missing or unreadable (incomplete)."""
    try:
        state = json.loads(state_path(folder, epoch).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("epoch") == epoch else None


def complete_checkpoints(folder) -> list[int]:
    """Epochs whose checkpoint is complete (its `.keras` and then its `.json`), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    epochs = {int(m.group(1)) for m in map(CHECKPOINT.match, (p.name for p in folder.iterdir())) if m}
    return sorted(e for e in epochs if checkpoint_path(folder, e).is_file() and read_state(folder, e) is not None)


def newest_checkpoint(folder):
    """The newest complete checkpoint's `.keras` path, or None."""
    done = complete_checkpoints(folder)
    return checkpoint_path(folder, done[-1]) if done else None


# -- one process per run folder ----------------------------------------------------------------------
LOCK = ".keras-gen.lock"  # in the run folder while a process trains there (a dot file: no run entry)


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold `run_dir` for this process while the block runs: a second `train` or `--resume` of
    the same folder (e.g. resuming a run that is still training) gets a one-line error naming
    the process, instead of tidying away the first one's files as a killed run's. An advisory
    lock (`flock`) on a file in the folder, which the system releases when the process dies,
    so a killed run never leaves its folder locked; where there is no `flock` (Windows), none."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    import os

    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise KerasGenError(f"the run folder {str(run_dir)!r} is in use by another keras-gen process (pid "
                                f"{owner}); wait for it to end, or stop it, before training there") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # still held: no other process took it in between
    finally:
        os.close(fd)


# -- resuming --------------------------------------------------------------------------------------
def prepare(run_dir, recipe=None):
    """Check that `run_dir` is a run that can be resumed (with `recipe`, if given) and tidy
    what a killed process left. Returns `(recipe, epoch, state)`: the run's recipe, the
    newest complete checkpoint's epoch (0: none yet, start again) and its state."""
    from keras_gen.recipe import Recipe

    if str(run_dir) == "":  # Path("") is "."
        raise KerasGenError("the run folder to resume is an empty name; give the run's folder")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KerasGenError(f"no run folder {str(run_dir)!r} to resume")
    if (run_dir / "run.json").is_file():
        raise KerasGenError(f"the run in {str(run_dir)!r} has finished (it has a run.json); nothing to resume")
    if not (run_dir / RECIPE).is_file():
        # Killed while writing its recipe, its first file: with the recipe, start it again.
        # Nothing is removed before the folder is known to be such a run's (it may be the
        # parent of live runs, whose temporaries are in use).
        files = [p for p in run_dir.rglob("*") if p.is_file() and p != run_dir / LOCK]
        only_recipe_temporaries = all(p.parent == run_dir and p.name.startswith(f".{RECIPE}{TEMPORARY_MARK}")
                                      for p in files)
        if not only_recipe_temporaries or (recipe is None and not files):
            raise KerasGenError(f"{str(run_dir)!r} holds no {RECIPE}: not a keras-gen run folder that can be resumed")
        if recipe is None:
            raise KerasGenError(f"{str(run_dir)!r} holds no {RECIPE}: its run was killed before it wrote its recipe; "
                                "give the command that started it again, with --resume DIR")
        remove_stale_temporaries(run_dir)
        return recipe.resolved(), 0, None
    saved = Recipe.from_file(run_dir / RECIPE).resolved()
    if recipe is not None and recipe.resolved() != saved:
        raise KerasGenError(
            f"{str(run_dir)!r} was trained with another recipe ({saved.differences(recipe.resolved(), 'there', 'asked')}); "
            "resume with the run's own recipe (keras-gen train --resume DIR alone)"
        )
    folder = run_dir / "checkpoints"
    done = complete_checkpoints(folder)
    epoch = done[-1] if done else 0
    if not epoch:
        # Started again from scratch, in place: only where a run killed before its first
        # checkpoint stood, never in a zoo entry or another folder that holds a recipe.json.
        strays = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith("."))
        if strays:
            raise KerasGenError(
                f"{str(run_dir)!r} holds {', '.join(strays[:4])}{' ...' if len(strays) > 4 else ''} besides a run's "
                f"files and no checkpoint: not a keras-gen run folder that can be resumed (to train its recipe, "
                f"keras-gen train --recipe {run_dir / RECIPE} --out NEW_FOLDER)")
    remove_stale_temporaries(run_dir)  # a run's folder, checked: what its killed process left
    # What an interrupted epoch or checkpoint left: it is made again, the same.
    for path in folder.glob("epoch_*") if folder.is_dir() else ():
        m = CHECKPOINT.match(path.name)
        if m and (int(m.group(1)) not in done):
            path.unlink(missing_ok=True)
    for path in (run_dir / "samples").glob("epoch_*.png") if (run_dir / "samples").is_dir() else ():
        m = re.match(r"^epoch_(\d+)\.png$", path.name)
        if m and int(m.group(1)) > epoch:
            path.unlink(missing_ok=True)
    prune_tensorboard(run_dir / "logs", epoch)
    return saved, epoch, (read_state(folder, epoch) if epoch else None)


def prune_tensorboard(log_dir, first_epoch):
    """Drop from the TensorBoard event files under `log_dir` every summary of an epoch the
    resumed run trains again (step >= `first_epoch`: Keras' TensorBoard callback and
    `SampleGrid` log epoch e at step e - 1) and a record torn by the kill, so that each epoch
    shows once in TensorBoard, as in the uninterrupted run. A file is rewritten under a
    temporary name and renamed; files with nothing to drop are left alone."""
    log_dir = Path(log_dir)
    paths = sorted(log_dir.rglob("events.out.tfevents.*")) if log_dir.is_dir() else []
    if not paths:
        return
    import tensorflow as tf

    for path in paths:
        records, torn = [], False
        try:
            for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
                records.append(raw)
        except tf.errors.DataLossError:  # the last record was being written when the process died
            torn = True
        keep = [raw for raw in records
                if not ((event := tf.compat.v1.Event.FromString(raw)).HasField("summary") and event.step >= first_epoch)]
        if len(keep) == len(records) and not torn:
            continue
        with atomic_path(path) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
            for raw in keep:
                writer.write(raw)


def restore(model, folder, epoch, state, quality=None, best_path=None):
    """Load the epoch's checkpoint into `model` (built and compiled from the run's recipe):
    weights, every optimizer's state, the noise generators, and `quality`'s best so far."""
    folder = Path(folder)
    if state.get("precision") not in (None, model.precision):
        raise KerasGenError(
            f"the run trains in {state['precision']}, but here its recipe builds a {model.precision} model "
            f"(precision \"auto\" depends on the CPU); resume on a CPU like the first, or with "
            f"KERAS_GEN_AUTO_PRECISION={state['precision']}"
        )
    best = (state.get("quality") or {}).get("best_epoch")
    if quality is not None and best is not None and best != epoch:
        source = Path(best_path) if best_path is not None else None
        if source is None or not source.is_file():
            source = checkpoint_path(folder, best)
        if not source.is_file():
            raise KerasGenError(f"cannot resume exactly: the best epoch's model ({best_path}) is missing")
        model.load_weights(source)
        quality.best_weights = model.get_weights()
    model.load_weights(checkpoint_path(folder, epoch))
    if quality is not None:
        quality.set_state(state.get("quality"))
        if best == epoch:  # the best model may not have been copied before the process died
            quality.best_weights = model.get_weights()
            if best_path is not None:
                copy_file(checkpoint_path(folder, epoch), best_path)
    restore_noise_state(model, state.get("noise", {}))


# The running state of Keras' monitor callbacks (EarlyStopping, ReduceLROnPlateau,
# ModelCheckpoint), which their `on_train_begin` resets.
CALLBACK_STATE_ATTRIBUTES = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def callback_state(callback) -> dict:
    """What one of a run's own callbacks needs to go on after a resume: its `get_state()`
    if it has one (JSON-able), else the numbers of `CALLBACK_STATE_ATTRIBUTES` it has."""
    if callable(getattr(callback, "get_state", None)):
        return callback.get_state()
    state = {}
    for name in CALLBACK_STATE_ATTRIBUTES:
        value = getattr(callback, name, None)
        if isinstance(value, (bool, int, float)) or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0):
            state[name] = value.item() if hasattr(value, "item") else value
    return state


def restoring_callback(callbacks, saved):
    """A Keras callback that puts `saved` (a checkpoint's "callbacks") back into the run's own
    `callbacks` once their `on_train_begin` has reset them: it goes after them in the
    callback list. A callback of another class than the saved one at its place starts
    afresh, with a warning. (EarlyStopping's `best_weights` are not kept: with
    `restore_best_weights`, a best epoch from before the resume is not restored.)"""
    import warnings

    import keras

    class Restore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            for i, callback in enumerate(callbacks):
                entry = saved[i] if i < len(saved or []) else None
                if entry is None or entry.get("class") != type(callback).__name__:
                    warnings.warn(f"resuming: no saved state for callback {i} ({type(callback).__name__}); "
                                  "it starts afresh", stacklevel=2)
                    continue
                if callable(getattr(callback, "set_state", None)):
                    callback.set_state(entry["state"])
                else:
                    for name, value in entry["state"].items():
                        setattr(callback, name, value)

    return Restore()


def copy_file(source, target):
    """Copy `source` to `target` atomically (and durably)."""
    target = Path(target)
    with atomic_path(target, suffix=target.suffix) as tmp:
        shutil.copyfile(source, tmp)


# -- stopping cleanly ------------------------------------------------------------------------------
class StopRequest:
    """SIGINT (Ctrl-C) as a request to stop: while `installed()`, the first SIGINT only sets
    `requested` (a callback stops training at the next batch end, or right after the epoch's
    checkpoint), so a checkpoint being written is finished, not torn or, as Keras' `.keras`
    writer does with a KeyboardInterrupt, silently swallowed. A second SIGINT interrupts at
    once (KeyboardInterrupt). A request that no callback acted on (it came after the last
    epoch: the run's folder was finished) is reported when the block ends. Outside the main
    thread nothing is installed."""

    def __init__(self):
        self.requested = False

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
        if self.requested:  # came after training, while the run's last files were written: say so
            print("keras-gen: Ctrl-C came after the last epoch; the run was finished, its folder is complete",
                  file=sys.stderr, flush=True)


def is_finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True
