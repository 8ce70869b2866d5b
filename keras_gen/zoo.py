"""The model zoo: pretrained models that load offline by name.

An entry is data, one folder under `zoo/` (installed as package data):

    zoo/<entry>/recipe.json       what to train: a `keras_gen.recipe.Recipe` (hand-written)
    zoo/<entry>/config.json       the model's `get_config()` as built
    zoo/<entry>/model.weights.h5  the trained weights (no optimizer state)
    zoo/<entry>/metadata.json     weights sha256, parameter count, versions, date, machine,
                                  training time and the figures measured after training
    zoo/<entry>/README.md         the model card
    zoo/<entry>/samples.png       64 samples drawn with seed 0

`load(name)` checks the weights' sha256 before it parses them; `build(name)` retrains an
entry from its recipe and rewrites the folder (assembled beside it, then swapped in).
"""
from __future__ import annotations

import builtins
import datetime
import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from keras_gen import registry
from keras_gen.errors import KerasGenError
from keras_gen.files import ensure_writable_dir

WEIGHTS = "model.weights.h5"


def root() -> Path:
    """The folder of zoo entries: installed package data, else the source tree's `zoo/`."""
    try:
        import keras_gen.zoo_entries as entries

        return Path(entries.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[1] / "zoo"


def list(zoo_dir=None) -> builtins.list[str]:  # noqa: A001  (zoo.list() is the public name)
    """Names of the zoo's entries, sorted."""
    base = Path(zoo_dir) if zoo_dir else root()
    return sorted(p.parent.name for p in base.glob("*/recipe.json") if not p.parent.name.startswith("."))


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KerasGenError(f"{what} is missing: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KerasGenError(f"{what} is not valid JSON: {path} ({exc})") from None


def entry_dir(name: str, zoo_dir=None) -> Path:
    if name not in list(zoo_dir):
        raise KerasGenError(f"unknown zoo entry {name!r}; entries: {', '.join(list(zoo_dir)) or 'none'}")
    return (Path(zoo_dir) if zoo_dir else root()) / name


def recipe(name: str, zoo_dir=None):
    """The entry's `Recipe` (its recipe.json), checked."""
    from keras_gen.recipe import Recipe

    entry_recipe = Recipe.from_file(entry_dir(name, zoo_dir) / "recipe.json")
    # Pinned, not left to the model's defaults, so the card and a rebuild always agree.
    missing = [k for k in ("epochs", "batch_size") if getattr(entry_recipe, k) is None]
    if missing:
        raise KerasGenError(f"recipe of zoo entry {name!r} lacks {', '.join(missing)}")
    return entry_recipe


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(name: str, zoo_dir=None, compile=True):
    """The zoo entry `name` as a ready keras-gen model (compiled as its recipe says), offline."""
    folder = entry_dir(name, zoo_dir)
    entry_recipe = recipe(name, zoo_dir)
    metadata = _read_json(folder / "metadata.json", f"metadata of zoo entry {name!r}")
    config = _read_json(folder / "config.json", f"config of zoo entry {name!r}")
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise KerasGenError(f"zoo entry {name!r} has no weights ({weights}); rebuild it with `keras-gen zoo build {name}`")
    actual = sha256(weights)
    if actual != metadata.get("weights_sha256"):
        raise KerasGenError(
            f"zoo entry {name!r}: {WEIGHTS} sha256 {actual[:16]}... does not match metadata "
            f"{str(metadata.get('weights_sha256'))[:16]}...; the file is corrupt or altered"
        )
    if not isinstance(metadata, dict) or not isinstance(config, dict):
        raise KerasGenError(f"zoo entry {name!r}: metadata.json and config.json must be JSON objects")
    try:
        model = registry.model_class(entry_recipe.model).from_config(config)
    except (TypeError, ValueError, KerasGenError) as exc:
        raise KerasGenError(f"zoo entry {name!r}: config.json does not build a {entry_recipe.model} ({exc})") from None
    try:
        model.load_weights(weights)
    except Exception as exc:
        raise KerasGenError(f"zoo entry {name!r}: weights do not fit its config ({str(exc)[:200]})") from None
    if compile:
        model.compile(**entry_recipe.compile)
    return model


def _machine() -> str:
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {gpus or 'no'} GPU{'s' if gpus > 1 else ''}"


def _card(name, entry_recipe, metadata) -> str:
    figures = "\n".join(f"| {k} | {v} |" for k, v in metadata["figures"].items())
    hp = ", ".join(f"{k}={v}" for k, v in entry_recipe.hparams.items()) or "defaults"
    compiled = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry_recipe.compile.items()) or "the model's defaults"
    return f"""# {name}

{entry_recipe.description}

    import keras_gen.zoo
    model = keras_gen.zoo.load("{name}")

| | |
| --- | --- |
| model | `{entry_recipe.model}` ({hp}) |
| compile | {compiled} |
| data | `{", ".join(entry_recipe.data)}` train split |
| training | {entry_recipe.epochs} epochs, batch {entry_recipe.batch_size}, seed {entry_recipe.seed}, {entry_recipe.precision} |
| training time | {metadata["train_seconds"]:.0f} s on {metadata["machine"]} ({metadata["date"]}) |
| parameters | {metadata["parameters"]:,} |
| weights | `{WEIGHTS}`, sha256 `{metadata["weights_sha256"]}` |
| versions | {", ".join(f"{k} {v}" for k, v in metadata["versions"].items())} |

## Measured after training

| figure | value |
| --- | --- |
{figures}

## Samples (seed 0{", one row per class" if metadata.get("conditional") else ""})

![samples](samples.png)

{entry_recipe.notes}

Rebuild: `keras-gen zoo build {name}` (written by it; edit recipe.json, not this card).
"""


def build(name: str, zoo_dir=None, verbose=1) -> Path:
    """Retrain the entry `name` from its recipe and rewrite its folder; returns the folder."""
    from keras_gen import training
    from keras_gen.images import sample_grid, save_png

    folder = entry_dir(name, zoo_dir)
    entry_recipe = recipe(name, zoo_dir)
    ensure_writable_dir(folder.parent)  # before an hour of training, not after
    with tempfile.TemporaryDirectory(prefix=f"keras-gen-zoo-{name}-") as run_dir:
        model, info = training.train(entry_recipe, run_dir, verbose=verbose)
    figures = {f"train {k} (last epoch)": round(v[-1], 4) for k, v in info["history"].items()}
    if info["test"]:
        figures.update({f"test {k}": round(v, 4) for k, v in info["test"].items()})

    staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; an entry is shipped data
    try:
        shutil.copy2(folder / "recipe.json", staging / "recipe.json")
        # Weights only: a fresh, uncompiled copy carries no optimizer state into the zoo.
        fresh = type(model).from_config(model.get_config())
        fresh.set_weights(model.get_weights())
        fresh.save_weights(staging / WEIGHTS)
        if model.offers("sample"):
            save_png(staging / "samples.png", sample_grid(model, 64, 0))
        metadata = {
            "model": entry_recipe.model,
            "conditional": bool(getattr(model, "num_classes", None)),
            "weights_sha256": sha256(staging / WEIGHTS),
            "parameters": int(model.count_params()),
            "train_seconds": info["train_seconds"],
            "date": datetime.date.today().isoformat(),
            "machine": _machine(),
            "versions": info["versions"],
            "figures": figures,
        }
        training.write_json(staging / "config.json", model.get_config())
        training.write_json(staging / "metadata.json", metadata)
        (staging / "README.md").write_text(_card(name, entry_recipe, metadata))
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _swap_in(new: Path, folder: Path) -> None:
    """Replace `folder` by `new` with two renames; if the second fails, put the old one back."""
    old = folder.parent / f".{folder.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(folder, old)
    try:
        os.replace(new, folder)
    except BaseException:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
