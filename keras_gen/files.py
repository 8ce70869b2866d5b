"""Atomic writes: a file or folder appears whole under its final name, or not at all.

Everything keras-gen writes (checkpoints, `.keras` files, PNG grids, exports) goes to a
temporary name in the destination folder and is renamed into place, so an interrupted run
never leaves a half-written file where a good one stood, and TF Serving (which polls for
numbered folders) never sees a partial export.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from keras_gen.errors import KerasGenError


def ensure_writable_dir(path) -> Path:
    """Create `path` (and parents) and check it can be written; a clear error otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KerasGenError(f"cannot create output folder {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise KerasGenError(f"output folder {str(path)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(final, suffix: str = ""):
    """Yield a temporary path beside `final`; rename it to `final` if the block succeeds.

    `suffix` keeps an extension that a writer insists on (Keras wants `.keras`, `.weights.h5`).
    Works for files and folders. On error the temporary is removed and `final` is untouched.
    """
    final = Path(final)
    ensure_writable_dir(final.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", suffix=suffix, dir=final.parent)
    os.close(fd)
    os.unlink(tmp)  # the writer creates it (some writers refuse an existing path)
    tmp = Path(tmp)
    try:
        yield tmp
        if final.is_dir():
            raise KerasGenError(f"{str(final)!r} is an existing folder; nothing was written over it")
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
