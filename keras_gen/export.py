"""SavedModel export in TF Serving's layout: `<out>/<name>/<version>/`.

Each of the model's `serving_endpoints()` becomes a named signature (the first one is also
`serving_default` unless one is called that). The export is written to a non-numeric
temporary folder beside the versions and renamed into place, because TF Serving polls the
base folder and loads any numbered folder that appears.
"""
from __future__ import annotations

import re
from pathlib import Path

from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def next_version(base: Path) -> int:
    """One more than the largest integer-named folder in `base` (1 for none)."""
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export(model, out, name: str, version: int | None = None) -> Path:
    """Export `model` as `<out>/<name>/<version>/` and return that path.

    Args:
      model: a keras-gen `GenerativeModel`.
      out: the model base folder's parent (TF Serving's `--model_base_path` is `<out>/<name>`).
      name: the served model's name.
      version: an integer; by default the next free one.
    """
    import keras

    if not _NAME.match(name):
        raise KerasGenError(f"export name {name!r} must be letters, digits, '_', '-' or '.'")
    base = ensure_writable_dir(Path(out) / name)
    version = next_version(base) if version is None else int(version)
    final = base / str(version)
    if final.exists():
        raise KerasGenError(f"{final} already exists; TF Serving versions are immutable")

    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in model.serving_endpoints():
        archive.add_endpoint(endpoint.name, endpoint.fn, input_signature=endpoint.input_signature)
    with atomic_path(final) as tmp:
        archive.write_out(str(tmp), verbose=False)
    return final


def describe(model) -> str:
    """Human-readable list of the signatures an export of `model` carries."""
    endpoints = model.serving_endpoints()
    lines = [f"  {e.name}: {e.doc}" for e in endpoints]
    if all(e.name != "serving_default" for e in endpoints):
        lines.append(f"  serving_default: same as {endpoints[0].name}")
    return "\n".join(lines)
