"""The model zoo: pretrained models that load offline by name.

An entry is data, one folder under `zoo/` (installed as package data):

    zoo/<entry>/recipe.json       what to train: a `keras_gen.recipe.Recipe` (hand-written)
    zoo/<entry>/config.json       the model's `get_config()` as built
    zoo/<entry>/model.weights.h5  the trained weights (no optimizer state)
    zoo/<entry>/metadata.json     weights sha256, parameter count, versions, date, machine,
                                  training time and the figures measured after training
                                  (for digit GANs: FID, KID, precision/recall, coverage, class
                                  coverage, memorisation from `keras_gen.metrics`)
    zoo/<entry>/README.md         the model card
    zoo/<entry>/samples.png       64 samples drawn with seed 0 (models that sample), and
    zoo/<entry>/interpolation.png latent interpolations, neighbours.png nearest training images
    zoo/<entry>/completions.png   likelihood models: bottom halves of test images completed,
                                  and heatmap.png, their per-pixel negative log-likelihood

A domain-adaptation entry (a source and a target dataset) has no pictures; its figures are
the target test accuracy beside that of the source-only floor and the target-oracle ceiling,
both trained by the build with the entry's data, seed, network and precision.

`load(name)` checks the weights' sha256 before it parses them; `build(name)` retrains an
entry from its recipe and rewrites the folder (assembled beside it, then swapped in).
"""
from __future__ import annotations

import builtins
import datetime
import hashlib
import json
import math
import os
import shlex
import shutil
import stat
import tempfile
from pathlib import Path

from keras_gen import registry
from keras_gen.errors import KerasGenError
from keras_gen.files import (ensure_writable_dir, fsync_dir, fsync_tree, remove_orphaned_temporaries,
                             writer_temporary_dir)
from keras_gen.text import count

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


def is_entry_folder(path) -> bool:
    """Whether `path` is a folder laid out as a zoo entry (its recipe.json; not a run folder,
    which holds a model.keras, a run.json or checkpoints, even when killed before they were
    all written): `keras-gen sample my-zoo/my-entry` loads it as `load(name, zoo_dir)` would."""
    path = Path(path)
    run_folder = any((path / marker).exists() for marker in ("model.keras", "run.json", "checkpoints"))
    return path.is_dir() and (path / "recipe.json").is_file() and not run_folder


def entry_of_folder(path):
    """`(name, zoo_dir)` of the entry folder `path` (`is_entry_folder`), for `load`, `recipe`
    and the others; None for any other path."""
    if not is_entry_folder(path):
        return None
    folder = Path(path).resolve()
    return folder.name, folder.parent


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KerasGenError(f"{what} is missing: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KerasGenError(f"{what} is not valid JSON: {path} ({exc})") from None


def entry_dir(name: str, zoo_dir=None) -> Path:
    if name not in list(zoo_dir):
        raise KerasGenError(f"unknown zoo entry {name!r}{did_you_mean(name, zoo_dir)}; entries: "
                            f"{', '.join(list(zoo_dir)) or 'none'}")
    return (Path(zoo_dir) if zoo_dir else root()) / name


def did_you_mean(name, zoo_dir=None) -> str:
    """The hint ' (did you mean X?)' naming the entries close to `name` (a model's name,
    another case, a typo), or '' if none is."""
    import difflib

    entries = list(zoo_dir)
    wanted = str(name).lower()
    close = [e for e in entries if e.lower() == wanted or e.startswith(f"{wanted}-")]
    close += [e for e in difflib.get_close_matches(wanted, entries, n=3, cutoff=0.6) if e not in close]
    return f" (did you mean {' or '.join(close[:3])}?)" if close else ""


def recipe(name: str, zoo_dir=None):
    """The entry's `Recipe` (its recipe.json), checked."""
    from keras_gen.recipe import Recipe

    entry_recipe = Recipe.from_file(entry_dir(name, zoo_dir) / "recipe.json")
    # Pinned, not left to the model's defaults, so the card and a rebuild always agree.
    missing = [k for k in ("epochs", "batch_size") if getattr(entry_recipe, k) is None]
    if missing:
        defaults = entry_recipe.resolved()
        add = ", ".join(f'"{k}": {getattr(defaults, k)}' for k in missing)
        raise KerasGenError(f"recipe of zoo entry {name!r} lacks {', '.join(missing)}: a zoo entry pins them, so "
                            f"that its card and every rebuild agree; add e.g. {add} (the model's defaults) to "
                            f"{entry_dir(name, zoo_dir) / 'recipe.json'}")
    return entry_recipe


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected, what: str) -> None:
    """Refuse `path` unless its sha256 is `expected` (checked before anything parses it)."""
    if not isinstance(expected, str) or len(expected) != 64:
        raise KerasGenError(f"{what}: its metadata.json records no valid weights_sha256 (got {str(expected)[:80]!r}), "
                            f"so {path.name} cannot be checked; rebuild the entry")
    actual = sha256(path)
    if actual != expected:
        raise KerasGenError(
            f"{what}: {path.name} sha256 {actual[:16]}... does not match the recorded "
            f"{str(expected)[:16]}...; the file is corrupt or altered"
        )


def load(name: str, zoo_dir=None, compile=True, precision=None):
    """The zoo entry `name` as a ready keras-gen model (compiled as its recipe says), offline.

    `precision` None builds it in the precision it was trained and scored in (its recipe's);
    "auto", "float32" or "mixed_bfloat16" choose another (the weights are float32 either way),
    e.g. "auto" for an entry trained in mixed_bfloat16 on a CPU without native bfloat16, which
    would otherwise run emulated (and warn). The card's figures hold for its own precision;
    another gives them up to rounding.

    "Compiled as its recipe says" means its optimizers are new: an entry ships no optimizer
    state, so `fit` on it starts Adam afresh at the recipe's first learning rate, and a few
    steps at that rate can undo much of what the entry learned (a review measured
    pixelcnn-mnist5k on 128 test zeros at 1.21 bits/dim, and at 1.43 after 4 steps of `fit`
    on them). To fine-tune, compile it again with a smaller learning rate."""
    from keras_gen.hardware import check_environment
    from keras_gen.recipe import PRECISIONS

    check_environment()  # a bad $KERAS_GEN_AUTO_PRECISION is not a bad config.json
    if precision is not None and precision not in PRECISIONS:
        raise KerasGenError(f"precision must be None (the entry's) or one of {', '.join(PRECISIONS)}, got {precision!r}")
    folder = entry_dir(name, zoo_dir)
    entry_recipe = recipe(name, zoo_dir)
    build_command = f"keras-gen zoo build {name}{_zoo_dir_option(zoo_dir)}"
    weights = folder / WEIGHTS
    if not weights.is_file() and not (folder / "metadata.json").exists():
        raise KerasGenError(f"zoo entry {name!r} is not built yet (no weights, no metadata.json in {folder}); "
                            f"build it with `{build_command}`")
    metadata = _read_json(folder / "metadata.json", f"metadata of zoo entry {name!r}")
    config = _read_json(folder / "config.json", f"config of zoo entry {name!r}")
    if not weights.is_file():
        raise KerasGenError(f"zoo entry {name!r} has no weights ({weights}); rebuild it with `{build_command}`")
    if not isinstance(metadata, dict) or not isinstance(config, dict):
        raise KerasGenError(f"zoo entry {name!r}: metadata.json and config.json must be JSON objects")
    _check_config_agrees(name, config, entry_recipe)
    if precision is not None:
        config = {**config, "precision": precision}
    check_sha256(weights, metadata.get("weights_sha256"), f"zoo entry {name!r}")
    try:
        model = registry.model_class(entry_recipe.model).from_config(config)
    except (TypeError, ValueError, KerasGenError) as exc:
        raise KerasGenError(f"zoo entry {name!r}: config.json does not build a {entry_recipe.model} ({exc})") from None
    try:
        model.load_weights(weights)
    except Exception as exc:
        # Keras' first line ends in "Example error message for ...:"; the cause follows it.
        detail = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise KerasGenError(f"zoo entry {name!r}: weights do not fit its config ({detail})") from None
    if compile:
        model.compile(**entry_recipe.compile)
    return model


def _check_config_agrees(name, config, entry_recipe) -> None:
    """The weights' sha256 is checked; config.json and recipe.json are not hashed, so they
    must at least agree: the model the recipe names, a precision a model is built in, and the
    recipe's own precision where it pins one (the card reports the recipe's)."""
    where = f"zoo entry {name!r}"

    def plain(model_name):  # TensorFlow's name scopes allow no "+": pixelcnn++ names itself pixelcnnpp
        return "".join(ch for ch in str(model_name).lower().replace("+", "p") if ch.isalnum())

    if plain(config.get("name")) != plain(entry_recipe.model):
        raise KerasGenError(f"{where}: config.json is a {config.get('name')!r} model but recipe.json names "
                            f"{entry_recipe.model!r}; the entry is altered or mixed up")
    built = config.get("precision")
    if built not in ("float32", "mixed_bfloat16"):
        raise KerasGenError(f"{where}: config.json's precision must be float32 or mixed_bfloat16 (what the model was "
                            f"built in), got {built!r}")
    if entry_recipe.precision != "auto" and built != entry_recipe.precision:
        raise KerasGenError(f"{where}: config.json was built in {built} but recipe.json says {entry_recipe.precision}")


def _own_zoo(zoo_dir) -> bool:
    return zoo_dir is not None and Path(zoo_dir).resolve() != root().resolve()


def _loading_code(name, zoo_dir) -> str:
    """The card's line that loads the entry: by name, and from its zoo folder when that is not
    the package's (`zoo.load("x")` alone would not find an entry of one's own zoo)."""
    if not _own_zoo(zoo_dir):
        return f"keras_gen.zoo.load({json.dumps(name)})"
    return f"keras_gen.zoo.load({json.dumps(name)}, zoo_dir={json.dumps(str(zoo_dir))})"


def _zoo_dir_option(zoo_dir) -> str:
    return f" --zoo-dir {shlex.quote(str(zoo_dir))}" if _own_zoo(zoo_dir) else ""


def _card(name, entry_recipe, metadata, zoo_dir=None) -> str:
    # In name order, as metadata.json keeps them: a card drawn at build and one drawn again
    # from the metadata (`zoo evaluate`) list them alike.
    figures = "\n".join(f"| {k} | {v} |" for k, v in sorted(metadata["figures"].items()))
    precision = entry_recipe.precision
    if precision == "auto" and metadata.get("precision"):
        precision = f"auto ({metadata['precision']} on that machine)"
    hp = ", ".join(f"{k}={v}" for k, v in entry_recipe.hparams.items()) or "defaults"
    compiled = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry_recipe.compile.items()) or "the model's defaults"
    return f"""# {name}

{entry_recipe.description}

    import keras_gen.zoo
    model = {_loading_code(name, zoo_dir)}

| | |
| --- | --- |
| model | `{entry_recipe.model}` ({hp}) |
| compile | {compiled} |
| data | {_data_line(entry_recipe)} |
| training | {_training_epochs(entry_recipe, metadata)}, batch {entry_recipe.batch_size}, seed {entry_recipe.seed}, {precision} |
| training time | {metadata["train_seconds"]:.0f} s on {metadata["machine"]} ({metadata["date"]}) |
| parameters | {metadata["parameters"]:,} |
| weights | `{WEIGHTS}`, sha256 `{metadata["weights_sha256"]}` |
| versions | {", ".join(f"{k} {v}" for k, v in metadata["versions"].items())} |

## Measured after training

{_evaluated_line(metadata)}

| figure | value |
| --- | --- |
{figures}

{_pictures(metadata)}
{entry_recipe.notes}

Rebuild: `keras-gen zoo build {name}{_zoo_dir_option(zoo_dir)}` (written by it; edit recipe.json, not this card).
"""


def _data_line(entry_recipe) -> str:
    if not _adapts_domains(entry_recipe):
        return f"`{entry_recipe.data[0]}` train split"
    source, target = entry_recipe.data  # domain adaptation: target labels are never trained on
    return f"source `{source}` train split with its labels; target `{target}` train split, images only"


def _evaluated_line(metadata) -> str:
    how = metadata.get("evaluated")
    if not how:
        return "Figures from training and its test split."
    return (f"Training figures from the run; the others from `{how['function']}` (`keras-gen zoo evaluate`), "
            f"{how['seconds']:.0f} s on {how['machine']} ({how['date']}).")


def _figure(figures, prefix):
    """The value of the figure whose name starts with `prefix` (names carry their floors)."""
    for key, value in figures.items():
        if key.startswith(prefix):
            return value
    return None


def results_table(zoo_dir=None, links_from=None) -> str:
    """A markdown table of every entry's figures, read from the metadata its build wrote.

    The README's zoo table is this output (`keras-gen zoo table --readme README.md`), so no
    figure in it is typed by hand. Each entry links to its card: `zoo/<entry>/README.md` for
    the package's zoo (the project README's place), else the card's path relative to the
    folder `links_from` (a README's folder; default the current folder).
    """
    rows = [
        "| entry | model | training (epochs, time) | FID ↓ | precision / recall | coverage | classes | near-copies | other |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    floor = None
    for name in list(zoo_dir):
        folder = entry_dir(name, zoo_dir)
        entry_recipe = recipe(name, zoo_dir)
        metadata = _read_json(folder / "metadata.json", f"metadata of zoo entry {name!r}")
        figures = metadata.get("figures", {})
        fid = _figure(figures, "fid (")
        if fid is not None and floor is None:
            floor = next(k for k in figures if k.startswith("fid (")).split("real train vs test: ")[1].rstrip(")")
        other = [f"{k.split(' (')[0]} {v}" for k, v in figures.items()
                 if k.startswith(("label accuracy", "test bits_per_dim", "bayes accuracy", "test accuracy"))]

        def cell(prefix, fmt="{}"):
            value = _figure(figures, prefix)
            return "–" if value is None else fmt.format(value)

        rows.append(
            f"| [`{name}`]({_card_link(name, zoo_dir, links_from)}) | `{entry_recipe.model}` | {_training_epochs(entry_recipe, metadata)}, "
            f"{metadata['train_seconds']:.0f} s | {cell('fid (', '{:.2f}')} | "
            f"{cell('precision (')} / {cell('recall (')} | {cell('coverage (')} | {cell('classes_covered (')} | "
            f"{cell('near_copy_fraction (')} | {', '.join(other) or '–'} |"
        )
    metadata = [json.loads((entry_dir(n, zoo_dir) / "metadata.json").read_text()) for n in list(zoo_dir)]
    machine = {m.get("machine") for m in metadata}
    scored = {f"{m['evaluated']['machine']} ({m['evaluated']['date']})" for m in metadata if m.get("evaluated")}
    note = ""
    if floor:
        from keras_gen.metrics.features import weights_root

        ceiling = json.loads((weights_root() / "mnist28.json").read_text())["reference_floors"]["ceiling"]["fid"]
        note = (f"\n\nFigures of 1,000 samples (seed 0) against the 1,000 mnist5k test images in the shipped "
                f"mnist28 feature space; real training images score FID {floor} there (the floor) and uniform noise "
                f"{ceiling:.1f} (the ceiling). Trained on: {'; '.join(sorted(m for m in machine if m))}. "
                f"Scored by keras_gen.metrics.evaluate on: {'; '.join(sorted(scored)) or 'unknown'}.")
    return "\n".join(rows) + note


README_TABLE = ("<!-- zoo-table -->", "<!-- /zoo-table -->")


def _card_link(name, zoo_dir, links_from) -> str:
    if not zoo_dir:
        return f"zoo/{name}/README.md"
    card = Path(zoo_dir).resolve() / name / "README.md"
    return Path(os.path.relpath(card, Path(links_from or ".").resolve())).as_posix()


def write_readme_table(readme, zoo_dir=None) -> None:
    """Replace the block between the README's zoo-table markers with `results_table()`,
    changing nothing else: the file's line endings and mode stay, and a symlinked
    README has its target rewritten (the link stays a link)."""
    from keras_gen.files import atomic_path

    path = Path(readme).resolve()
    head, tail, newline = _readme_parts(readme)
    table = results_table(zoo_dir, links_from=path.parent)
    start, end = README_TABLE
    with atomic_path(path, suffix=".md") as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(f"{head}{start}{newline}{table.replace(chr(10), newline)}{newline}{end}{tail}")
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))


def check_readme(readme) -> None:
    """Refuse, in one line, a README whose zoo-table block `write_readme_table` cannot fill:
    checked before `zoo evaluate --readme` re-scores anything."""
    _readme_parts(readme)


def _readme_parts(readme):
    """`(text before the start marker, text from the end marker on, the file's newline)`."""
    readme = Path(readme)
    try:
        with open(readme, encoding="utf-8", newline="") as f:  # newline="": CRLF files stay CRLF
            text = f.read()
    except UnicodeDecodeError:
        raise KerasGenError(f"{readme} is not a UTF-8 text file; give the README to fill") from None
    except OSError as exc:
        raise KerasGenError(f"cannot read {readme}: {exc.strerror or exc}") from None
    start, end = README_TABLE
    if start not in text or end not in text:
        raise KerasGenError(f"{readme} has no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    if end not in rest:
        raise KerasGenError(f"{readme}: its {end} marker comes before {start}; one block, start first, to fill")
    _, tail = rest.split(end, 1)
    return head, tail, "\r\n" if "\r\n" in text else "\n"


SAMPLE_GRID_SIZE = 64  # samples on a card's grid (a conditional model: 64 // classes per class)
# The order of a card's pictures: what the model makes first, then how it reads images.
PICTURES = ("samples.png", "interpolation.png", "neighbours.png", "completions.png", "heatmap.png")


def _pictures(metadata) -> str:
    grids = metadata.get("grids", {})
    files = sorted(grids, key=lambda file: (PICTURES.index(file) if file in PICTURES else len(PICTURES), file))
    return "\n".join(f"## {grids[file]}\n\n![{file}]({file})\n" for file in files)


def build(name: str, zoo_dir=None, verbose="auto", from_run=None) -> Path:
    """Retrain the entry `name` from its recipe and rewrite its folder; returns the folder.

    `from_run`: a finished run folder of exactly this recipe (`keras-gen train --recipe
    zoo/<entry>/recipe.json --out RUN`, e.g. resumed after a kill) to take the model from
    instead of training again."""
    from keras_gen import training
    from keras_gen.hardware import describe_machine

    folder = entry_dir(name, zoo_dir)
    if folder.is_symlink():  # the build swaps the folder by renames, which would move the link, not its target
        target = folder.resolve()
        raise KerasGenError(f"zoo entry {name!r} is a symbolic link ({folder} -> {os.readlink(folder)}); build the "
                            f"folder it points to: keras-gen zoo build {target.name}{_zoo_dir_option(target.parent)}")
    entry_recipe = recipe(name, zoo_dir)
    ensure_writable_dir(folder.parent)  # before an hour of training, not after
    if from_run is not None:
        model, info = _finished_run(from_run, entry_recipe)
    else:
        with tempfile.TemporaryDirectory(prefix=f"keras-gen-zoo-{name}-") as run_dir:
            model, info = training.train(entry_recipe, run_dir, verbose=verbose)
    figures = {f"train {k} ({_when_logged(k, model)})": round(last, 4)
               for k, v in info["history"].items() if (last := _last_logged(v)) is not None}
    if info["test"]:
        figures.update({f"test {k}": round(v, 4) for k, v in info["test"].items()})
    if info.get("best"):
        held_out = "val_fid" in info["best"]  # entries built before the epoch was picked on the training split
        figures[f"kept epoch (lowest {'held-out' if held_out else 'training-split'} FID)"] = info["best"]["epoch"]
    evaluated, how = _evaluated_figures(model, entry_recipe)
    figures.update(evaluated)
    figures.update(_baseline_figures(entry_recipe, model, verbose))

    remove_orphaned_temporaries(folder.parent, name)  # a killed build's
    staging = writer_temporary_dir(folder.parent, name)
    staging.chmod(0o755)  # mkdtemp makes it private; an entry is shipped data
    try:
        shutil.copy2(folder / "recipe.json", staging / "recipe.json")
        # Weights only: a fresh, uncompiled copy carries no optimizer state into the zoo.
        fresh = type(model).from_config(model.get_config())
        fresh.set_weights(model.get_weights())
        fresh.save_weights(staging / WEIGHTS)
        grids = _write_grids(model, entry_recipe, staging)
        metadata = {
            "model": entry_recipe.model,
            # Class-conditional generation; a classifier's classes are its outputs, not a condition.
            "conditional": bool(getattr(model, "num_classes", None)) and model.offers("sample"),
            "weights_sha256": sha256(staging / WEIGHTS),
            "parameters": int(model.count_params()),
            "train_seconds": info["train_seconds"],
            "precision": model.precision,  # what "auto" chose
            "stages": info.get("stages"),
            "date": datetime.date.today().isoformat(),
            "machine": describe_machine(),
            "versions": info["versions"],
            "figures": figures,
            "evaluated": how,
            "grids": grids,
        }
        training.write_json(staging / "config.json", model.get_config())
        training.write_json(staging / "metadata.json", metadata)
        # The card from the metadata as stored (keys sorted), as `evaluate` and `_card`'s
        # readers see it: the same card whichever command wrote it last.
        stored = _read_json(staging / "metadata.json", f"metadata of zoo entry {name!r}")
        (staging / "README.md").write_text(_card(name, entry_recipe, stored, zoo_dir))
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _last_logged(values):
    """A history's last value that an epoch logged (None marks epochs that did not)."""
    return next((value for value in reversed(values) if value is not None), None)


def _when_logged(metric, model) -> str:
    """Which epoch a history's last value is from: the last, or for a model trained in stages
    (ADDA) the last of the only stage that logs `metric`."""
    stages = getattr(model, "STAGE_METRICS", None)
    logged_in = [stage for stage, metrics in (stages or {}).items() if metric in metrics]
    return f"last epoch of stage {logged_in[0]}" if len(logged_in) == 1 else "last epoch"


def _training_epochs(entry_recipe, metadata) -> str:
    """"30 epochs", or per stage: "stage 1: 20 epochs, stage 2: 20 epochs"."""
    stages = metadata.get("stages")
    if not stages:
        return count(entry_recipe.epochs, "epoch")
    return ", ".join(f"stage {s['stage']}: {count(s['epochs'], 'epoch')}" for s in stages)


def _finished_run(run_dir, entry_recipe):
    """`(model, run_info)` of a finished run of `entry_recipe` (any other recipe is refused)."""
    from keras_gen.recipe import Recipe
    from keras_gen.saving import load_keras_file

    run_dir = Path(run_dir)
    try:
        info = json.loads((run_dir / "run.json").read_text())
        ran = Recipe.from_dict(info["recipe"])
    except (OSError, ValueError, KeyError, TypeError):
        raise KerasGenError(f"{str(run_dir)!r} is not a finished keras-gen run (no readable run.json)") from None
    if ran.to_dict() != entry_recipe.resolved().to_dict() and ran.to_dict() != entry_recipe.to_dict():
        raise KerasGenError(f"the run in {str(run_dir)!r} trained another recipe than the entry's "
                            f"({ran.differences(entry_recipe.resolved(), 'in the run', 'in the entry')})")
    return load_keras_file(run_dir / "model.keras"), info


# The floor and the ceiling a domain-adaptation entry is measured against (issue 9's cards).
BASELINES = ("source-only", "target-oracle")
# What a baseline shares with the entry: the network of `DomainAdaptationModel`, nothing that
# is the adapted model's own (its discriminator, schedule or stages).
SHARED_HPARAMS = ("num_classes", "filters", "feature_dim", "classifier_widths")


def _adapts_domains(entry_recipe) -> bool:
    """Whether the entry's model is a domain-adaptation classifier (a source and a target)."""
    return len(registry.spec(entry_recipe.model).data_roles) == 2


def baseline_recipes(entry_recipe, model) -> dict:
    """`{name: Recipe}` of the source-only and target-oracle runs a domain-adaptation entry is
    compared with: the entry's data, image size, seed, batch size, precision and network, for
    as many epochs as the entry trains on source labels (ADDA's `source_epochs`, so its stage 1
    is the source-only model bit for bit; DANN's epochs), each with its own default optimizer;
    {} for any other model (`model`: the entry's trained model)."""
    from keras_gen.recipe import Recipe

    if not _adapts_domains(entry_recipe) or entry_recipe.model in BASELINES:
        return {}
    hparams = {k: v for k, v in entry_recipe.hparams.items() if k in SHARED_HPARAMS}
    epochs = getattr(model, "source_epochs", entry_recipe.epochs)
    return {name: Recipe(model=name, data=entry_recipe.data, image_size=entry_recipe.image_size, hparams=hparams,
                         epochs=epochs, batch_size=entry_recipe.batch_size, seed=entry_recipe.seed,
                         precision=entry_recipe.precision)
            for name in BASELINES}


def _baseline_figures(entry_recipe, model, verbose) -> dict:
    """Train each of `baseline_recipes(entry_recipe, model)` and name its target test accuracy
    as a figure (the name says what it shares with the entry)."""
    from keras_gen import training

    figures = {}
    for name, baseline in baseline_recipes(entry_recipe, model).items():
        with tempfile.TemporaryDirectory(prefix=f"keras-gen-zoo-{name}-") as run_dir:
            _, info = training.train(baseline, run_dir, verbose=verbose)
        figures[f"test accuracy of {name} (same data, seed, network and precision; "
                f"{count(baseline.epochs, 'epoch')}, {info['train_seconds']:.0f} s)"] = round(info["test"]["accuracy"], 4)
    return figures


SAMPLE_FIGURES_N = 1000  # samples scored for a card: the size of the mnist5k test split


def _evaluated_figures(model, entry_recipe) -> tuple[dict, dict]:
    """`(figures, how)`: `keras_gen.metrics.evaluate` of the model on its recipe's data, 1,000
    samples of seed 0, each figure named with the real-vs-real floor beside it; `how` says
    when, where and in how long."""
    import time

    from keras_gen import metrics

    if _adapts_domains(entry_recipe):
        return _classification_figures(model, entry_recipe)
    data = entry_recipe.data[0]
    network = None  # where no shipped network reads the data, or the model does not sample
    if model.offers("sample"):
        try:
            network = metrics.network_for(data, model.image_shape)
        except KerasGenError:
            pass
    # An autoregressive model without a cached sampler draws 1,000 samples in the better part
    # of an hour on 2 cores: its card keeps the likelihood figures.
    samples = network is not None and model.samples_fast
    start = time.perf_counter()
    if not samples and not model.offers("log_prob"):
        return {}, None
    ours = metrics.evaluate(model, data, SAMPLE_FIGURES_N, 0, image_size=entry_recipe.image_size, network=network,
                            samples=samples)
    how = _scored_by(f"keras_gen.metrics.evaluate(model, {data!r}, n={SAMPLE_FIGURES_N}, seed=0)", start)
    figures = {}
    if samples:
        floor = metrics.reference_floors(network, n=SAMPLE_FIGURES_N)["floor"]
        for key, value in ours.items():
            if key in floor:
                figures[f"{key} (1,000 samples vs test; real train vs test: {_round(floor[key])})"] = _round(value)
    if "label_accuracy" in ours:
        figures[f"label accuracy (classifier on sample(labels=k); its test accuracy: "
                f"{network.metadata['test_accuracy']:.4f})"] = _round(ours["label_accuracy"])
    if "test_bits_per_dim" in ours:
        # Exact over the test split: also its mean NLL per image (the loss), so the card's test
        # figures agree with each other.
        figures["test bits_per_dim"] = _round(ours["test_bits_per_dim"])
        nats = ours["test_bits_per_dim"] * math.prod(model.image_shape) * math.log(2)
        figures["test loss"] = figures["test nll"] = round(nats, 4)
    if "bayes_accuracy" in ours:
        figures["bayes accuracy (argmax_y log p(x | y) on the test split)"] = _round(ours["bayes_accuracy"])
    return figures, how


def _scored_by(function: str, start: float) -> dict:
    """The card's `evaluated` record: what scored the figures, since `start` (perf_counter),
    when and where."""
    import time

    from keras_gen.hardware import describe_machine

    return {"function": function, "seconds": round(time.perf_counter() - start, 1),
            "date": datetime.date.today().isoformat(), "machine": describe_machine()}


def _classification_figures(model, entry_recipe) -> tuple[dict, dict]:
    """A classifier's `test accuracy`: `classify` on the target's (the last dataset's) whole
    test split, the one place its labels are read."""
    import time

    from keras_gen.metrics.evaluation import test_accuracy

    target = entry_recipe.data[-1]
    start = time.perf_counter()
    # At the model's size: a pair trains at one size (`training.pair_image_size`), digits resized.
    accuracy, images = test_accuracy(model, target, entry_recipe.image_size)
    how = _scored_by(f"{type(model).__name__}.classify on the {target} test split ({images:,} images)", start)
    return {"test accuracy": _round(accuracy)}, how


def evaluate(name: str, zoo_dir=None) -> Path:
    """Re-score the entry `name` with `keras_gen.metrics.evaluate` and rewrite its metadata
    and card (weights, pictures and training figures stay; pictures the card lacks are
    drawn); returns the folder."""
    from keras_gen.files import atomic_path
    from keras_gen import training

    folder = entry_dir(name, zoo_dir)
    entry_recipe = recipe(name, zoo_dir)
    metadata = _read_json(folder / "metadata.json", f"metadata of zoo entry {name!r}")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("figures"), dict):
        raise KerasGenError(f"metadata of zoo entry {name!r} is not an entry's metadata (no figures)")
    ensure_writable_dir(folder)
    model = load(name, zoo_dir, compile=False)
    figures, how = _evaluated_figures(model, entry_recipe)
    if how is None:
        raise KerasGenError(f"zoo entry {name!r}: no feature network reads its {entry_recipe.data[0]} samples "
                            "and it has no likelihood; nothing to evaluate")
    kept = {k: v for k, v in metadata["figures"].items()
            if k.startswith(("train ", "kept epoch")) or (k.startswith("test ") and k not in figures)}
    grids = _add_missing_grids(model, entry_recipe, folder, metadata.get("grids") or {})
    metadata.update(figures={**kept, **figures}, evaluated=how, grids=grids)
    training.write_json(folder / "metadata.json", metadata)
    with atomic_path(folder / "README.md", suffix=".md") as tmp:
        Path(tmp).write_text(_card(name, entry_recipe, metadata, zoo_dir))
    return folder


def _round(value):
    return round(float(value), 4) if isinstance(value, float) else value


def _write_grids(model, entry_recipe, folder: Path, skip=()) -> dict:
    """The card's pictures, written into `folder`: samples, latent interpolations, nearest
    training images, and for likelihood models completions of occluded test images and
    per-pixel NLL heatmaps; `{file: caption}` of those written (none named in `skip`)."""
    import keras
    import numpy as np

    from keras_gen import analysis, data
    from keras_gen.images import make_grid, readable_scale, sample_grid, save_png

    grids = {}

    def wanted(*files):
        return not set(files) <= set(skip)

    scale = readable_scale(model.image_shape)  # every picture at a size a person reads unzoomed
    classes = getattr(model, "num_classes", None)
    if model.offers("sample") and wanted("samples.png"):
        save_png(folder / "samples.png", sample_grid(model, SAMPLE_GRID_SIZE, 0, label_rows=bool(classes)))
        grids["samples.png"] = (
            f"{classes} x {max(1, SAMPLE_GRID_SIZE // classes)} samples, seed 0, one row per class (its number on "
            "the left)" if classes else f"{SAMPLE_GRID_SIZE} samples, seed 0")
    if model.offers("interpolate") and wanted("interpolation.png"):
        save_png(folder / "interpolation.png",
                 make_grid(analysis.interpolation_grid(model, 8, 10, seed=0), columns=10, scale=scale))
        grids["interpolation.png"] = "8 spherical interpolations between seeded latents, 10 steps each" + (
            " (row r keeps class r)" if classes else "")
    if model.offers("sample") and wanted("neighbours.png"):
        train, _ = data.load_arrays(entry_recipe.data[0], "train", image_size=entry_recipe.image_size)
        samples = keras.ops.convert_to_numpy(model.sample(8, 1))
        save_png(folder / "neighbours.png",
                 make_grid(analysis.neighbour_grid(samples, train, k=5), columns=6, scale=scale))
        grids["neighbours.png"] = "8 samples (seed 1), each followed by its 5 nearest training images in pixel space"
    if model.offers("complete") and wanted("completions.png", "heatmap.png"):  # the likelihood models
        test_images, test_labels = data.load_arrays(entry_recipe.data[0], "test", image_size=entry_recipe.image_size)
        # 8 images spread over the split (it holds its classes in order: the first 8 are all zeros).
        chosen = np.linspace(0, len(test_images) - 1, 8).round().astype(int)
        images = test_images[chosen]
        labels = test_labels[chosen] if classes else None  # a conditional model is given each image's true class
        given = ", each given its true class" if classes else ""
        rows = analysis.completion_grid(model, images, analysis.occlusion_mask("bottom-half", model.image_shape),
                                        samples=3, seed=0, labels=labels)
        save_png(folder / "completions.png", make_grid(rows, columns=5, scale=scale))
        grids["completions.png"] = ("8 test images spread over the split, each beside its bottom half occluded "
                                    f"(grey checkerboard) and 3 completions (seeds 0, 1, 2{given})")
        grid, _, scale = analysis.model_heatmap(model, images, labels)
        save_png(folder / "heatmap.png", grid)
        grids["heatmap.png"] = (f"8 test images above their per-pixel NLL heatmaps{given}: where the model finds "
                                f"them surprising ({scale})")
    return grids


def _add_missing_grids(model, entry_recipe, folder: Path, grids: dict) -> dict:
    """Draw the pictures an entry's card lacks (one built before keras-gen drew them), each
    written beside the entry and renamed into it; the existing ones stay. Returns the card's
    `{file: caption}`, the existing ones first."""
    remove_orphaned_temporaries(folder, "grids")  # a killed evaluation's
    staging = writer_temporary_dir(folder, "grids")  # the folder is checked writable
    try:
        added = _write_grids(model, entry_recipe, staging, skip=[f for f in grids if (folder / f).is_file()])
        for file in added:  # each written atomically and synced (images.save_png)
            (staging / file).chmod(0o644)
            os.replace(staging / file, folder / file)
        fsync_dir(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**grids, **added}


def _swap_in(new: Path, folder: Path) -> None:
    """Replace `folder` by `new` with two renames; if the second fails, put the old one back."""
    old = folder.parent / f".{folder.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    fsync_tree(new)  # the new entry is on disk before it takes the old one's name
    os.replace(folder, old)
    try:
        os.replace(new, folder)
        fsync_dir(folder.parent)
    except BaseException:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
