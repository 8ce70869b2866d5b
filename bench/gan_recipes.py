"""Which stabilisers help a GAN on 4,000 digits? Train recipe variants at one budget and
compare their held-out FID.

Each variant is `keras-gen train MODEL --set ...` on mnist5k for the same number of epochs,
run one after another (each in its own process). The run keeps the epoch whose samples have
the lowest FID against the training split (in the shipped mnist28 feature space); the table
gives that epoch, its held-out FID (`keras-gen evaluate`: 1,000 samples of the run's seed,
other samples than those that picked the epoch, against the 1,000 test images), the last
epoch's training-split FID, the classes covered and the training time. One seed per
variant: differences of a few FID points are within seed noise.

    python bench/gan_recipes.py --model dcgan --epochs 30
    python bench/gan_recipes.py --model dcgan --epochs 30 --variant "ema+diffaugment" ...
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import positive_int  # noqa: E402

VARIANTS = {
    "dcgan": {
        "plain": [],
        "ema": ["hparams.ema_decay=0.999"],
        "ema-0.99": ["hparams.ema_decay=0.99"],
        "r1": ["compile.penalty=r1", "compile.penalty_weight=0.2"],
        "hinge": ["compile.loss=hinge"],
        "spectral-norm": ["hparams.spectral_norm=true"],
        "diffaugment": ['compile.augment=["translation", "cutout"]'],
        "ema+diffaugment": ["hparams.ema_decay=0.999", 'compile.augment=["translation", "cutout"]'],
        "ema+diffaugment+r1": ["hparams.ema_decay=0.999", 'compile.augment=["translation", "cutout"]',
                               "compile.penalty=r1", "compile.penalty_weight=0.2"],
        "hinge+ema+diffaugment": ["compile.loss=hinge", "hparams.ema_decay=0.999",
                                  'compile.augment=["translation", "cutout"]'],
    },
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dcgan", choices=sorted(VARIANTS))
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--variant", action="append", help="run only these variants (default: all)")
    p.add_argument("--set", dest="common", action="append", default=[], help="an override for every variant")
    args = p.parse_args()
    unknown = sorted(set(args.variant or ()) - set(VARIANTS[args.model]))
    if unknown:
        p.error(f"{args.model} has no variant {', '.join(unknown)}: one of {', '.join(VARIANTS[args.model])}")
    from keras_gen.hardware import describe_cpu

    variants = {k: v for k, v in VARIANTS[args.model].items() if not args.variant or k in args.variant}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gan-recipes-") as tmp:
        for name, overrides in variants.items():
            out = Path(tmp) / name
            cmd = [sys.executable, "-m", "keras_gen.cli", "train", args.model, "--epochs", str(args.epochs),
                   "--batch-size", str(args.batch_size), "--out", str(out)]
            for o in args.common + overrides:
                cmd += ["--set", o]
            start = time.perf_counter()
            result = subprocess.run(cmd, capture_output=True, text=True,
                                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            if result.returncode:
                sys.exit(f"{name} failed:\n{result.stderr[-2000:]}")
            info = json.loads((out / "run.json").read_text())
            scored = subprocess.run([sys.executable, "-m", "keras_gen.cli", "evaluate", str(out), "--json",
                                     str(out / "evaluation.json")], capture_output=True, text=True,
                                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            if scored.returncode:
                sys.exit(f"{name}: evaluate failed:\n{scored.stderr[-2000:]}")
            held_out = json.loads((out / "evaluation.json").read_text())["figures"]["fid"]
            fids = info["history"]["fid"]  # against the training split, the figure that picks the epoch
            rows.append((name, " ".join(overrides) or "(zoo recipe)", held_out, info["best"]["epoch"],
                         fids[-1], info["history"]["classes_covered"][info["best"]["epoch"] - 1],
                         info["train_seconds"], time.perf_counter() - start))
            print(f"{name}: held-out FID {rows[-1][2]:.2f} at kept epoch {rows[-1][3]}", file=sys.stderr, flush=True)
    print(f"\n{args.model}, {args.epochs} epochs, batch {args.batch_size}, mnist5k, "
          f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}\n")
    print("| variant | overrides | held-out FID | kept epoch | last FID (vs train) | classes covered | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, overrides, best, epoch, last, covered, seconds, _ in rows:
        print(f"| {name} | `{overrides}` | {best:.2f} | {epoch} | {last:.2f} | {covered} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
