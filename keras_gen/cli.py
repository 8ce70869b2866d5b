"""`keras-gen`: train, sample, export and build zoo models from the shell.

Argument parsing and `--help` import no TensorFlow; each command imports what it needs.
Bad input ends in one line on stderr and a non-zero exit (1; 2 for usage errors).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from keras_gen import registry
from keras_gen._version import __version__
from keras_gen.errors import KerasGenError
from keras_gen.recipe import PRECISIONS, Recipe, check_data_name
from keras_gen.seeds import check_seed


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
    try:
        return check_data_name(value)
    except KerasGenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser():
    p = _Parser(prog="keras-gen", description="Generative and adversarial models for Keras 3.")
    p.add_argument("--version", action="version", version=f"keras-gen {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the models and zoo entries")

    t = sub.add_parser(
        "train",
        help="train a model from a recipe; writes a run folder",
        description="Train MODEL (or the model of --recipe FILE). Flags and --set key=value change the recipe; "
        "run.json records the recipe that ran.",
    )
    t.add_argument("model", nargs="?", type=_model_name, help=f"one of: {', '.join(sorted(registry.MODELS))}")
    t.add_argument("--recipe", metavar="FILE", help="a recipe JSON file (e.g. zoo/<entry>/recipe.json)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the recipe: epochs=5, hparams.latent_dim=32, compile.loss=hinge (values are JSON)")
    t.add_argument("--data", type=_data_name, help="mnist5k (default), digits or tfds:<name>")
    t.add_argument("--image-size", type=_positive, help="resize images to SIZE x SIZE (digits, tfds)")
    t.add_argument("--download", action="store_true", help="let tensorflow-datasets download a tfds: dataset")
    t.add_argument("--epochs", type=_positive, help="default: the model's")
    t.add_argument("--batch-size", type=_positive, help="default: the model's")
    t.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    t.add_argument("--seed", type=_seed)
    t.add_argument("--precision", choices=PRECISIONS)
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

    i = sub.add_parser("interpolate", help="a grid of latent interpolations (GANs): one path per row")
    i.add_argument("source", help="run folder, .keras file or zoo entry")
    i.add_argument("--rows", type=_positive, default=8)
    i.add_argument("--steps", type=_positive, default=10, help="images per row, both ends included")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    i.add_argument("--label", type=int, help="class of every row (conditional models; default: row r shows class r)")
    i.add_argument("--seed", type=_seed, default=0)
    i.add_argument("--out", default="interpolation.png")

    nn = sub.add_parser("neighbours", help="samples beside their nearest training images")
    nn.add_argument("source", help="run folder, .keras file or zoo entry")
    nn.add_argument("--data", type=_data_name, default="mnist5k", help="whose training split to search")
    nn.add_argument("--image-size", type=_positive)
    nn.add_argument("--n", type=_positive, default=8, help="samples, one per row")
    nn.add_argument("--k", type=_positive, default=5, help="neighbours per sample")
    nn.add_argument("--seed", type=_seed, default=0)
    nn.add_argument("--space", choices=["pixels", "features"], default="pixels",
                    help="distances between pixels, or in the shipped feature network's space (mnist5k)")
    nn.add_argument("--out", default="neighbours.png")

    pr = sub.add_parser("probe", help="linear probe on a GAN's discriminator features (test accuracy)")
    pr.add_argument("source", help="run folder, .keras file or zoo entry")
    pr.add_argument("--data", type=_data_name, default="mnist5k")
    pr.add_argument("--image-size", type=_positive)

    z = sub.add_parser("zoo", help="zoo entries")
    zsub = z.add_subparsers(dest="zoo_command", required=True, parser_class=_Parser)
    zsub.add_parser("list", help="list zoo entries")
    zb = zsub.add_parser("build", help="retrain an entry from its recipe")
    zb.add_argument("entry")
    zt = zsub.add_parser("table", help="every entry's figures as a markdown table (from their metadata)")
    zt.add_argument("--readme", help="write it into this file's <!-- zoo-table --> block instead of printing it")
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
        print(f"  {spec.name:14s} {spec.summary}")
    print("zoo entries:")
    for name in zoo.list():
        print(f"  {name}")


def recipe_from_args(args) -> Recipe:
    """The recipe a `train` command line asks for: --recipe FILE or MODEL, then flags and --set."""
    if args.recipe:
        recipe = Recipe.from_file(args.recipe)
        if args.model and args.model != recipe.model:
            raise KerasGenError(f"recipe {args.recipe!r} trains {recipe.model}, not {args.model}")
    elif args.model:
        recipe = Recipe(model=args.model)
    else:
        raise KerasGenError("name a model or give --recipe FILE (see keras-gen train --help)")
    flags = {
        "data": [args.data] if args.data else None,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "precision": args.precision,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    if args.xla:
        overrides.append("compile.jit_compile=true")
    return recipe.with_overrides(overrides + args.overrides)


def cmd_train(args):
    import time

    recipe = recipe_from_args(args)
    out = args.out or os.path.join(
        "runs", f"{recipe.model}-{recipe.data[0].replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    _import_tensorflow_quietly()
    from keras_gen import training

    _, info = training.train(recipe, out, download=args.download)
    epochs = info["recipe"]["epochs"]
    test = f"; test {info['test']}" if info["test"] else ""
    print(f"trained {recipe.model} for {epochs} epoch{'s' if epochs != 1 else ''} in {info['train_seconds']:.0f} s{test}")
    print(f"run folder: {out} (run.json, model.keras, samples/, logs/, checkpoints/)")


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png_out(path):
    """`--out` for a picture: a .png name in a writable folder, never a folder or a file that
    is not a PNG already (a model, a checkpoint: data we must not overwrite)."""
    from keras_gen.files import ensure_writable_dir

    if os.path.isdir(path):
        raise KerasGenError(f"--out {path!r} is a folder; give a .png file name")
    if not path.lower().endswith(".png"):
        raise KerasGenError(f"--out {path!r}: pictures are written as PNG; give a name ending in .png")
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read(len(PNG_MAGIC)) != PNG_MAGIC:
                raise KerasGenError(f"--out {path!r} exists and is not a PNG; refusing to overwrite it")
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)))


def _load_model(source, capability):
    _import_tensorflow_quietly()
    from keras_gen.saving import load_source

    model, name = load_source(source)
    if not model.offers(capability):
        raise KerasGenError(f"{type(model).__name__} does not offer {capability}")
    return model, name


def cmd_sample(args):
    _check_png_out(args.out)
    model, _ = _load_model(args.source, "sample")
    from keras_gen.images import sample_grid, save_png

    save_png(args.out, sample_grid(model, args.n, args.seed))
    print(f"wrote {args.n} samples (seed {args.seed}) to {args.out}")


def cmd_interpolate(args):
    _check_png_out(args.out)
    model, _ = _load_model(args.source, "interpolate")
    from keras_gen import analysis
    from keras_gen.images import make_grid, save_png

    if args.label is not None and not getattr(model, "num_classes", None):
        raise KerasGenError(f"{type(model).__name__} is unconditional; it takes no --label")
    images = analysis.interpolation_grid(model, args.rows, args.steps, args.seed, args.method, args.label)
    save_png(args.out, make_grid(images, columns=args.steps))
    print(f"wrote {args.rows} {args.method} interpolations of {args.steps} steps (seed {args.seed}) to {args.out}")


def cmd_neighbours(args):
    _check_png_out(args.out)
    model, _ = _load_model(args.source, "sample")
    from keras_gen import analysis, data
    from keras_gen.images import make_grid, save_png

    train, _ = data.load_arrays(args.data, "train", image_size=args.image_size)
    if train.shape[1:] != tuple(model.image_shape):
        raise KerasGenError(f"{args.data} images are {train.shape[1:]}, the model makes {tuple(model.image_shape)}")
    features = None
    if args.space == "features":
        from keras_gen import metrics, training

        if args.data not in training.FEATURE_NETWORKS:
            raise KerasGenError(f"no feature network for {args.data}; feature networks exist for "
                                f"{', '.join(training.FEATURE_NETWORKS)} (keras-gen uses pixels elsewhere)")
        features = metrics.load_feature_network(training.FEATURE_NETWORKS[args.data]).features
    samples = model.sample(args.n, args.seed)
    grid = analysis.neighbour_grid(samples, train, k=args.k, features=features)
    save_png(args.out, make_grid(grid, columns=args.k + 1))
    print(f"wrote {args.n} samples (seed {args.seed}), each beside its {args.k} nearest {args.data} training images "
          f"({args.space}), to {args.out}")


def cmd_probe(args):
    model, _ = _load_model(args.source, "discriminator_features")
    from keras_gen import analysis, data

    train_x, train_y = data.load_arrays(args.data, "train", image_size=args.image_size)
    test_x, test_y = data.load_arrays(args.data, "test", image_size=args.image_size)
    result = analysis.discriminator_probe(model, train_x, train_y, test_x, test_y)
    print(f"linear probe on discriminator features, {args.data}: test accuracy {result['accuracy']:.4f} "
          f"(chance {result['chance']:.4f}; {len(train_y)} train / {len(test_y)} test images)")


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
    if args.zoo_command == "table":
        if args.readme:
            zoo.write_readme_table(args.readme)
            print(f"wrote the zoo table into {args.readme}")
        else:
            print(zoo.results_table())
        return
    zoo.entry_dir(args.entry)  # fail fast on an unknown name, before importing TensorFlow
    _import_tensorflow_quietly()
    print(f"rebuilt {zoo.build(args.entry)}")


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "sample": cmd_sample,
    "interpolate": cmd_interpolate,
    "neighbours": cmd_neighbours,
    "probe": cmd_probe,
    "export": cmd_export,
    "zoo": cmd_zoo,
}


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
