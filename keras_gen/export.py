"""SavedModel export in TF Serving's layout: `<out>/<name>/<version>/`.

Each of the model's `serving_endpoints()` becomes a named signature (the first one is also
`serving_default` unless one is called that). The export is written to a non-numeric
temporary folder beside the versions and renamed into place, because TF Serving polls the
base folder and loads any numbered folder that appears. The rename is also what claims a
version: it fails if another export already holds that number (a finished export is never
empty), so simultaneous exports to one folder each get their own version.

Every input of every signature is checked in the graph against its declared shape
(`tf.ensure_shape`): a client that sends z `[2, 7]` to a model of `latent_dim` 8 gets an
InvalidArgumentError naming the expected shape `[?,8]`, not a failure deep inside a network.
"""
from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from keras_gen.errors import KerasGenError
from keras_gen.files import ensure_writable_dir, publish_dir, remove_orphaned_temporaries, writer_temporary_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# TF Serving reads version folder names as int64.
MAX_VERSION = 2**63 - 1


def _version_of(folder: Path) -> int | None:
    """The version a folder's name gives TF Serving (ASCII digits, 1 to `MAX_VERSION`), or None."""
    name = folder.name
    if not (name.isascii() and name.isdigit()) or not folder.is_dir():  # "²" and "٣" are digits too
        return None
    number = int(name)
    return number if 1 <= number <= MAX_VERSION else None


def next_version(base: Path) -> int:
    """One more than the largest version in `base` (1 for none); a one-line error when that
    would pass `MAX_VERSION`, the largest TF Serving reads."""
    number = max((v for v in map(_version_of, base.iterdir()) if v is not None), default=0) + 1
    if number > MAX_VERSION:
        raise KerasGenError(f"{base} holds version {MAX_VERSION}, the largest TF Serving reads: no later "
                            "version can follow; give --version a free number or export to another folder")
    return number


def _shape_checked(endpoint):
    """`endpoint.fn` with each input first checked against its spec's shape, in the graph.

    A signature's declared shapes are not enforced when it is called (by TF Serving or by
    `loaded.signatures[...]`), and the graph optimiser may even fold a rank check away using
    them; `EnsureShape` is checked at run time.
    """
    import tensorflow as tf

    specs = endpoint.input_signature

    def fn(*inputs):
        return endpoint.fn(*(tf.ensure_shape(x, spec.shape, name=f"check_{spec.name}_shape") if spec.name else x
                             for x, spec in zip(inputs, specs)))

    fn.__name__ = endpoint.name  # TF's own errors then name the signature (e.g. a wrong dtype)
    return fn


def _publish(tmp: Path, base: Path, version: int, explicit: bool) -> Path:
    """Rename the finished export `tmp` to `base/<version>`, atomically; the rename is the claim.

    Renaming a folder onto a non-empty one fails, so two exports racing for one number cannot
    both win: the loser takes the next free number (or, for a version the user named, stops).
    """
    while True:
        final = base / str(version)
        try:
            if final.exists() and not (final.is_dir() and not any(final.iterdir())):
                raise FileExistsError(errno.EEXIST, "exists", str(final))
            publish_dir(tmp, final)  # the rename replaces only an empty folder
            return final
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise KerasGenError(f"cannot write the export to {final}: {exc.strerror or exc}") from None
            if explicit:
                raise KerasGenError(f"{final} already exists; TF Serving versions are immutable") from None
            version = max(version + 1, next_version(base))


def export(model, out, name: str, version: int | None = None) -> Path:
    """Export `model` as `<out>/<name>/<version>/` and return that path.

    Args:
      model: a keras-gen `GenerativeModel`.
      out: the model base folder's parent (TF Serving's `--model_base_path` is `<out>/<name>`).
      name: the served model's name.
      version: an integer; by default the next free one.
    """
    if not _NAME.match(name):
        raise KerasGenError(f"export name {name!r} must be letters, digits, '_', '-' or '.', "
                            "beginning with a letter or digit")
    explicit = version is not None
    if explicit:
        if isinstance(version, bool) or not isinstance(version, int) and not str(version).isdigit():
            raise KerasGenError(f"version must be a whole number from 1 to {MAX_VERSION}, got {version!r}")
        version = int(version)
        if not 1 <= version <= MAX_VERSION:
            raise KerasGenError(f"version must be a whole number from 1 to {MAX_VERSION}, got {version}")
    base = ensure_writable_dir(Path(out) / name)
    taken = base / str(version) if explicit else None
    if explicit and taken.exists() and not (taken.is_dir() and not any(taken.iterdir())):
        # an empty folder is no version yet: the export goes into it, as `_publish` allows
        raise KerasGenError(f"{taken} already exists; TF Serving versions are immutable")
    if not explicit:
        next_version(base)  # refuses now, before anything is written, when no version can follow
    # A non-numeric temporary name, so TF Serving never loads a half-written version; a
    # killed export's is removed by the next one.
    return _write(model, base, name, lambda tmp: _publish(tmp, base, version if explicit else next_version(base),
                                                          explicit))


def export_to(model, path) -> Path:
    """The export of `export` written to the folder `path` itself (a new folder, or an empty
    one), through a temporary folder beside it and a rename: what `model.export(path)` does,
    Keras' own call, for a keras-gen model."""
    path = Path(path)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise KerasGenError(f"{path} already exists; give a new folder for the export")
    parent = ensure_writable_dir(path.parent)

    def publish(tmp):
        try:
            publish_dir(tmp, path)
        except OSError as exc:  # another writer took the name meanwhile
            raise KerasGenError(f"cannot write the export to {path}: {exc.strerror or exc}") from None
        return path

    return _write(model, parent, path.name, publish)


def _archive():
    """Keras' `ExportArchive`, tracing each signature once instead of twice.

    Keras first traces every endpoint to list the variables it uses, then
    `tf.saved_model.save` traces it again: TensorFlow keys its trace cache on whether it runs
    inside a save (and that save's variable policy), so the first trace is not reused. For
    the autoregressive samplers, whose graphs take seconds to build, that doubled the export's
    time. Here Keras' first trace runs in a save context with the options `write_out` saves
    with (the defaults), so the save finds it. (Private TensorFlow and Keras names: should
    either change, the export is as Keras makes it, only slower; a test counts the traces.)
    """
    import keras

    archive = keras.export.ExportArchive()  # an instance of the backend's class, not a subclass
    list_variables = getattr(archive, "_filter_and_track_resources", None)
    try:
        from tensorflow.python.saved_model import save_context, save_options
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return archive
    if list_variables is None:  # pragma: no cover - another Keras
        return archive

    def in_save_context():
        if save_context.in_save_context():
            return list_variables()
        with save_context.save_context(save_options.SaveOptions()):
            return list_variables()

    archive._filter_and_track_resources = in_save_context
    return archive


def _write(model, folder: Path, name: str, publish) -> Path:
    """Write `model`'s signatures to a temporary folder in `folder` and `publish` it."""
    import tensorflow as tf

    archive = _archive()
    archive.track(model)
    for endpoint in model.serving_endpoints():
        archive.add_endpoint(endpoint.name, _shape_checked(endpoint), input_signature=endpoint.input_signature)
    remove_orphaned_temporaries(folder, name)
    tmp = writer_temporary_dir(folder, name)
    try:
        archive.write_out(str(tmp), verbose=False)
        return publish(tmp)
    except OSError as exc:
        raise KerasGenError(f"cannot write the export to {folder}: {exc.strerror or exc}") from None
    except tf.errors.OpError as exc:
        # TensorFlow's own writers (variables, the graph) report a full disk as an op error
        # (ResourceExhausted for ENOSPC, OutOfRange for EFBIG) whose message ends with the
        # system's reason.
        reason = exc.message.rsplit(";", 1)[-1].split("[Op:")[0].strip() or type(exc).__name__
        raise KerasGenError(f"cannot write the export to {folder}: {reason}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when published


def describe(model) -> str:
    """Human-readable list of the signatures an export of `model` carries."""
    endpoints = model.serving_endpoints()
    lines = [f"  {e.name}: {e.doc}" for e in endpoints]
    if all(e.name != "serving_default" for e in endpoints):
        lines.append(f"  serving_default: same as {endpoints[0].name}")
    return "\n".join(lines)
