"""`keras-gen`: train, sample, export and build zoo models from the shell.

Argument parsing and `--help` import no TensorFlow; each command imports what it needs.
Bad input ends in one line on stderr and a non-zero exit (1; 2 for usage errors).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from keras_gen import registry
from keras_gen._version import __version__
from keras_gen.errors import KerasGenError
from keras_gen.seeds import check_seed

DATA_NAME = re.compile(r"^(mnist5k|digits|tfds:[A-Za-z0-9_./:-]+)$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(value):
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def _seed(value):
    try:
        return check_seed(int(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    except KerasGenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_name(value):
    if value not in registry.MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {value!r} (known: {', '.join(sorted(registry.MODELS))})")
    return value


def _data_name(value):
    if not DATA_NAME.match(value):
        raise argparse.ArgumentTypeError(f"unknown dataset {value!r} (embedded: mnist5k, digits; or tfds:<name>)")
    return value


def build_parser():
    p = _Parser(prog="keras-gen", description="Generative and adversarial models for Keras 3.")
    p.add_argument("--version", action="version", version=f"keras-gen {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the models and zoo entries")

    t = sub.add_parser("train", help="train a model; writes a run folder")
    t.add_argument("model", type=_model_name, help=f"one of: {', '.join(sorted(registry.MODELS))}")
    t.add_argument("--data", type=_data_name, default="mnist5k", help="mnist5k (default), digits or tfds:<name>")
    t.add_argument("--image-size", type=_positive, help="resize images to SIZE x SIZE (digits, tfds)")
    t.add_argument("--download", action="store_true", help="let tensorflow-datasets download a tfds: dataset")
    t.add_argument("--epochs", type=_positive, help="default: the model's")
    t.add_argument("--batch-size", type=_positive, help="default: the model's")
    t.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    t.add_argument("--xla", action="store_true", help="compile the train step with XLA (slower on the CPUs we measured)")

    s = sub.add_parser("sample", help="write a grid of samples as PNG")
    s.add_argument("source", help="run folder, .keras file or zoo entry")
    s.add_argument("--n", type=_positive, default=64)
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--out", default="samples.png")

    e = sub.add_parser("export", help="export a SavedModel for TF Serving: OUT/NAME/VERSION/")
    e.add_argument("source", help="run folder, .keras file or zoo entry")
    e.add_argument("--out", required=True, help="folder that holds the served model's base folder")
    e.add_argument("--name", help="served model name (default: run folder or entry name)")
    e.add_argument("--version", type=_positive, help="default: the next free integer")

    z = sub.add_parser("zoo", help="zoo entries")
    zsub = z.add_subparsers(dest="zoo_command", required=True, parser_class=_Parser)
    zsub.add_parser("list", help="list zoo entries")
    zb = zsub.add_parser("build", help="retrain an entry from its recipe")
    zb.add_argument("entry")
    return p


def _import_tensorflow_quietly():
    """Import TensorFlow with its start-up chatter (oneDNN and CUDA probing) kept off stderr.

    Those lines are printed by C++ code at import, before TF_CPP_MIN_LOG_LEVEL is read, so
    stderr is pointed at /dev/null for the import alone. The CLI's own errors stay one line.
    """
    # ERROR-level CUDA probing failures on a CPU machine; real errors reach the user as
    # Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    # Python-side warnings (absl, urllib3 retries) would bury the one-line errors.
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def cmd_list(args):
    from keras_gen import zoo

    print("models:")
    for spec in registry.MODELS.values():
        print(f"  {spec.name:10s} {spec.summary}")
    print("zoo entries:")
    for name in zoo.list():
        print(f"  {name}")


def cmd_train(args):
    import time

    out = args.out or os.path.join("runs", f"{args.model}-{args.data.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    _import_tensorflow_quietly()
    from keras_gen import training

    _, info = training.train(
        args.model,
        out=out,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        image_size=args.image_size,
        precision=args.precision,
        jit_compile=True if args.xla else None,
        download=args.download,
    )
    test = f"; test {info['test']}" if info["test"] else ""
    print(f"trained {args.model} for {info['epochs']} epochs in {info['train_seconds']:.0f} s{test}")
    print(f"run folder: {out} (model.keras, samples/, logs/, checkpoints/)")


def cmd_sample(args):
    from keras_gen.files import ensure_writable_dir

    if os.path.isdir(args.out):
        raise KerasGenError(f"--out {args.out!r} is a folder; give a .png file name")
    ensure_writable_dir(os.path.dirname(os.path.abspath(args.out)))
    _import_tensorflow_quietly()
    from keras_gen.images import make_grid, save_png
    from keras_gen.saving import load_source

    model, _ = load_source(args.source)
    save_png(args.out, make_grid(model.sample(args.n, args.seed)))
    print(f"wrote {args.n} samples (seed {args.seed}) to {args.out}")


def cmd_export(args):
    from keras_gen.files import ensure_writable_dir

    ensure_writable_dir(args.out)
    _import_tensorflow_quietly()
    from keras_gen import export
    from keras_gen.saving import load_source

    model, name = load_source(args.source)
    path = export.export(model, args.out, args.name or name, args.version)
    print(f"exported to {path}\nsignatures:\n{export.describe(model)}")


def cmd_zoo(args):
    from keras_gen import zoo

    if args.zoo_command == "list":
        for name in zoo.list():
            print(name)
        return
    zoo.entry_dir(args.entry)  # fail fast on an unknown name, before importing TensorFlow
    _import_tensorflow_quietly()
    print(f"rebuilt {zoo.build(args.entry)}")


COMMANDS = {"list": cmd_list, "train": cmd_train, "sample": cmd_sample, "export": cmd_export, "zoo": cmd_zoo}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except KerasGenError as exc:
        print(f"keras-gen: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keras-gen: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
