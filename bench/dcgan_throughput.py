"""DCGAN training throughput: keras-gen against the PyTorch peer, interleaved, in one run.

The model is exactly the peer's (`../shared/bench/torch_dcgan.py`): latent 64, generator
Dense -> BN -> ReLU -> 7x7x128 -> ConvT(64, 4, s2) -> BN -> ReLU -> ConvT(1, 4, s2) -> tanh,
discriminator Conv(64, 4, s2) -> LReLU(0.2) -> Conv(128, 4, s2) -> LReLU(0.2) -> Dense(1),
Adam 2e-4 / beta_1 0.5 for both, batch 128, one D and one G update per batch, on all 5,000
embedded MNIST images; one warm-up epoch (tracing, XLA compilation), then two timed epochs.

    python bench/dcgan_throughput.py --torch-python ~/.venvs/torchref/bin/python [--rounds 3]
    python bench/dcgan_throughput.py --worker --precision mixed_bfloat16 --jit   # one keras-gen figure
    python bench/dcgan_throughput.py --baseline-tree /tmp/kg-before   # also an older keras-gen checkout

With `--baseline-tree`, the same keras-gen configurations also run from that source tree
(put first on PYTHONPATH), interleaved with the rest, so a refactor is measured against the
code before it in one run. bfloat16 configurations run only on a CPU with native bfloat16
(AVX-512-BF16 or AMX); elsewhere oneDNN emulates it many times slower.

Each configuration runs in its own process; rounds interleave all configurations, and the
table gives every round and the median, then median ratios keras-gen / PyTorch.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE.parent.parent / "shared" / "bench" / "torch_dcgan.py"
BATCH, TIMED_EPOCHS = 128, 2


def worker(precision, jit):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_gen import data
    from keras_gen.models import DCGAN

    keras.utils.set_random_seed(0)
    x = np.concatenate([data.load_arrays("mnist5k", split)[0] for split in ("train", "test")])
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=0).batch(BATCH, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    model = DCGAN(image_shape=(28, 28, 1), latent_dim=64, generator_widths=(128, 64),
                  discriminator_widths=(64, 128), precision=precision, seed=0)
    model.compile(jit_compile=jit)

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times = []
    model.fit(ds, epochs=1 + TIMED_EPOCHS, verbose=0, callbacks=[EpochTimer()])
    images = TIMED_EPOCHS * (len(x) // BATCH) * BATCH
    print(f"keras-gen {precision} jit={jit}: {images / sum(times[1:]):.0f} img/s")


CONFIGS = [
    # (label, kind, argv)
    ("PyTorch eager fp32", "torch", []),
    ("keras-gen fp32 XLA", "keras", ["--precision", "float32", "--jit"]),
    ("keras-gen fp32 no XLA", "keras", ["--precision", "float32"]),
    ("PyTorch eager bf16 autocast", "torch", ["--precision", "bf16"]),
    ("keras-gen mixed_bfloat16 XLA", "keras", ["--precision", "mixed_bfloat16", "--jit"]),
    ("keras-gen mixed_bfloat16 no XLA", "keras", ["--precision", "mixed_bfloat16"]),
]
RATIOS = [
    ("keras-gen fp32 no XLA", "PyTorch eager fp32"),  # keras-gen's default
    ("keras-gen fp32 XLA", "PyTorch eager fp32"),
    ("keras-gen mixed_bfloat16 no XLA", "PyTorch eager bf16 autocast"),
    ("keras-gen mixed_bfloat16 XLA", "PyTorch eager bf16 autocast"),
    ("keras-gen mixed_bfloat16 no XLA", "PyTorch eager fp32"),
]


def run(cmd, pythonpath=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    match = re.search(r"([\d.]+) img/s", out.stdout)
    if out.returncode or not match:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return float(match.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help="run one keras-gen configuration")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--jit", action="store_true")
    p.add_argument("--torch-python", default=os.path.expanduser("~/.venvs/torchref/bin/python"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--baseline-tree", help="also run the keras-gen configurations from this source tree")
    args = p.parse_args()
    if args.worker:
        return worker(args.precision, args.jit)

    from keras_gen.hardware import describe_cpu, has_native_bfloat16

    cpu_name, has_bf16 = describe_cpu(), has_native_bfloat16()
    def bf16(label):
        return "bf16" in label or "bfloat16" in label

    configs = [c for c in CONFIGS if has_bf16 or not bf16(c[0])]
    ratios = [r for r in RATIOS if has_bf16 or not any(bf16(side) for side in r)]
    if args.baseline_tree:
        tree = str(Path(args.baseline_tree).resolve())
        configs += [(f"{label} (baseline tree)", "baseline", argv) for label, kind, argv in configs if kind == "keras"]
        ratios += [(label, f"{label} (baseline tree)") for label, kind, _ in configs if kind == "keras"]
    results = {label: [] for label, _, _ in configs}
    for r in range(args.rounds):
        for label, kind, argv in configs:
            if kind == "torch":
                cmd = [args.torch_python, str(PEER), *argv]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *argv]
            results[label].append(run(cmd, tree if kind == "baseline" else None))
            print(f"round {r + 1}: {label}: {results[label][-1]:.0f} img/s", file=sys.stderr, flush=True)

    print(f"\nDCGAN training throughput, images/s, batch {BATCH}, {time.strftime('%Y-%m-%d')}, "
          f"{cpu_name}\n")
    print("| configuration | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | median |")
    print("| --- |" + " --- |" * (args.rounds + 1))
    for label, values in results.items():
        print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in values) + f" | {statistics.median(values):.0f} |")
    print("\n| ratio | per round | median |\n| --- | --- | --- |")
    for a, b in ratios:
        per_round = [x / y for x, y in zip(results[a], results[b])]
        print(f"| {a} / {b} | " + ", ".join(f"{v:.2f}" for v in per_round) + f" | {statistics.median(per_round):.2f} |")


if __name__ == "__main__":
    main()
