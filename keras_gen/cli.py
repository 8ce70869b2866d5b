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
from keras_gen.errors import KerasGenError, Terminated
from keras_gen.recipe import PRECISIONS, Recipe, check_data_name
from keras_gen.seeds import check_seed, check_temperature
from keras_gen.text import count


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


def _temperature(value):
    try:
        return check_temperature(float(value))  # the models' own bounds: a usage error here
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    except KerasGenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


TEMPERATURE_HELP = ("likelihood models: draw each sub-pixel from p^(1/T), renormalised (below 1 sharper and less "
                    "varied, above 1 noisier; default 1, the model's distribution)")


def _model_name(value):
    if value not in registry.MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {value!r} (known: {', '.join(sorted(registry.MODELS))})")
    return value


def _data_name(value):
    try:
        return check_data_name(value)
    except KerasGenError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _folder(value):
    if "\0" in value or not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a folder")
    return value


def _precision_option(parser):
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="run the model in this precision instead of its own (the one it was trained in): "
                        "auto is mixed_bfloat16 only where the CPU has native bfloat16, float32 elsewhere, e.g. for a "
                        "zoo entry trained in bfloat16 on a CPU without it")


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
    t.add_argument("--recipe", metavar="FILE", help="a recipe JSON file, or a zoo entry's name for its recipe "
                   "(e.g. cgan-mnist5k)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the recipe: epochs=5, hparams.latent_dim=32, compile.loss=hinge (values are JSON)")
    t.add_argument("--data", type=_data_name, help="mnist5k (default), digits, mnistm5k, syndigits5k or tfds:<name>")
    t.add_argument("--target", type=_data_name,
                   help="domain adaptation (source-only, target-oracle, dann, adda): the target dataset; --data is "
                   "the source (default mnist5k)")
    t.add_argument("--image-size", type=_positive, help="resize images to SIZE x SIZE (digits, tfds)")
    t.add_argument("--download", action="store_true", help="let tensorflow-datasets download a tfds: dataset")
    t.add_argument("--epochs", type=_positive, help="default: the model's")
    t.add_argument("--batch-size", type=_positive, help="default: the model's")
    t.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the killed or interrupted run in RUN_DIR from its newest checkpoint, with its own "
                   "recipe (MODEL, --recipe and flags may be given only to check they agree); it ends as the "
                   "uninterrupted run would have")
    t.add_argument("--seed", type=_seed)
    t.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): mixed_bfloat16 where the CPU has native bfloat16 (AVX-512-BF16, AMX), "
                   "float32 elsewhere")
    t.add_argument("--strategy", choices=("mirrored", "multiworker"),
                   help="train on several devices with tf.distribute: mirrored (every GPU of this machine) or "
                   "multiworker (several machines, each with its TF_CONFIG; see the README). The batch size is "
                   "the global batch")
    t.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the train step with XLA, or not (--no-xla). Default: on only where it was "
                   "measured faster (AVX2-only CPUs), off on AVX-512 and AMX CPUs")
    loud = t.add_mutually_exclusive_group()
    loud.add_argument("--quiet", action="store_true", help="print only the final lines (no progress)")
    loud.add_argument("--verbose", action="store_true",
                      help="also print, first, the settings that run on this CPU (precision, XLA, strategy). Progress is a "
                      "bar on a terminal and one line per epoch when output is piped or logged")

    from keras_gen.seeds import MAX_SAMPLES

    s = sub.add_parser("sample", help="write a grid of samples as a PNG or JPEG picture (by --out's suffix)")
    s.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(s)
    s.add_argument("--n", type=_positive, default=64, help=f"samples to draw (at most {MAX_SAMPLES}); a "
                   "conditional model draws one row per class, n // classes in each (at least 1)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--temperature", type=_temperature, help=TEMPERATURE_HELP)
    s.add_argument("--out", default="samples.png")

    e = sub.add_parser("export", help="export a SavedModel for TF Serving: OUT/NAME/VERSION/")
    e.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(e)
    e.add_argument("--out", required=True, help="folder that holds the served model's base folder")
    e.add_argument("--name", help="served model name (default: run folder or entry name)")
    e.add_argument("--version", type=_positive, help="default: the next free integer")

    i = sub.add_parser("interpolate", help="a grid of latent interpolations (GANs): one path per row")
    i.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(i)
    i.add_argument("--rows", type=_positive, default=8)
    i.add_argument("--steps", type=_positive, default=10, help="images per row, both ends included")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    i.add_argument("--label", type=int, help="class of every row (conditional models; default: row r shows class r)")
    i.add_argument("--seed", type=_seed, default=0)
    i.add_argument("--out", default="interpolation.png")

    nn = sub.add_parser("neighbours", help="samples beside their nearest training images")
    nn.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(nn)
    nn.add_argument("--data", type=_data_name,
                    help="whose training split to search (default: the run's or entry's data, else mnist5k)")
    nn.add_argument("--image-size", type=_positive, help="default: the run's or entry's")
    nn.add_argument("--n", type=_positive, default=8, help="samples, one per row")
    nn.add_argument("--k", type=_positive, default=5, help="neighbours per sample")
    nn.add_argument("--seed", type=_seed, default=0)
    nn.add_argument("--space", choices=["pixels", "features"], default="pixels",
                    help="distances between pixels, or in the shipped feature network's space (mnist5k, or "
                    "digits at 28x28)")
    nn.add_argument("--features", metavar="DIR/NAME",
                    help="with --space features: a feature network built by metrics build-features")
    nn.add_argument("--out", default="neighbours.png")

    from keras_gen.analysis import OCCLUSIONS

    co = sub.add_parser(
        "complete",
        help="complete occluded test images (likelihood models)",
        description="Occlude N test images of --data (spread over its test split) and draw SAMPLES completions "
        "of each: one row per image of original, occluded input (unknown pixels as a grey checkerboard) and "
        "completions with seeds SEED, SEED + 1, ...; unknown pixels are drawn in raster order given the pixels "
        "before them.",
    )
    co.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(co)
    co.add_argument("--data", type=_data_name,
                    help="whose test split (default: the run's or entry's data, else mnist5k)")
    co.add_argument("--image-size", type=_positive, help="default: the run's or entry's")
    co.add_argument("--occlude", choices=OCCLUSIONS, default="bottom-half",
                    help="which pixels are unknown (default bottom-half; only kinds that leave known pixels before "
                    "the unknown ones in raster order)")
    co.add_argument("--n", type=_positive, default=8, help="test images, one per row")
    co.add_argument("--samples", type=_positive, default=3, help="completions per image")
    co.add_argument("--label", type=int,
                    help="class every completion is conditioned on (conditional models; default: each image's own)")
    co.add_argument("--seed", type=_seed, default=0)
    co.add_argument("--temperature", type=_temperature, help=TEMPERATURE_HELP)
    co.add_argument("--out", default="completions.png")

    hm = sub.add_parser(
        "heatmap",
        help="test images above their per-pixel NLL heatmaps (likelihood models)",
        description="Draw N test images of --data (spread over its test split) above heatmaps of -log p of each "
        "pixel given the pixels before it (conditional models: given the image's own class): where the model "
        "finds the image surprising. Black is 0 nats, white 8 bits per sub-pixel (a uniform guess) or more.",
    )
    hm.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(hm)
    hm.add_argument("--data", type=_data_name,
                    help="whose test split (default: the run's or entry's data, else mnist5k)")
    hm.add_argument("--image-size", type=_positive, help="default: the run's or entry's")
    hm.add_argument("--n", type=_positive, default=8, help="test images")
    hm.add_argument("--out", default="heatmap.png")

    pr = sub.add_parser("probe", help="linear probe on a GAN's discriminator features (test accuracy)")
    pr.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(pr)
    pr.add_argument("--data", type=_data_name,
                    help="whose train and test splits (default: the run's or entry's data, else mnist5k)")
    pr.add_argument("--image-size", type=_positive, help="default: the run's or entry's")

    ev = sub.add_parser(
        "evaluate",
        help="score a model offline: FID, KID, precision/recall, coverage, memorisation, bits/dim",
        description="Sample N images (seed SEED) and score them against the data's test split in the shipped "
        "feature network's space, beside real-vs-real (floor) and uniform-noise (ceiling) figures; conditional "
        "models add label accuracy, likelihood models test bits/dim.",
    )
    ev.add_argument("source", help="run folder, .keras file, zoo entry or zoo entry folder")
    _precision_option(ev)
    ev.add_argument("--data", type=_data_name, help="default: the run's or entry's data, else mnist5k")
    ev.add_argument("--image-size", type=_positive, help="default: the run's or entry's")
    ev.add_argument("--n", type=_positive, default=1000, help="samples to score (default 1000; compare at one n)")
    ev.add_argument("--seed", type=_seed, default=0)
    ev.add_argument("--features", metavar="DIR/NAME", help="a feature network built by metrics build-features")
    ev.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    ev.add_argument("--likelihood-only", action="store_true",
                    help="likelihood models: only test bits/dim (and Bayes accuracy), no sampling")

    m = sub.add_parser("metrics", help="feature networks of the offline metrics")
    msub = m.add_subparsers(dest="metrics_command", required=True, parser_class=_Parser)
    msub.add_parser("list", help="the shipped feature networks and what they score")
    mb = msub.add_parser("build-features", help="train a feature network from its recipe",
                         description="Retrain a shipped network (mnist28, digits28) from its fixed recipe, or a "
                         "new one for a grey 10-class dataset (--data, --image-size); writes NAME.weights.h5, "
                         "NAME.json and NAME.md into --out.")
    mb.add_argument("name")
    mb.add_argument("--out", required=True, help="folder to write the network to (never the shipped one)")
    mb.add_argument("--data", type=_data_name, help="for a new network: its dataset")
    mb.add_argument("--image-size", type=_positive, help="for a new network: its image side")
    mb.add_argument("--epochs", type=_positive, help="default: the recipe's (40)")

    z = sub.add_parser("zoo", help="zoo entries")
    zsub = z.add_subparsers(dest="zoo_command", required=True, parser_class=_Parser)
    zl = zsub.add_parser("list", help="list zoo entries")
    zb = zsub.add_parser("build", help="retrain an entry from its recipe")
    zb.add_argument("entry")
    zb.add_argument("--from-run", metavar="RUN_DIR",
                    help="take the model from this finished run of the entry's recipe instead of training again")
    ze = zsub.add_parser("evaluate", help="re-score entries with keras_gen.metrics.evaluate; rewrite their cards")
    ze.add_argument("entries", nargs="*", help="default: every entry")
    ze.add_argument("--readme", help="then rewrite this file's <!-- zoo-table --> block")
    zt = zsub.add_parser("table", help="every entry's figures as a markdown table (from their metadata)")
    zt.add_argument("--readme", help="write it into this file's <!-- zoo-table --> block instead of printing it")
    for zoo_parser in (zl, zb, ze, zt):
        zoo_parser.add_argument("--zoo-dir", metavar="DIR", type=_folder,
                                help="a folder of entries of your own, each a folder with its recipe.json "
                                     "(default: the package's zoo)")
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


def _recipe_file(value):
    """`--recipe`: a JSON file, or the name of a package zoo entry (its recipe.json; the zoo's
    folder is inside the installed package, not beside the user)."""
    from keras_gen import zoo

    if os.path.exists(value) or os.sep in value or value.endswith(".json"):
        return value
    if value in zoo.list():
        return zoo.entry_dir(value) / "recipe.json"
    raise KerasGenError(f"recipe {value!r} is neither a file nor a zoo entry{zoo.did_you_mean(value)}")


def recipe_from_args(args) -> Recipe:
    """The recipe a `train` command line asks for: --recipe FILE or MODEL, then flags and --set."""
    if args.recipe:
        recipe = Recipe.from_file(_recipe_file(args.recipe))
        if args.model and args.model != recipe.model:
            raise KerasGenError(f"recipe {args.recipe!r} trains {recipe.model}, not {args.model}")
    elif args.model:
        roles = registry.spec(args.model).data_roles
        if len(roles) == 2 and not args.target:
            raise KerasGenError(f"{args.model} adapts a source to a target: give --target (and --data, the source; "
                                "default mnist5k), e.g. --data mnist5k --target mnistm5k")
        recipe = Recipe(model=args.model, data=("mnist5k",) * len(roles))
    else:
        raise KerasGenError("name a model or give --recipe FILE (see keras-gen train --help)")
    data = None
    if len(recipe.data) == 2:  # domain adaptation: (source, target)
        if args.data or args.target:
            data = [args.data or recipe.data[0], args.target or recipe.data[1]]
    elif args.target:
        raise KerasGenError(f"{recipe.model} trains on one dataset; --target is for the domain adaptation models")
    elif args.data:
        data = [args.data]
    flags = {
        "data": data,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "precision": args.precision,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    if args.xla is not None:
        overrides.append(f"compile.jit_compile={json.dumps(args.xla)}")
    # A flag and a --set that both set one key: which one was meant? (--set came last and won.)
    flagged = {o.split("=", 1)[0] for o in overrides}
    for override in args.overrides:
        key = override.split("=", 1)[0].strip()
        if key in flagged:
            flag = "--xla/--no-xla" if key == "compile.jit_compile" else f"--{key.replace('_', '-')}"
            if key == "data":
                flag = "--data/--target"
            raise KerasGenError(f"--set {key}=... and {flag} both set {key}; give one of them")
    return recipe.with_overrides(overrides + args.overrides)


def _resumed_recipe(args):
    """`train --resume DIR`: the run's own recipe, with any flags given applied (so that
    `train.train` can refuse them if they change it); a --recipe is taken as is, a MODEL only
    if it is the run's own."""
    path = os.path.join(args.resume, "recipe.json")
    if args.recipe or not os.path.isfile(path):
        # training.train compares a --recipe with the run's, or says what is wrong with the folder.
        return recipe_from_args(args) if args.model or args.recipe else None
    saved = Recipe.from_file(path)
    if args.model and args.model != saved.model:
        raise KerasGenError(f"the run in {args.resume!r} trains {saved.model}, not {args.model}; "
                            f"--resume continues it with its own recipe: leave out the model name")
    args.model = saved.model
    args.recipe = path
    return recipe_from_args(args)


def cmd_train(args):
    import time

    if args.out is not None and not args.out.strip():
        raise KerasGenError("--out is empty; give a run folder (or leave --out out for runs/<model>-<data>-<time>)")
    if args.resume is not None:
        if args.out is not None and os.path.realpath(args.out) != os.path.realpath(args.resume):
            raise KerasGenError("--resume RUN_DIR continues the run in RUN_DIR; give no other --out")
        recipe, out = _resumed_recipe(args), args.resume
    else:
        recipe = recipe_from_args(args)
        data = "-".join(d.replace(":", "_") for d in recipe.data)  # a source and a target: both
        out = args.out or os.path.join("runs", f"{recipe.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.verbose and recipe is not None:
        print(_train_settings(recipe.resolved(), args.strategy), flush=True)
    _import_tensorflow_quietly()
    from keras_gen import resume, training

    try:
        _, info = training.train(recipe, out, download=args.download, verbose=0 if args.quiet else "auto",
                                 resume=args.resume is not None, strategy=args.strategy)
    except resume.TrainingInterrupted as exc:  # Ctrl-C: one line, the exit status of SIGINT
        print(f"keras-gen: {exc}", file=sys.stderr)
        raise SystemExit(130) from None
    print(trained_line(info))
    if info.get("best"):
        print(kept_line(info["best"]))
    if info["test"]:
        print(_figure_table({"held-out test split": info["test"]}))
    from keras_gen import distribute

    if args.strategy == "multiworker" and not distribute.is_chief():
        print("run folder: none on this worker (the chief, worker 0, writes the run folder)")
    else:
        print(run_folder_line(out, info))


def trained_line(info) -> str:
    """`trained dcgan for 20 epochs in 95 s`; ADDA's epochs are its stages', numbered on as
    its epoch lines number them: `trained adda for 40 epochs (stage 1: 20, stage 2: 20) in 63 s`."""
    stages = info.get("stages") or ()
    epochs = sum(stage["epochs"] for stage in stages) or info["recipe"]["epochs"]
    per_stage = " (" + ", ".join(f"stage {s['stage']}: {s['epochs']}" for s in stages) + ")" if stages else ""
    return f"trained {info['recipe']['model']} for {count(epochs, 'epoch')}{per_stage} in {info['train_seconds']:.0f} s"


def kept_line(best) -> str:
    """`kept epoch 98, the best by the fid of its samples against the training split (4.52)`,
    from run.json's `best` (`keras_gen.training` scores the samples against the training split)."""
    monitor, value = next((k, v) for k, v in best.items() if k != "epoch")
    return (f"kept epoch {best['epoch']}, the best by the {monitor.replace('_', ' ')} of its samples against the "
            f"training split ({value:.4g})")


def run_folder_line(out, info) -> str:
    """`run folder: OUT (run.json, model.keras, ...)`: what the run wrote, ADDA's stage models
    and the sample grids only where there are some."""
    from pathlib import Path

    held = ["run.json", "model.keras", *(f"stage{s['stage']}.keras" for s in info.get("stages") or ()),
            *(["samples/"] if (Path(out) / "samples").is_dir() else []), "logs/", "checkpoints/"]
    return f"run folder: {out} ({', '.join(held)})"


def _train_settings(recipe, strategy=None) -> str:
    """One line naming what a run will use on this machine (no TensorFlow needed); `strategy`
    as `--strategy` (None: one device)."""
    from keras_gen.hardware import auto_jit_compile, describe_cpu, resolve_precision

    precision = resolve_precision(recipe.precision)
    if precision != recipe.precision:
        precision = f"{recipe.precision} -> {precision}"
    jit = recipe.compile.get("jit_compile")
    xla = ("on" if jit else "off") if jit is not None else f"auto -> {'on' if auto_jit_compile() else 'off'}"
    return (f"training {recipe.model} on {', '.join(recipe.data)}: {count(recipe.epochs, 'epoch')}, batch "
            f"{recipe.batch_size}, seed {recipe.seed}, precision {precision}, XLA {xla}, "
            f"{f'tf.distribute {strategy}' if strategy else 'one device'}; CPU {describe_cpu()}")


def _refuse_inside_the_zoo(path, flag):
    """The zoo's entries are the package's data, written by `keras-gen zoo build` alone: no
    command's output goes there (a grid over another entry's card picture, a JSON over its
    recipe)."""
    from keras_gen import zoo

    real, root = os.path.realpath(path), os.path.realpath(zoo.root())
    if os.path.commonpath([real, root]) == root:
        raise KerasGenError(f"{flag} {path!r} is inside the zoo ({root}); refusing to write there, give a path outside")


def _probe_folder(folder):
    """Write and remove a file in `folder`: some places pass `os.access` but take no files
    (/proc, read-only mounts). Raises the `OSError`."""
    import tempfile

    fd, probe = tempfile.mkstemp(prefix=".keras-gen-probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def _check_image_out(path, source=None):
    """`--out` for a picture: a .png or .jpg name in a writable folder, never a folder or a file
    that is not a picture already (a model, a checkpoint: data we must not overwrite), never the model
    `source` it draws from (its file, a run folder's model.keras), never a run's own grids, nothing
    in the zoo."""
    from keras_gen.files import ensure_writable_dir

    from keras_gen.images import IMAGE_MAGIC, image_format

    if "\0" in path:
        raise KerasGenError(f"--out {path!r} contains a NUL character; give a .png or .jpg file name")
    if os.path.isdir(path):
        raise KerasGenError(f"--out {path!r} is a folder; give a .png or .jpg file name")
    try:
        image_format(path)
    except KerasGenError as exc:
        raise KerasGenError(f"--out {exc}") from None
    if source is not None and "\0" not in source and os.path.exists(source):
        protected = [os.path.realpath(source), os.path.realpath(os.path.join(source, "model.keras"))]
        if os.path.realpath(path) in protected:
            raise KerasGenError(f"--out {path!r} is the model {source!r} it samples from; refusing to overwrite it")
    _refuse_inside_the_zoo(path, "--out")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and os.path.basename(folder) == "samples" \
            and os.path.isfile(os.path.join(os.path.dirname(folder), "recipe.json")):
        # A run's per-epoch grids are its training record: a picture, but not ours to replace.
        raise KerasGenError(f"--out {path!r} is a grid of the run {os.path.dirname(folder)!r}, its training record; "
                            "refusing to overwrite it, give another name")
    try:
        if os.path.exists(path):
            with open(path, "rb") as f:
                head = f.read(8)
            if not any(head.startswith(magic) for magic in IMAGE_MAGIC.values()):
                raise KerasGenError(f"--out {path!r} exists and is not a PNG or JPEG picture; refusing to overwrite it")
        _probe_folder(ensure_writable_dir(os.path.dirname(os.path.abspath(path))))
    except OSError as exc:
        raise KerasGenError(f"--out {path!r} cannot be written: {exc.strerror or exc}") from None


def _load_model(source, capability, precision=None):
    _import_tensorflow_quietly()
    from keras_gen.saving import load_source

    model, name = load_source(source, precision)
    if not model.offers(capability):
        raise KerasGenError(f"{type(model).__name__} does not offer {capability}")
    return model, name


def cmd_sample(args):
    from keras_gen.files import made_dirs
    from keras_gen.seeds import check_count

    check_count(args.n, "--n")  # bounded (seeds.MAX_SAMPLES), before minutes of work or an OOM kill
    if "\0" in args.out:
        raise KerasGenError(f"--out {args.out!r} contains a NUL character; give a .png file name")
    with made_dirs(os.path.dirname(os.path.abspath(args.out))):  # removed again if anything fails
        _check_image_out(args.out, args.source)
        model, _ = _load_model(args.source, "sample", args.precision)
        _check_temperature_taken(model, args.temperature)
        from keras_gen.images import sample_grid, save_image

        grid = sample_grid(model, args.n, args.seed, label_rows=bool(getattr(model, "num_classes", None)),
                           temperature=args.temperature)
        try:
            save_image(args.out, grid)
        except OSError as exc:  # a full disk, a folder that went away
            raise KerasGenError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
    classes = getattr(model, "num_classes", None)
    drawn = f"{count(args.n, 'sample')}" if not classes else (
        f"{count(max(1, args.n // classes) * classes, 'sample')}, {max(1, args.n // classes)} per class in "
        f"{classes} rows")  # as `sample_grid` draws them
    print(f"wrote {drawn} (seed {args.seed}{_at_temperature(args.temperature)}) to {args.out}")


def _takes_temperature(model_or_class) -> bool:
    import inspect

    sample = getattr(model_or_class, "sample", None)  # classifiers draw nothing
    return sample is not None and "temperature" in inspect.signature(sample).parameters


def _check_temperature_taken(model, temperature):
    """A temperature reshapes the per-sub-pixel distributions of a likelihood model; other
    models have none to reshape."""
    if temperature is not None and not _takes_temperature(model):
        takers = [name for name in sorted(registry.MODELS) if _takes_temperature(registry.model_class(name))]
        raise KerasGenError(f"{type(model).__name__} takes no --temperature (these models do: {', '.join(takers)})")


def _at_temperature(temperature):
    return "" if temperature is None else f", temperature {temperature:g}"


def cmd_interpolate(args):
    from keras_gen.files import made_dirs

    with made_dirs(os.path.dirname(os.path.abspath(args.out))):  # removed again if anything fails
        _check_image_out(args.out, args.source)
        model, _ = _load_model(args.source, "interpolate", args.precision)
        from keras_gen import analysis
        from keras_gen.images import make_grid, readable_scale

        if args.label is not None and not getattr(model, "num_classes", None):
            raise KerasGenError(f"{type(model).__name__} is unconditional; it takes no --label")
        images = analysis.interpolation_grid(model, args.rows, args.steps, args.seed, args.method, args.label)
        _save_picture(args.out, make_grid(images, columns=args.steps, scale=readable_scale(model.image_shape)))
    print(f"wrote {args.rows} {args.method} interpolations of {args.steps} steps (seed {args.seed}) to {args.out}")


def _data_of(args):
    """`(data name, image size)` a command reads: --data and --image-size, by default the data
    the source was trained on (its run.json or zoo recipe says), else mnist5k."""
    trained_data, trained_size = _trained_on(args.source)
    name = args.data or trained_data or "mnist5k"
    return name, args.image_size or (trained_size if name == trained_data else None)


def cmd_neighbours(args):
    from keras_gen.files import made_dirs

    with made_dirs(os.path.dirname(os.path.abspath(args.out))):  # removed again if anything fails
        _check_image_out(args.out, args.source)
        model, _ = _load_model(args.source, "sample", args.precision)
        from keras_gen import analysis, data
        from keras_gen.images import make_grid, readable_scale

        name, image_size = _data_of(args)
        train, _ = data.load_arrays(name, "train", image_size=image_size)
        if train.shape[1:] != tuple(model.image_shape):
            raise KerasGenError(f"{name} images are {train.shape[1:]}, the model makes {tuple(model.image_shape)}; "
                                "give --data (and --image-size) of the model's shape")
        features = None
        if args.features and args.space != "features":
            raise KerasGenError("--features is for --space features")
        if args.space == "features":
            features = _feature_network(args.features, name, model.image_shape).features
        samples = model.sample(args.n, args.seed)
        grid = analysis.neighbour_grid(samples, train, k=args.k, features=features)
        _save_picture(args.out, make_grid(grid, columns=args.k + 1, scale=readable_scale(model.image_shape)))
    print(f"wrote {count(args.n, 'sample')} (seed {args.seed}), each beside its {args.k} nearest {name} "
          f"training images ({args.space}), to {args.out}")


def _test_images(args, model):
    """`(images uint8 [n, H, W, C], labels int64 [n], data name)`: `args.n` test images of --data
    (default: the data SOURCE was trained on, if it says, else mnist5k), evenly spread over the
    split: an embedded split holds its classes in order, so its first images are all zeros."""
    import numpy as np

    from keras_gen import data

    name, image_size = _data_of(args)
    images, labels = data.load_arrays(name, "test", image_size=image_size)
    if images.shape[1:] != tuple(model.image_shape):
        raise KerasGenError(f"{name} images are {images.shape[1:]}, the model takes {tuple(model.image_shape)}; "
                            "give --data (and --image-size) of the model's shape")
    if args.n > len(images):
        raise KerasGenError(f"--n {args.n}: the {name} test split has only {len(images)} images")
    chosen = np.linspace(0, len(images) - 1, args.n).round().astype(int)  # distinct: n <= len(images)
    return images[chosen], labels[chosen], name


def _save_picture(path, grid):
    from keras_gen.images import save_image

    try:
        save_image(path, grid)
    except OSError as exc:  # a full disk, a folder that went away
        raise KerasGenError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def cmd_complete(args):
    import numpy as np

    from keras_gen.files import made_dirs
    from keras_gen.seeds import MAX_SEED, check_count

    check_count(args.n, "--n", maximum=None)  # test images: bounded by the split (_test_images)
    if args.seed + args.samples - 1 > MAX_SEED:
        raise KerasGenError(f"--seed {args.seed} with --samples {args.samples}: completion k uses seed + k, "
                            f"which must stay at most {MAX_SEED}")
    if "\0" in args.out:
        raise KerasGenError(f"--out {args.out!r} contains a NUL character; give a .png file name")
    with made_dirs(os.path.dirname(os.path.abspath(args.out))):  # removed again if anything fails
        _check_image_out(args.out, args.source)
        model, _ = _load_model(args.source, "complete", args.precision)
        _check_temperature_taken(model, args.temperature)
        from keras_gen import analysis
        from keras_gen.images import make_grid, readable_scale

        conditional = bool(getattr(model, "num_classes", None))
        if args.label is not None and not conditional:
            raise KerasGenError(f"{type(model).__name__} is unconditional; it takes no --label")
        images, true_labels, name = _test_images(args, model)
        labels = None
        if conditional:
            labels = np.full(len(images), args.label) if args.label is not None else true_labels
        mask = analysis.occlusion_mask(args.occlude, model.image_shape)
        rows = analysis.completion_grid(model, images, mask, args.samples, args.seed, labels,
                                        temperature=args.temperature)
        # A conditional model's rows are headed by the class they were completed as.
        grid = make_grid(rows, columns=args.samples + 2, scale=readable_scale(model.image_shape),
                         row_labels=labels.tolist() if conditional else None)
        _save_picture(args.out, grid)
    given = (f", given class {args.label}" if args.label is not None else ", each given its own class") \
        if conditional else ""
    print(f"wrote {count(args.n, f'{name} test image')} ({args.occlude} occluded), "
          f"each with {args.samples} completions "
          f"(seeds {args.seed} to {args.seed + args.samples - 1}{given}{_at_temperature(args.temperature)}), "
          f"to {args.out}")


def cmd_heatmap(args):
    import numpy as np

    from keras_gen.files import made_dirs
    from keras_gen.seeds import check_count

    check_count(args.n, "--n", maximum=None)  # test images: bounded by the split (_test_images)
    if "\0" in args.out:
        raise KerasGenError(f"--out {args.out!r} contains a NUL character; give a .png file name")
    with made_dirs(os.path.dirname(os.path.abspath(args.out))):  # removed again if anything fails
        _check_image_out(args.out, args.source)
        model, _ = _load_model(args.source, "pixel_log_prob", args.precision)
        from keras_gen import analysis

        images, labels, name = _test_images(args, model)
        labels = labels if getattr(model, "num_classes", None) else None
        grid, nll, scale = analysis.model_heatmap(model, images, labels)
        _save_picture(args.out, grid)
    bits_per_dim = float(nll.sum() / (nll.size * images.shape[-1] * np.log(2)))
    binary = " (binarised)" if getattr(model, "num_levels", 256) == 2 else ""
    print(f"wrote {count(args.n, f'{name} test image')}{binary} above their per-pixel NLL heatmaps "
          f"({scale}; {bits_per_dim:.3f} bits/dim on these images) to {args.out}")


def cmd_probe(args):
    model, _ = _load_model(args.source, "discriminator_features", args.precision)
    from keras_gen import analysis, data

    name, image_size = _data_of(args)
    train_x, train_y = data.load_arrays(name, "train", image_size=image_size)
    test_x, test_y = data.load_arrays(name, "test", image_size=image_size)
    if train_x.shape[1:] != tuple(model.image_shape):
        raise KerasGenError(f"{name} images are {train_x.shape[1:]}, the model's discriminator takes "
                            f"{tuple(model.image_shape)}; give --data (and --image-size) of the model's shape")
    result = analysis.discriminator_probe(model, train_x, train_y, test_x, test_y)
    print(f"linear probe on discriminator features, {name}: test accuracy {result['accuracy']:.4f} "
          f"(chance {result['chance']:.4f}; {len(train_y)} train / {len(test_y)} test images)")


def cmd_export(args):
    from keras_gen.files import made_dirs

    with made_dirs(args.out):  # checked before TensorFlow loads; removed again if the export fails
        _import_tensorflow_quietly()
        from keras_gen import export
        from keras_gen.saving import load_source

        model, name = load_source(args.source, args.precision)
        path = export.export(model, args.out, name if args.name is None else args.name, args.version)
    print(f"exported to {path}\nsignatures:\n{export.describe(model)}")


def _feature_network(features, data, image_shape):
    """The feature network `--features DIR/NAME` names, else the shipped one for `data` images."""
    from keras_gen import metrics

    if features:
        folder, net_name = os.path.split(os.path.abspath(features))
        return metrics.load_feature_network(net_name, weights_dir=folder)
    return metrics.network_for(data, image_shape)


def _trained_on(source):
    """`(data, image_size)` a run folder's run.json or a zoo entry's recipe names (by name or
    by its folder), else (None, None): the last of its data, which for a domain-adaptation
    pair is the target, the domain its model classifies."""
    from pathlib import Path

    from keras_gen import zoo

    path = Path(source)
    if path.is_dir() and (path / "run.json").is_file():
        try:
            recipe = Recipe.from_dict(json.loads((path / "run.json").read_text())["recipe"])
        except (OSError, ValueError, KeyError, TypeError, KerasGenError):
            return None, None  # a damaged run.json: the model file still says what it is
        return recipe.data[-1], recipe.image_size
    entry = zoo.entry_of_folder(path)
    if entry is not None:
        recipe = zoo.recipe(*entry)
        return recipe.data[-1], recipe.image_size
    if not path.exists() and source in zoo.list():
        recipe = zoo.recipe(source)
        return recipe.data[-1], recipe.image_size
    return None, None


def _check_json_out(path):
    from keras_gen.files import ensure_writable_dir

    if os.path.isdir(path):
        raise KerasGenError(f"--json {path!r} is a folder; give a .json file name")
    if not path.lower().endswith(".json"):
        raise KerasGenError(f"--json {path!r}: give a name ending in .json")
    _refuse_inside_the_zoo(path, "--json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                earlier = json.load(f)
        except (OSError, ValueError):
            earlier = None
        # Only an earlier result of `evaluate --json` is replaced: a run's run.json or a
        # recipe is data this command must not destroy.
        if not (isinstance(earlier, dict) and {"source", "figures", "machine"} <= set(earlier)):
            raise KerasGenError(f"--json {path!r} exists and is not a keras-gen evaluate result; "
                                "refusing to overwrite it") from None
    folder = ensure_writable_dir(os.path.dirname(os.path.abspath(path)))
    try:  # before the evaluation's minutes
        _probe_folder(folder)
    except OSError as exc:
        raise KerasGenError(f"--json {path!r} cannot be written: {exc.strerror or exc}") from None


def _figure_table(columns: dict) -> str:
    """An aligned text table: one row per figure, one column per dict of figures."""
    keys = list(next(iter(columns.values())))
    rows = [["figure", *columns]] + [
        [key, *("–" if col.get(key) is None else f"{col[key]:.4g}" for col in columns.values())] for key in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_evaluate(args):
    if not args.json:
        return _evaluate(args)
    from keras_gen.files import made_dirs

    with made_dirs(os.path.dirname(os.path.abspath(args.json))):  # the folders it makes go again if it fails
        return _evaluate(args)


def _evaluate(args):
    import datetime
    import time

    from keras_gen import metrics

    if args.json:
        _check_json_out(args.json)
    if args.n < metrics.MIN_SAMPLES:
        raise KerasGenError(f"--n must be at least {metrics.MIN_SAMPLES}: recall's radii are each sample's "
                            f"{metrics.PR_K}rd nearest other sample")
    data, image_size = _data_of(args)
    _import_tensorflow_quietly()
    from keras_gen.hardware import describe_machine
    from keras_gen.saving import load_source

    model, name = load_source(args.source, args.precision)
    network = None
    skipped = None  # why a sampling model's sample figures are not among the figures
    if args.likelihood_only and not model.offers("log_prob"):
        raise KerasGenError(f"{type(model).__name__} has no likelihood; --likelihood-only is for likelihood models")
    if model.offers("sample") and not args.likelihood_only:
        try:
            network = _feature_network(args.features, data, model.image_shape)
        except KerasGenError as exc:
            if args.features or not model.offers("log_prob"):
                raise
            # Without a network, a likelihood model keeps its likelihood figures; say why the
            # sample figures are missing rather than leave them out silently.
            skipped = f"no sample figures: {exc}"
    start = time.perf_counter()
    figures = metrics.evaluate(model, data, args.n, args.seed, image_size=image_size, network=network,
                               samples=network is not None)
    seconds = time.perf_counter() - start
    columns = {name: figures}
    result = {"source": args.source, "model": type(model).__name__, "data": data, "image_size": image_size,
              "figures": figures, "seconds": round(seconds, 1), "date": datetime.date.today().isoformat(),
              "machine": describe_machine()}
    if skipped:
        result["skipped"] = skipped
    if network is not None:  # what was sampled (n, seed) and its scale; nothing was without a network
        from keras_gen.metrics.features import network_images

        floors = metrics.reference_floors(network, n=args.n)
        # The floor is at most every real training image: fewer than n, it is no floor at n
        # (FID falls with the sample size), and its column says how many it scored.
        floor_images = min(args.n, len(network_images(network, "train")[0]))
        floor = "real train (floor)" if floor_images == args.n else f"real train (floor: all {floor_images:,})"
        columns[floor], columns["uniform noise (ceiling)"] = floors["floor"], floors["ceiling"]
        result.update(n=args.n, seed=args.seed, feature_network=network.name, floor=floors["floor"],
                      floor_images=floor_images, ceiling=floors["ceiling"])
    what = f"{args.n:,} samples (seed {args.seed}) vs the {data} test split in {network.name}'s features" if network \
        else f"the {data} test split"
    print(f"{name} ({type(model).__name__}): {what}; {seconds:.1f} s")
    if skipped:
        print(skipped)
    print(_figure_table(columns))
    if args.json:
        from keras_gen.files import atomic_path

        with atomic_path(args.json, suffix=".json") as tmp:
            with open(tmp, "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
        print(f"wrote {args.json}")


def cmd_metrics(args):
    from keras_gen import metrics

    if args.metrics_command == "list":
        floors = {}
        for (data, size), net in metrics.FEATURE_NETWORKS.items():
            if net not in metrics.shipped():
                print(f"  {net:10s} scores {data} at {size}x{size} (not shipped)")
                continue
            meta = json.loads((metrics.features.weights_root() / f"{net}.json").read_text())
            print(f"  {net:10s} scores {data} at {size}x{size} (shipped): test accuracy {meta['test_accuracy']:.4f}, "
                  f"{meta['test_images']:,} test images")
            floors.update({f"{net} floor": meta["reference_floors"]["floor"],
                           f"{net} ceiling": meta["reference_floors"]["ceiling"]})
        if floors:
            print("\nreference figures at n = 1,000 (floor: real train images vs test; ceiling: uniform noise):")
            print(_figure_table(floors))
        return
    from pathlib import Path

    if Path(args.out).resolve() == metrics.features.weights_root().resolve():
        raise KerasGenError("--out is the package's shipped folder; write a rebuilt network elsewhere and compare")
    if args.data is None and args.image_size is not None:
        raise KerasGenError("--image-size is for a new network: give --data too")
    if args.data is not None:
        metrics.features.custom_recipe(args.name, args.data, args.image_size or 28)  # fail before importing TF
    else:
        metrics.features._recipe(args.name)
    _import_tensorflow_quietly()
    out = metrics.build_feature_network(args.name, args.out, data=args.data,
                                        image_size=(args.image_size or 28) if args.data else None,
                                        epochs=args.epochs, verbose=2)
    network = metrics.load_feature_network(args.name, weights_dir=out)
    print(f"built feature network {args.name} in {out}: test accuracy {network.metadata['test_accuracy']:.4f}; "
          f"use it with --features {out / args.name}")


def cmd_zoo(args):
    from keras_gen import zoo

    zoo_dir = args.zoo_dir
    if zoo_dir is not None and not zoo.list(zoo_dir):  # an empty table, or one written into a README, helps no one
        itself = "; it is itself an entry: give the folder that holds it" if zoo.is_entry_folder(zoo_dir) else ""
        raise KerasGenError(f"--zoo-dir {zoo_dir!r} holds no zoo entries (folders with a recipe.json){itself}")
    if args.zoo_command == "list":
        for name in zoo.list(zoo_dir):
            print(name)
        return
    if args.zoo_command == "table":
        if args.readme:
            zoo.write_readme_table(args.readme, zoo_dir)
            print(f"wrote the zoo table into {args.readme}")
        else:
            print(zoo.results_table(zoo_dir))
        return
    if args.zoo_command == "evaluate":
        names = args.entries or zoo.list(zoo_dir)
        for name in names:
            zoo.entry_dir(name, zoo_dir)  # fail fast on an unknown name, before importing TensorFlow
        if args.readme:
            zoo.check_readme(args.readme)  # before minutes of scoring, not after
        _import_tensorflow_quietly()
        for name in names:
            print(f"re-scored {zoo.evaluate(name, zoo_dir)}")
        if args.readme:
            zoo.write_readme_table(args.readme, zoo_dir)
            print(f"wrote the zoo table into {args.readme}")
        return
    zoo.entry_dir(args.entry, zoo_dir)  # fail fast on an unknown name, before importing TensorFlow
    _import_tensorflow_quietly()
    print(f"rebuilt {zoo.build(args.entry, zoo_dir, from_run=args.from_run)}")


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "sample": cmd_sample,
    "interpolate": cmd_interpolate,
    "neighbours": cmd_neighbours,
    "complete": cmd_complete,
    "heatmap": cmd_heatmap,
    "probe": cmd_probe,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "metrics": cmd_metrics,
    "zoo": cmd_zoo,
}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        from keras_gen.hardware import check_environment

        check_environment()
        COMMANDS[args.command](args)
    except KerasGenError as exc:
        print(f"keras-gen: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keras-gen: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"keras-gen: {exc}", file=sys.stderr)
        return 143
    except OSError as exc:  # a full disk or a vanished folder that no command caught itself
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"keras-gen: error: {exc.strerror or exc}{where}; no file was left half-written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
