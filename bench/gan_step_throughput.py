"""Training throughput of every GAN in keras-gen at its default (paper) settings.

Each model is built as `keras-gen train MODEL` would build it for 28x28 mnist5k digits (its
default hyper-parameters and compile settings: WGAN-GP takes 5 critic steps per generator
step, BigGAN carries attention, spectral norm and EMA), then trained on batches of 64 real
images with labels: warm-up steps (tracing), then timed steps. The figure is real images
consumed per second, i.e. generator steps x 64 per second; a critic step costs about what a
DCGAN step's discriminator half costs, so WGAN-GP's 5 critic steps show directly. Each model
runs in its own process; rounds interleave the models; the table gives every round and the
median. No peer: the PyTorch DCGAN comparison is bench/dcgan_throughput.py. With
`--baseline-tree TREE` every model also runs from another keras-gen source tree (put first on
PYTHONPATH) in the same rounds, and a second table gives this tree / that tree per round: the
way a change's effect is measured on a machine whose speed drifts.

    python bench/gan_step_throughput.py [--rounds 3] [--models dcgan wgan-gp biggan]
    python bench/gan_step_throughput.py --models biggan cgan --baseline-tree /tmp/kg-before
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dcgan_throughput as runner  # noqa: E402  (the shared runner: run, wait_quiet)
from benchargs import QUOTABLE_ROUNDS, positive_int, rotated, rounds_note  # noqa: E402

BATCH, WARMUP, TIMED = 64, 5, 20
MODELS = ["gan", "dcgan", "lsgan", "wgan", "wgan-gp", "dragan", "cgan", "acgan", "biggan"]


def worker(name):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from keras_gen import data, training
    from keras_gen.recipe import Recipe

    keras.utils.set_random_seed(0)
    x, y = data.load_arrays("mnist5k", "train")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().shuffle(4000, seed=0).batch(BATCH, drop_remainder=True)
    # float32, as the README's table was measured (the recipes' default "auto" would pick
    # mixed_bfloat16 on a CPU with native bfloat16).
    model = training.build_model(Recipe(name, precision="float32"), (28, 28, 1))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    model.fit(ds, steps_per_epoch=WARMUP, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=TIMED, epochs=1, verbose=0)
    print(f"{name}: {TIMED * BATCH / (time.perf_counter() - start):.1f} img/s")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=MODELS, help="run one model (a worker process)")
    p.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--baseline-tree", help="also run every model from this keras-gen source tree")
    args = p.parse_args()
    if args.worker:
        return worker(args.worker)
    if args.baseline_tree and not (Path(args.baseline_tree) / "keras_gen").is_dir():
        p.error(f"--baseline-tree {args.baseline_tree} holds no keras_gen package")
    from keras_gen.hardware import describe_cpu

    trees = {"": None}
    if args.baseline_tree:
        trees[" (baseline tree)"] = str(Path(args.baseline_tree).resolve())
    todo = [(m + suffix, m, tree) for m in args.models for suffix, tree in trees.items()]
    results = {label: [] for label, _, _ in todo}
    others = {label: [] for label, _, _ in todo}
    for r in range(args.rounds):
        for label, m, tree in rotated(todo, r):
            value, other = runner.run([sys.executable, str(Path(__file__).resolve()), "--worker", m], tree)
            results[label].append(value)
            others[label].append(other)
            load = "" if other is None else f" (other load {other:.2f})"
            print(f"round {r + 1}: {label}: {value:.0f} img/s{load}", file=sys.stderr, flush=True)
    print(f"\nGAN training throughput, real images/s (generator steps x {BATCH}), default settings, 28x28, "
          f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}\n")
    print("| model | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | median | other load |")
    print("| --- |" + " --- |" * (args.rounds + 2))
    for label, values in results.items():
        loads = [v for v in others[label] if v is not None]
        print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in values) + f" | {statistics.median(values):.0f} | "
              + (f"{statistics.median(loads):.2f}" if loads else "-") + " |")
    if args.baseline_tree:
        print("\n| model | this tree / baseline tree, per round | median |")
        print("| --- | --- | --- |")
        for m in args.models:
            per_round = [a / b for a, b in zip(results[m], results[m + " (baseline tree)"])]
            print(f"| {m} | " + ", ".join(f"{v:.2f}" for v in per_round) + f" | {statistics.median(per_round):.2f} |")
    print(rounds_note(args.rounds).strip())


if __name__ == "__main__":
    main()
