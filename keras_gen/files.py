"""Atomic writes: a file or folder appears whole under its final name, or not at all.

Everything keras-gen writes (checkpoints, `.keras` files, PNG grids, exports) goes to a
temporary name in the destination folder and is renamed into place, so an interrupted run
never leaves a half-written file where a good one stood, and TF Serving (which polls for
numbered folders) never sees a partial export. The written file (every file of a written
folder) is `fsync`ed before the rename and the folder after it, so what a run reports as
saved survives a power cut, not only a killed process. A killed process can leave a
temporary (`.NAME.tmp-...`) behind; `remove_stale_temporaries` clears them (a resumed run
does). Folders that other processes may be writing into at the same time (an export's model
folder, the zoo) get writer folders named after their host and process
(`writer_temporary_dir`), so the next writer removes a killed one's leftovers and leaves a
live one's alone (`remove_orphaned_temporaries`).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from keras_gen.errors import KerasGenError


def ensure_writable_dir(path) -> Path:
    """Create `path` (and parents) and check it can be written; a clear error otherwise."""
    if "\0" in str(path):
        raise KerasGenError(f"output folder {str(path)!r} contains a NUL character")
    if str(path) == "":  # Path("") is ".": an empty argument would write into the working folder
        raise KerasGenError("the output folder is an empty name; give a folder")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file there, or on the way
        raise KerasGenError(f"cannot create output folder {str(path)!r}: it or a folder above it is a file") from None
    except OSError as exc:
        raise KerasGenError(f"cannot create output folder {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise KerasGenError(f"output folder {str(path)!r} is not writable")
    return path


def missing_folders(path) -> list[Path]:
    """The folders `ensure_writable_dir(path)` would create, deepest first."""
    missing = []
    if "\0" not in str(path):
        folder = Path(path).absolute()
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
    return missing


def remove_empty_folders(folders):
    """Remove `folders` (deepest first), stopping at the first that is not empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def made_dirs(path):
    """`ensure_writable_dir(path)` for the block; if the block fails, the folders it created
    are removed again (those still empty), so a failed command leaves no empty folders."""
    path = Path(path)
    missing = missing_folders(path)
    ensure_writable_dir(path)
    try:
        yield path
    except BaseException:
        remove_empty_folders(missing)
        raise


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
        fsync_tree(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


TEMPORARY_MARK = ".tmp-"  # atomic_path's temporaries are named .<final name>.tmp-<random><suffix>


def fsync_dir(folder):
    """Make a folder's entries (a rename into it) durable; a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename still happened
        pass
    finally:
        os.close(fd)


def fsync_tree(path):
    """`fsync` a file, or every file and folder under a folder (deepest first)."""
    path = Path(path)
    if path.is_dir():
        for root, dirs, names in os.walk(path, topdown=False):
            for name in names:
                fsync_tree(Path(root) / name)
            fsync_dir(root)
        return
    if not path.exists():  # a writer that wrote nothing; the rename will fail clearly
        return
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporaries a killed writer left under `folder` (files and folders named
    `.NAME.tmp-...` by `atomic_path`); returns what was removed. Only for a folder no other
    process is writing to (a resumed run's own folder)."""
    removed = []
    for root, dirs, names in os.walk(folder):
        for name in [*names, *dirs]:
            if name.startswith(".") and TEMPORARY_MARK in name:
                path = Path(root) / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        dirs[:] = [d for d in dirs if not (d.startswith(".") and TEMPORARY_MARK in d)]
    return removed


def _host() -> str:
    """This machine's name as it can stand in a file name (letters, digits, '.', '_')."""
    return re.sub(r"[^A-Za-z0-9._]", "_", socket.gethostname()) or "host"


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (os.umask can only
    be read by setting it, which races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def writer_temporary_dir(folder, name: str) -> Path:
    """A new folder `.NAME.tmp-HOST-PID-RANDOM` in `folder` for a writer that will rename it
    into place (`publish_dir`); host and process id let `remove_orphaned_temporaries` tell a
    killed writer's leftovers from a live one's. Its mode is what `mkdir` gives (0o777 less
    the umask), not mkdtemp's private 0o700, which the rename would keep: a server running as
    another user (TF Serving) could not read a published export."""
    path = Path(tempfile.mkdtemp(prefix=f".{name}{TEMPORARY_MARK}{_host()}-{os.getpid()}-", dir=folder))
    path.chmod(0o777 & ~_umask())
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_orphaned_temporaries(folder, name: str) -> list[Path]:
    """Remove the `writer_temporary_dir(folder, name)` folders of writers on this host whose
    process has ended (killed mid-write); returns what was removed. Those of live processes
    (e.g. a second export to the same folder) and of other hosts stay."""
    removed = []
    prefix = f".{name}{TEMPORARY_MARK}{_host()}-"
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith(prefix) or not path.is_dir() or path.is_symlink():
            continue
        pid = path.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def publish_dir(tmp, final) -> None:
    """Make the finished folder `tmp` durable and rename it to `final` (which must not exist, or
    be an empty folder), then make the rename durable. Raises the rename's `OSError`."""
    fsync_tree(tmp)
    os.rename(tmp, final)
    fsync_dir(Path(final).parent)
