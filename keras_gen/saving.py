"""Loading models from what a user names: a run folder, a `.keras` file or a zoo entry."""
from __future__ import annotations

from pathlib import Path

from keras_gen.errors import KerasGenError


def load_keras_file(path):
    """`keras.models.load_model` (safe mode) with a one-line error for missing or corrupt files."""
    import keras

    from keras_gen.models import GenerativeModel

    path = Path(path)
    if not path.is_file():
        raise KerasGenError(f"model file {str(path)!r} does not exist")
    try:
        model = keras.models.load_model(path)
    except Exception as exc:  # zip, h5 and config errors all mean the same to a user
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise KerasGenError(f"cannot load {str(path)!r}: not a valid keras-gen model file ({detail})") from None
    if not isinstance(model, GenerativeModel):
        raise KerasGenError(f"{str(path)!r} holds a {type(model).__name__}, not a keras-gen model")
    return model


def load_source(source: str):
    """A model from a run folder (its `model.keras`), a `.keras` file, or a zoo entry name.

    Returns `(model, name)`: `name` is what to call it in an export.
    """
    from keras_gen import zoo

    path = Path(source)
    if path.is_dir():
        if (path / "model.keras").is_file():
            return load_keras_file(path / "model.keras"), path.resolve().name
        raise KerasGenError(f"{source!r} is a folder but holds no model.keras (not a keras-gen run folder)")
    if path.suffix == ".keras" or path.exists():
        return load_keras_file(path), path.stem
    if source in zoo.list():
        return zoo.load(source), source
    raise KerasGenError(
        f"{source!r} is neither a run folder, a .keras file nor a zoo entry; zoo entries: {', '.join(zoo.list()) or 'none'}"
    )
