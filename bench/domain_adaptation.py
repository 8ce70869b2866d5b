"""Domain adaptation benchmark: target test accuracy of source-only, DANN, ADDA and the target
oracle on pairs of the offline digit domains, mean ± std over seeds.

Each run is `keras-gen train MODEL --data SOURCE --target TARGET --seed S` at the models'
defaults (plus any `--set`), in its own process, one after another; the figure is the
accuracy on the target's test split (run.json's `test`), the only place target labels are
read (the oracle trains on them by definition). Source validation accuracy and training
seconds are reported beside it.

    python bench/domain_adaptation.py                                 # 3 pairs x 3 seeds x 4 models
    python bench/domain_adaptation.py --pair mnist5k:mnistm5k --seeds 0
    python bench/domain_adaptation.py --models dann --set epochs=10 --json out.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import domain_pair, int_range  # noqa: E402

MODELS = ("source-only", "dann", "adda", "target-oracle")
PAIRS = ("mnist5k:mnistm5k", "mnist5k:digits", "syndigits5k:mnist5k")


def run(model, source, target, seed, overrides, out):
    cmd = [sys.executable, "-m", "keras_gen.cli", "train", model, "--data", source, "--target", target,
           "--seed", str(seed), "--out", str(out), "--quiet"]
    if "digits" in (source, target):
        cmd += ["--image-size", "28"]
    for o in overrides:
        cmd += ["--set", o]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    info = json.loads((out / "run.json").read_text())
    history = info["history"]
    return {"model": model, "source": source, "target": target, "seed": seed,
            "target_test_accuracy": info["test"]["accuracy"],
            "source_val_accuracy": history["val_accuracy"][-1] if history.get("val_accuracy") else None,
            "train_seconds": info["train_seconds"], "wall_seconds": round(wall, 1), "cpu": info["cpu"],
            "precision": info["precision"]}


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def table(rows, models, pairs):
    lines = ["| pair | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
    for pair in pairs:
        source, target = pair.split(":")
        cells = []
        for model in models:
            got = [r["target_test_accuracy"] for r in rows
                   if (r["model"], r["source"], r["target"]) == (model, source, target)]
            cells.append(mean_std(got))
        lines.append(f"| {source} → {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--pair", action="append", type=domain_pair,
                   help="SOURCE:TARGET (default: the three pairs of issue 9)")
    p.add_argument("--seeds", nargs="+", type=int_range(0, 2**31 - 1), default=[0, 1, 2])
    p.add_argument("--set", dest="overrides", action="append", default=[], help="a recipe override for every run")
    p.add_argument("--json", help="also write every run's figures to this file")
    args = p.parse_args()
    pairs = args.pair or list(PAIRS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="domain-adaptation-") as tmp:
        for pair in pairs:
            source, target = pair.split(":")
            for seed in args.seeds:
                for model in args.models:
                    row = run(model, source, target, seed, args.overrides, Path(tmp) / f"{model}-{pair}-{seed}")
                    rows.append(row)
                    print(f"{model:14s} {source} -> {target} seed {seed}: target test accuracy "
                          f"{row['target_test_accuracy']:.4f}, source val {row['source_val_accuracy']}, "
                          f"{row['train_seconds']} s training", flush=True)
    print()
    print(f"Target test accuracy (%), mean ± std over seeds {args.seeds}; {time.strftime('%Y-%m-%d')}, "
          f"CPU {rows[0]['cpu']}, precision {rows[0]['precision']}")
    print(table(rows, args.models, pairs))
    seconds = {m: statistics.mean(r["train_seconds"] for r in rows if r["model"] == m) for m in args.models}
    print("mean training seconds: " + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
