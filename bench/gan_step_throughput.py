"""Training throughput of every GAN in keras-gen at its default (paper) settings.

Each model is built as `keras-gen train MODEL` would build it for 28x28 mnist5k digits (its
default hyper-parameters and compile settings: WGAN-GP takes 5 critic steps per generator
step, BigGAN carries attention, spectral norm and EMA), then trained on batches of 64 real
images with labels: warm-up steps (tracing), then timed steps. The figure is real images
consumed per second, i.e. generator steps x 64 per second; a critic step costs about what a
DCGAN step's discriminator half costs, so WGAN-GP's 5 critic steps show directly. Each model
runs in its own process; rounds interleave the models; the table gives every round and the
median. No peer: the PyTorch DCGAN comparison is bench/dcgan_throughput.py.

    python bench/gan_step_throughput.py [--rounds 3] [--models dcgan wgan-gp biggan]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

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
    p.add_argument("--worker")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    args = p.parse_args()
    from keras_gen.hardware import describe_cpu

    if args.worker:
        return worker(args.worker)
    results = {m: [] for m in args.models}
    for r in range(args.rounds):
        for m in args.models:
            out = subprocess.run([sys.executable, __file__, "--worker", m], capture_output=True, text=True,
                                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            match = re.search(r"([\d.]+) img/s", out.stdout)
            if out.returncode or not match:
                sys.exit(f"{m} failed:\n{out.stderr[-2000:]}")
            results[m].append(float(match.group(1)))
            print(f"round {r + 1}: {m}: {results[m][-1]:.0f} img/s", file=sys.stderr, flush=True)
    print(f"\nGAN training throughput, real images/s (generator steps x {BATCH}), default settings, 28x28, "
          f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}\n")
    print("| model | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | median |")
    print("| --- |" + " --- |" * (args.rounds + 1))
    for m, values in results.items():
        print(f"| {m} | " + " | ".join(f"{v:.0f}" for v in values) + f" | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
