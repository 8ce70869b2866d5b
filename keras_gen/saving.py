"""Loading models from what a user names: a run folder, a `.keras` file or a zoo entry."""
from __future__ import annotations

import json
import shlex
import zipfile
import zlib
from pathlib import Path

from keras_gen.errors import KerasGenError, first_line


def check_keras_file(path: Path) -> None:
    """Say in one line what is wrong with a file that cannot be a saved keras-gen model, before
    Keras parses it (Keras reports an empty, truncated or foreign file as "File not found").

    Checks: it is a file, non-empty, a whole zip archive (every member's CRC), with the
    `config.json` of a model registered by keras-gen.
    """
    if path.is_dir():
        raise KerasGenError(f"{str(path)!r} is a folder, not a .keras model file")
    if not path.is_file():
        raise KerasGenError(f"model file {str(path)!r} does not exist")
    where = f"cannot load {str(path)!r}"
    try:
        size = path.stat().st_size
        if size == 0:
            raise KerasGenError(f"{where}: the file is empty (0 bytes), not a saved model")
        if not zipfile.is_zipfile(path):
            raise KerasGenError(f"{where}: not a .keras model file (a .keras file is a zip archive; this one is "
                                f"truncated or another kind of file, {size} bytes)")
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise KerasGenError(f"{where}: the archive is corrupt ({broken!r} fails its checksum)")
            if "config.json" not in archive.namelist():
                raise KerasGenError(f"{where}: a zip archive without config.json, not a .keras model file")
            config = json.loads(archive.read("config.json"))
    except KerasGenError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, RuntimeError,
            NotImplementedError) as exc:
        raise KerasGenError(f"{where}: the archive is unreadable or corrupt ({str(exc)[:200] or type(exc).__name__})") from None
    except (ValueError, UnicodeDecodeError):
        raise KerasGenError(f"{where}: its config.json is not valid JSON (corrupt file)") from None
    registered = config.get("registered_name") if isinstance(config, dict) else None
    if isinstance(registered, str) and registered.startswith("keras_gen>"):
        return
    if isinstance(registered, str):  # a user's own GenerativeModel subclass, registered with Keras
        import keras

        from keras_gen.models import GenerativeModel

        cls = keras.saving.get_registered_object(registered)
        if isinstance(cls, type) and issubclass(cls, GenerativeModel):
            return
    name = config.get("class_name", "?") if isinstance(config, dict) else type(config).__name__
    raise KerasGenError(f"{str(path)!r} holds a {name}, not a keras-gen model")


def load_keras_file(path):
    """`keras.models.load_model` (safe mode) with a one-line error for missing or corrupt files."""
    import keras

    from keras_gen.models import GenerativeModel

    path = Path(path)
    check_keras_file(path)
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # zip, h5 and config errors all mean the same to a user
        detail = first_line(exc)[:200]
        raise KerasGenError(f"cannot load {str(path)!r}: not a valid keras-gen model file ({detail})") from None
    if not isinstance(model, GenerativeModel):
        raise KerasGenError(f"{str(path)!r} holds a {type(model).__name__}, not a keras-gen model")
    return model


def with_precision(model, precision=None):
    """`model` built in `precision` ("auto", "float32" or "mixed_bfloat16"; None keeps its
    own), with the same weights (a keras-gen model keeps float32 weights in either policy).
    A model already in that precision comes back as it is; another is rebuilt from its
    config and given the weights, uncompiled (for sampling, scoring and export, not for
    continuing training: the optimizer state stays with the original)."""
    from keras_gen.hardware import resolve_precision
    from keras_gen.recipe import PRECISIONS

    if precision is None:
        return model
    if precision not in PRECISIONS:
        raise KerasGenError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    wanted = resolve_precision(precision)
    if wanted == model.get_config().get("precision"):
        return model
    rebuilt = type(model).from_config({**model.get_config(), "precision": wanted})
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def load_source(source: str, precision=None):
    """A model from a run folder (its `model.keras`), a `.keras` file, a zoo entry name, or a
    zoo entry's folder (one of the user's own zoo),
    in its own precision or in `precision` ("auto", "float32", "mixed_bfloat16";
    `with_precision`).

    Returns `(model, name)`: `name` is what to call it in an export.
    """
    model, name = _load_source(source, precision)
    return with_precision(model, precision), name


def _load_source(source, precision):
    from keras_gen import zoo

    if not str(source).strip():
        raise KerasGenError("no model named: give a run folder, a .keras file or a zoo entry")
    if "\0" in str(source):
        raise KerasGenError(f"{source!r} contains a NUL character: not a run folder, a .keras file nor a zoo entry")
    path = Path(source)
    if path.is_dir():
        if (path / "model.keras").is_file():
            return load_keras_file(path / "model.keras"), path.resolve().name
        entry = zoo.entry_of_folder(path)  # an entry of the user's own zoo (`keras-gen zoo build --zoo-dir`)
        if entry is not None:
            name, zoo_dir = entry
            return zoo.load(name, zoo_dir=zoo_dir, precision=precision), name
        if (path / "recipe.json").is_file():  # a run that has not finished: interrupted, killed or running
            from keras_gen import resume

            newest = resume.newest_checkpoint(path / "checkpoints")
            use = f", or use its newest checkpoint, {newest}" if newest else ""
            raise KerasGenError(f"{source!r} is a run that has not finished (no model.keras yet): resume it with "
                                f"keras-gen train --resume {shlex.quote(str(source))}{use}")
        hidden = (f"; it hides the zoo entry {source!r}: run from another folder, or rename this one"
                  if source in zoo.list() else "")
        raise KerasGenError(f"{source!r} is a folder but holds no model.keras nor recipe.json (not a keras-gen run "
                            f"folder nor a zoo entry's){hidden}")
    if path.suffix == ".keras" or path.exists():
        return load_keras_file(path), path.stem
    if source in zoo.list():
        return zoo.load(source, precision=precision), source
    raise KerasGenError(
        f"{source!r} is neither a run folder, a .keras file nor a zoo entry{zoo.did_you_mean(source)}; zoo entries: "
        f"{', '.join(zoo.list()) or 'none'}"
    )
