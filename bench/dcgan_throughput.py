"""DCGAN training throughput: keras-gen against the PyTorch peer, interleaved, in one run.

The model is exactly the peer's (`../shared/bench/torch_dcgan.py`): latent 64, generator
Dense -> BN -> ReLU -> 7x7x128 -> ConvT(64, 4, s2) -> BN -> ReLU -> ConvT(1, 4, s2) -> tanh,
discriminator Conv(64, 4, s2) -> LReLU(0.2) -> Conv(128, 4, s2) -> LReLU(0.2) -> Dense(1),
Adam 2e-4 / beta_1 0.5 for both, batch 128, one D and one G update per batch, on all 5,000
embedded MNIST images; one warm-up epoch (tracing, XLA compilation), then two timed epochs.
Both do the same work per batch: G forward for D's update, D on the real and on the fake
batch separately, D's update, then a fresh G forward, D forward and G's update (PyTorch's G
step also computes D's weight gradients, which it then throws away; ours does not).

    python bench/dcgan_throughput.py --torch-python ~/.venvs/torchref/bin/python [--rounds 3]
    python bench/dcgan_throughput.py --worker --precision mixed_bfloat16 --jit on   # one keras-gen figure
    python bench/dcgan_throughput.py --baseline-tree /tmp/kg-before   # also an older keras-gen checkout
    python bench/dcgan_throughput.py --auto-only                      # keras-gen as `keras-gen train` runs it
    python bench/dcgan_throughput.py --list [--cpuinfo FILE]          # what would run on that CPU

keras-gen runs in two settings: "1 step/call, no XLA" (keras-gen's settings before
`keras_gen.hardware.auto_jit_compile` and `steps_per_execution_for`) and "auto" (XLA where
`auto_jit_compile` says so on this CPU, `steps_per_execution_for(39)` = 13 steps per call),
plus "auto" with XLA the other way, which checks the per-CPU choice. With `--baseline-tree`,
the keras-gen configurations also run from that source tree (put first on PYTHONPATH).
bfloat16 configurations run only on a CPU with native bfloat16 (AVX-512-BF16 or AMX);
elsewhere oneDNN emulates it many times slower.

Each configuration runs in its own process; rounds interleave all configurations, and the
table gives every round and the median, then median ratios keras-gen / PyTorch. Each round
also measures the CPU's GFLOP/s (TensorFlow, a 2048^2 matmul and a 3x3 convolution, the
better of the two) and so the ceiling in images/s at `FLOP_PER_IMAGE`; "other load" is the
share of the machine's CPU time that other processes took while a configuration ran (from
/proc/stat): rounds run on a busy machine say so. PyTorch's OpenMP threads suffer far more
than TensorFlow's from other processes on the same cores (its fp32 figure fell 7-30x at an
other load of 0.6-0.9 on 2 cores, TensorFlow's 2-5x), so ratios from loaded rounds flatter
keras-gen; `--quiet-wait` waits for an idle machine before each configuration.

2026-11-26, AMD EPYC, 2 cores, AVX-512 + bf16, idle (other load 0.00), 3 rounds, medians:
TensorFlow 224 GFLOP/s float32 and 454 bfloat16 (ceiling 1,390 and 2,820 img/s); PyTorch 781
fp32 and 1,185 bf16 img/s; keras-gen auto 1,046 fp32 (1.34x, 76% of the ceiling) and 1,379
bf16 (1.22x, 49%); one step per call 976 fp32 and 1,331 bf16; XLA 0.70x and 0.58x of no XLA
on that CPU. Before keras-gen turned tf.data's autotuning off (`keras_gen.data.without_autotune`),
a third of the epochs began with a ~5 s stall, so float32 one step per call gave 492-1,014.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchargs import (QUOTABLE_ROUNDS, executable, non_negative_float, positive_int, rotated,  # noqa: E402
                       rounds_note, threads_line)

PEER = HERE.parent.parent / "shared" / "bench" / "torch_dcgan.py"
BATCH, LATENT, TIMED_EPOCHS, IMAGES = 128, 64, 2, 5000
STEPS_PER_EPOCH = IMAGES // BATCH  # 39


# Multiply-adds per image of D's layers: conv 4x4 to 64 maps at 14x14, conv 4x4 to 128 at
# 7x7, dense head.
D_CONV1, D_CONV2, D_DENSE = 14 * 14 * 64 * 16 * 1, 7 * 7 * 128 * 16 * 64, 7 * 7 * 128


def flop_per_image():
    """Floating-point operations (2 per multiply-add) of one training step, per image: the
    convolutions and dense layers (BatchNorm, activations and Adam are under 1%)."""
    g_dense, g_convt1, g_convt2 = LATENT * 7 * 7 * 128, 7 * 7 * 128 * 16 * 64, 14 * 14 * 64 * 16 * 1
    d_conv1, d_conv2, d_dense = D_CONV1, D_CONV2, D_DENSE
    g_fwd, d_fwd = g_dense + g_convt1 + g_convt2, d_conv1 + d_conv2 + d_dense
    d_input_grads = d_conv1 + d_conv2 + d_dense  # D's gradient with respect to its input
    d_input_grads_no_image = d_conv2 + d_dense  # the real batch needs none for the image
    d_step = g_fwd + 2 * d_fwd + 2 * d_fwd + 2 * d_input_grads_no_image  # fwd, weight grads, input grads
    g_step = g_fwd + d_fwd + d_input_grads + g_fwd + (g_convt1 + g_convt2)  # G: weight and input grads
    return 2 * (d_step + g_step)


FLOP_PER_IMAGE = flop_per_image()  # about 160 MFLOP
# The peer's G step back-propagates into D's weights too (it does not freeze D), and throws
# those gradients away: about 13 MFLOP per image more than keras-gen's step, which the ratios
# below include in PyTorch's time. The tables count both sides at FLOP_PER_IMAGE.
PEER_EXTRA_FLOP = 2 * (D_CONV1 + D_CONV2 + D_DENSE)  # D's weight gradients: its forward multiply-adds


def steps_per_call(text):
    """--spe: `auto` or a whole number of steps per call from 1."""
    return text if text == "auto" else str(positive_int(text))


def timed_fit(model, ds, epochs):
    """`(seconds, history)`: fit one warm-up epoch (tracing, XLA compilation), then `epochs`
    timed ones; the seconds are the timed epochs' wall time."""
    import keras

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    history = model.fit(ds, epochs=1 + epochs, verbose=0, callbacks=[EpochTimer()], shuffle=False).history
    return sum(times[1:]), history


def worker(precision, jit, spe, epochs):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_gen import data, hardware
    from keras_gen.models import DCGAN

    jit_compile = hardware.auto_jit_compile() if jit == "auto" else jit == "on"
    if jit.startswith("not-"):  # the other choice than auto's
        jit_compile = not hardware.auto_jit_compile()
    steps = hardware.steps_per_execution_for(STEPS_PER_EPOCH) if spe == "auto" else int(spe)
    keras.utils.set_random_seed(0)
    x = np.concatenate([data.load_arrays("mnist5k", split)[0] for split in ("train", "test")])
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=0).batch(BATCH, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    model = DCGAN(image_shape=(28, 28, 1), latent_dim=LATENT, generator_widths=(128, 64),
                  discriminator_widths=(64, 128), precision=precision, seed=0)
    model.compile(jit_compile=jit_compile, steps_per_execution=steps)

    seconds, _ = timed_fit(model, ds, epochs)
    images = epochs * STEPS_PER_EPOCH * BATCH
    print(f"keras-gen {precision} jit={jit_compile} steps_per_execution={steps}: "
          f"{images / seconds:.0f} img/s")


def ceiling_worker(bfloat16):
    """GFLOP/s of TensorFlow on this CPU: the better of a 2048^2 matmul and a batch-64
    28x28x128 3x3 convolution, in float32 and (where native) bfloat16."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    def rate(fn, flop, reps):
        fn().numpy()
        start = time.perf_counter()
        for _ in range(reps):
            out = fn()
        out.numpy()
        return flop * reps / (time.perf_counter() - start) / 1e9

    result = {}
    for dtype in [tf.float32] + ([tf.bfloat16] if bfloat16 else []):
        a, b = (tf.cast(tf.random.normal([2048, 2048]), dtype) for _ in range(2))
        x, k = tf.cast(tf.random.normal([64, 28, 28, 128]), dtype), tf.cast(tf.random.normal([3, 3, 128, 128]), dtype)
        matmul = tf.function(lambda: tf.matmul(a, b))
        conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
        result[dtype.name] = max(rate(matmul, 2 * 2048 ** 3, 20), rate(conv, 2 * 64 * 28 * 28 * 128 * 9 * 128, 20))
    print("ceiling " + json.dumps(result))


def configs(has_bf16, auto_only=False):
    """(label, kind, argv): kind "torch", "keras" or "ceiling"; with `auto_only`, keras-gen's
    "auto" configurations only."""
    out = [("CPU GFLOP/s (TensorFlow matmul/conv)", "ceiling", ["--bf16"] if has_bf16 else [])]
    for precision, torch_arg in (("fp32", "fp32"), ("bf16", "bf16")):
        if precision == "bf16" and not has_bf16:
            continue
        policy = "float32" if precision == "fp32" else "mixed_bfloat16"
        out += [
            (f"PyTorch eager {precision}", "torch", ["--precision", torch_arg]),
            (f"keras-gen {precision}, 1 step/call, no XLA", "keras",
             ["--precision", policy, "--jit", "off", "--spe", "1"]),
            (f"keras-gen {precision}, auto", "keras", ["--precision", policy, "--jit", "auto", "--spe", "auto"]),
            (f"keras-gen {precision}, auto with XLA flipped", "keras",
             ["--precision", policy, "--jit", "not-auto", "--spe", "auto"]),
        ]
    if auto_only:
        out = [config for config in out if config[1] != "keras" or config[0].endswith(", auto")]
    return out


def _busy():
    """(busy, total) CPU time of the whole machine so far, in clock ticks (None off Linux)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(values) - values[3] - values[4], sum(values)


def wait_quiet(seconds, idle_below=0.15):
    """Wait up to `seconds` for a 3-second spell in which the machine is mostly idle."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        before = _busy()
        time.sleep(3)
        after = _busy()
        if before is None or (after[0] - before[0]) / max(1, after[1] - before[1]) < idle_below:
            return


def run(cmd, pythonpath=None, epochs=TIMED_EPOCHS):
    """(the figure the command printed, the share of CPU time other processes took meanwhile)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    before, usage = _busy(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    after, used = _busy(), resource.getrusage(resource.RUSAGE_CHILDREN)
    other = None
    if before is not None and after[1] > before[1]:
        own = (used.ru_utime + used.ru_stime - usage.ru_utime - usage.ru_stime) * os.sysconf("SC_CLK_TCK")
        other = max(0.0, (after[0] - before[0] - own) / (after[1] - before[1]))
    if out.returncode:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    if out.stdout.startswith("ceiling "):
        return json.loads(out.stdout[len("ceiling "):]), other
    match = re.search(r"([\d.]+) img/s", out.stdout)
    if not match:
        sys.exit(f"benchmark command printed no figure: {' '.join(cmd)}\n{out.stdout[-500:]}{out.stderr[-2000:]}")
    return float(match.group(1)), other


def print_rounds(results, others, ceiling_label):
    """Print every configuration's figure per round, its median and the median other load (the
    ceiling's row split by dtype); return the ceiling's GFLOP/s per dtype, per round."""

    def load(label):
        values = [v for v in others[label] if v is not None]
        return f"{statistics.median(values):.2f}" if values else "-"

    rounds = len(results[ceiling_label])
    print("| configuration | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median | other load |")
    print("| --- |" + " --- |" * (rounds + 2))
    gflops = {dt: [c[dt] for c in results[ceiling_label]] for dt in results[ceiling_label][0]}
    for dt, values in gflops.items():
        print(f"| {ceiling_label}, {dt} | " + " | ".join(f"{v:.0f}" for v in values)
              + f" | {statistics.median(values):.0f} | {load(ceiling_label)} |")
    for label, values in results.items():
        if label != ceiling_label:
            print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in values)
                  + f" | {statistics.median(values):.0f} | {load(label)} |")
    return gflops


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help="run one keras-gen configuration")
    p.add_argument("--ceiling", action="store_true", help="measure the CPU's GFLOP/s (a worker)")
    p.add_argument("--bf16", action="store_true", help="with --ceiling: bfloat16 too")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--jit", default="off", choices=["on", "off", "auto", "not-auto"],
                   help="XLA: on, off, keras_gen.hardware.auto_jit_compile() or its opposite")
    p.add_argument("--spe", default="1", type=steps_per_call,
                   help="steps per execution: a number, or auto (steps_per_execution_for)")
    p.add_argument("--epochs", type=positive_int, default=TIMED_EPOCHS, help="timed epochs after the warm-up one")
    p.add_argument("--torch-python", default="~/.venvs/torchref/bin/python")
    p.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    p.add_argument("--baseline-tree", help="also run the keras-gen configurations from this source tree")
    p.add_argument("--auto-only", action="store_true",
                   help="of keras-gen's configurations, only what `keras-gen train` runs (auto)")
    p.add_argument("--quiet-wait", type=non_negative_float, default=0,
                   help="wait up to this many seconds for an idle machine before each configuration")
    p.add_argument("--list", action="store_true", help="print the CPU and the configurations that would run")
    p.add_argument("--cpuinfo", help="with --list: read this file as the CPU's (a run measures the real one)")
    args = p.parse_args()
    if args.cpuinfo and not args.list:
        # A measurement labelled with another CPU's flags would be a false label: oneDNN, XLA
        # and the workers' auto choices all follow the real CPU.
        p.error("--cpuinfo works only with --list")
    args.cpuinfo = args.cpuinfo or "/proc/cpuinfo"
    if args.baseline_tree and not (Path(args.baseline_tree) / "keras_gen").is_dir():
        p.error(f"--baseline-tree {args.baseline_tree} holds no keras_gen package")
    if args.worker:
        return worker(args.precision, args.jit, args.spe, args.epochs)
    if args.ceiling:
        return ceiling_worker(args.bf16)

    from keras_gen.hardware import (auto_jit_compile, cpu_info, cpu_kind, describe_cpu, has_native_bfloat16,
                                    steps_per_execution_for)

    name, flags = cpu_info(args.cpuinfo)
    isa = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    cpu_line = (f"{describe_cpu(args.cpuinfo)} (kind {cpu_kind(flags)}; {' '.join(isa) or 'no AVX flags'}); "
                f"auto: XLA {'on' if auto_jit_compile(flags) else 'off'}, "
                f"{steps_per_execution_for(STEPS_PER_EPOCH)} steps per call")
    has_bf16 = has_native_bfloat16(flags)
    todo = configs(has_bf16, args.auto_only)
    if args.baseline_tree:
        tree = str(Path(args.baseline_tree).resolve())
        todo += [(f"{label} (baseline tree)", "baseline", argv) for label, kind, argv in todo if kind == "keras"]
    if args.list:
        print(cpu_line)
        print("" if has_bf16 else "no native bfloat16: bf16 configurations skipped")
        for label, kind, argv in todo:
            print(f"{label}: {kind} {' '.join(argv)}")
        return None

    try:
        torch_python = executable(args.torch_python)
    except argparse.ArgumentTypeError as exc:
        p.error(f"--torch-python: {exc}")
    results = {label: [] for label, _, _ in todo}
    others = {label: [] for label, _, _ in todo}
    for r in range(args.rounds):
        for label, kind, argv in rotated(todo, r):
            if kind == "torch":
                cmd = [torch_python, str(PEER), "--epochs", str(args.epochs), *argv]
            elif kind == "ceiling":
                cmd = [sys.executable, str(Path(__file__).resolve()), "--ceiling", *argv]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--epochs", str(args.epochs), *argv]
            wait_quiet(args.quiet_wait)
            value, other = run(cmd, tree if kind == "baseline" else None)
            results[label].append(value)
            others[label].append(other)
            shown = json.dumps({k: round(v) for k, v in value.items()}) if isinstance(value, dict) else f"{value:.0f}"
            load = "" if other is None else f" (other load {other:.2f})"
            print(f"round {r + 1}: {label}: {shown}{load}", file=sys.stderr, flush=True)

    print(f"\nDCGAN training throughput, images/s, batch {BATCH}, {time.strftime('%Y-%m-%d')}, {cpu_line}; "
          f"{threads_line()}\n")
    gflops = print_rounds(results, others, todo[0][0])

    print("\n| ratio | per round | median | fraction of the ceiling (same precision) |")
    print("| --- | --- | --- | --- |")
    for label, kind, _ in todo:
        if kind not in ("keras", "baseline"):
            continue
        precision = "bf16" if "bf16" in label else "fp32"
        peer, dt = f"PyTorch eager {precision}", "bfloat16" if precision == "bf16" else "float32"
        ceiling = [g * 1e9 / FLOP_PER_IMAGE for g in gflops[dt]]
        per_round = [x / y for x, y in zip(results[label], results[peer])]
        fraction = statistics.median(x / c for x, c in zip(results[label], ceiling))
        print(f"| {label} / {peer} | " + ", ".join(f"{v:.2f}" for v in per_round)
              + f" | {statistics.median(per_round):.2f} | {fraction:.0%} |")
    for precision in ("fp32", "bf16"):
        peer = f"PyTorch eager {precision}"
        if peer in results:
            dt = "bfloat16" if precision == "bf16" else "float32"
            fraction = statistics.median(
                x / (g * 1e9 / FLOP_PER_IMAGE) for x, g in zip(results[peer], gflops[dt]))
            print(f"| {peer} (the peer) | | | {fraction:.0%} |")
    if args.baseline_tree:  # a change's effect: this tree against the other, round by round
        print("\n| configuration | this tree / baseline tree, per round | median |")
        print("| --- | --- | --- |")
        for label, kind, _ in todo:
            if kind == "keras":
                per_round = [x / y for x, y in zip(results[label], results[f"{label} (baseline tree)"])]
                print(f"| {label} | " + ", ".join(f"{v:.2f}" for v in per_round)
                      + f" | {statistics.median(per_round):.2f} |")
    print(f"\nceiling: {FLOP_PER_IMAGE / 1e6:.0f} MFLOP per image per step (keras-gen's; PyTorch's G step also "
          f"computes D's weight gradients, {PEER_EXTRA_FLOP / 1e6:.0f} MFLOP more, which its fraction leaves out); "
          "fraction = img/s x MFLOP / GFLOP/s, per round, median" + rounds_note(args.rounds))


if __name__ == "__main__":
    main()
