"""PixelCNN training throughput: keras-gen against the PyTorch peer, interleaved, in one run.

The peer is `../shared/bench/torch_pixelcnn.py`: the `pixelcnn-mnist5k` zoo architecture (grey
28x28, masked 7x7 type-A convolution to 64 maps, 7 residual [ReLU -> masked 3x3 type-B], ReLU
-> 1x1 (64) -> ReLU -> 1x1 to 256 logits per pixel), cross-entropy over the 256 grey levels,
Adam(1e-3), batch 64, on the first `--images` images of a shuffle of the 5,000 embedded MNIST
images; one warm-up epoch, then `--epochs` timed ones. keras-gen trains its `PixelCNN` at
exactly those settings, and its `GatedPixelCNN` at equal size (64 maps, 7 gated layers of 3x3
kernels after a 7x7 first layer: two stacks, so more work per image) against the same peer.

    python bench/pixelcnn_throughput.py [--rounds 3] [--images 1280]
    python bench/pixelcnn_throughput.py --worker --model gated-pixelcnn --precision mixed_bfloat16

keras-gen runs as `keras-gen train` does on this CPU: XLA where `auto_jit_compile` says,
`steps_per_execution_for(steps per epoch)` steps per call. bfloat16 rows run only on a CPU with
native bfloat16. Each configuration runs in its own process; rounds interleave them; the table
gives every round, the median, and median ratios keras-gen / PyTorch at the same precision,
with the CPU named. The runner (other-load measurement, idle wait, the CPU's GFLOP/s) is
`bench/dcgan_throughput.py`'s.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dcgan_throughput as runner  # noqa: E402  (the shared runner: run, wait_quiet, the ceiling)
from benchargs import (QUOTABLE_ROUNDS, executable, int_range, non_negative_float, positive_int,  # noqa: E402
                       rotated, rounds_note, threads_line)

PEER = HERE.parent.parent / "shared" / "bench" / "torch_pixelcnn.py"
BATCH, FILTERS, LAYERS = 64, 64, 7
MODELS = ("pixelcnn", "gated-pixelcnn")


def flop_per_image(model):
    """Floating-point operations of one training step per image (2 per multiply-add; forward,
    then weight and input gradients: 3x the forward pass, less the input gradient of the layers
    that read the image). Per pixel, f maps: the plain model's 7x7 first layer (49 f), 3x3
    layers (9 f^2 each), 1x1 head (f^2) and logits (256 f). The gated model's first layer reads
    the image with 4x7 vertical and 1x7 horizontal kernels for both halves of its gate
    (2 x 35 f) and has the 1x1 links and output of every gated layer (3 f^2); each further
    layer (k = 3) has 2x3 vertical (12 f^2) and 1x3 horizontal (6 f^2) convolutions to both
    halves, 1x1 vertical-to-horizontal links (2 f^2) and the horizontal output (f^2): 21 f^2,
    against the plain layer's 9 f^2."""
    f = FILTERS
    if model == "pixelcnn":
        reads_image, body = 49 * f, LAYERS * 9 * f * f
    else:
        reads_image, body = 2 * (4 * 7 + 1 * 7) * f, 3 * f * f + LAYERS * 21 * f * f
    pixels = 28 * 28
    forward = pixels * (reads_image + body + f * f + f * 256)
    return 2 * (3 * forward - pixels * reads_image)


def worker(model_name, precision, images, epochs):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_gen import data, hardware, registry

    keras.utils.set_random_seed(0)
    x = np.concatenate([data.load_arrays("mnist5k", split)[0] for split in ("train", "test")])
    x = x[np.random.default_rng(0).permutation(len(x))[:images]]
    steps = len(x) // BATCH
    ds = tf.data.Dataset.from_tensor_slices(x[: steps * BATCH]).batch(BATCH, drop_remainder=True)
    ds = ds.cache().prefetch(tf.data.AUTOTUNE)
    cls = registry.model_class(model_name)
    model = cls(image_shape=(28, 28, 1), filters=FILTERS, num_layers=LAYERS, kernel_size=3, first_kernel_size=7,
                precision=precision)
    jit, group = hardware.auto_jit_compile(), hardware.steps_per_execution_for(steps)
    model.compile(jit_compile=jit, steps_per_execution=group)

    seconds, history = runner.timed_fit(model, ds, epochs)
    print(f"keras-gen {model_name} {precision} jit={jit} steps_per_execution={group}: "
          f"{epochs * steps * BATCH / seconds:.0f} img/s (last epoch {history['bits_per_dim'][-1]:.3f} bits/dim)")


def configs(has_bf16):
    """(label, kind, argv, model): kind "torch", "keras" or "ceiling"."""
    out = [("CPU GFLOP/s (TensorFlow matmul/conv)", "ceiling", ["--bf16"] if has_bf16 else [], None)]
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and not has_bf16:
            continue
        policy = "float32" if precision == "fp32" else "mixed_bfloat16"
        out.append((f"PyTorch eager pixelcnn {precision}", "torch", ["--precision", precision], "pixelcnn"))
        for model in MODELS:
            out.append((f"keras-gen {model} {precision}", "keras", ["--model", model, "--precision", policy], model))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help="run one keras-gen configuration")
    p.add_argument("--model", default="pixelcnn", choices=MODELS)
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--images", type=int_range(BATCH, 5000), default=1280,
                   help=f"images per epoch (the peer's --images), {BATCH} to 5000")
    p.add_argument("--epochs", type=positive_int, default=1, help="timed epochs after the warm-up one")
    p.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    p.add_argument("--torch-python", default="~/.venvs/torchref/bin/python")
    p.add_argument("--quiet-wait", type=non_negative_float, default=0,
                   help="wait up to this many seconds for an idle machine before each configuration")
    args = p.parse_args()
    if args.worker:
        return worker(args.model, args.precision, args.images, args.epochs)

    from keras_gen.hardware import auto_jit_compile, describe_cpu, has_native_bfloat16, steps_per_execution_for

    try:
        torch_python = executable(args.torch_python)
    except argparse.ArgumentTypeError as exc:
        p.error(f"--torch-python: {exc}")
    has_bf16 = has_native_bfloat16()
    todo = configs(has_bf16)
    results = {label: [] for label, *_ in todo}
    others = {label: [] for label, *_ in todo}
    for r in range(args.rounds):
        for label, kind, argv, _ in rotated(todo, r):
            if kind == "torch":
                cmd = [torch_python, str(PEER), "--epochs", str(args.epochs), "--images", str(args.images), *argv]
            elif kind == "ceiling":
                cmd = [sys.executable, str(HERE / "dcgan_throughput.py"), "--ceiling", *argv]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--epochs", str(args.epochs),
                       "--images", str(args.images), *argv]
            runner.wait_quiet(args.quiet_wait)
            value, other = runner.run(cmd)
            results[label].append(value)
            others[label].append(other)
            shown = json.dumps({k: round(v) for k, v in value.items()}) if isinstance(value, dict) else f"{value:.0f}"
            print(f"round {r + 1}: {label}: {shown}" + ("" if other is None else f" (other load {other:.2f})"),
                  file=sys.stderr, flush=True)

    steps = args.images // BATCH
    print(f"\nPixelCNN training throughput, images/s, batch {BATCH}, {args.images} images per epoch, "
          f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}; keras-gen: XLA {'on' if auto_jit_compile() else 'off'}, "
          f"{steps_per_execution_for(steps)} steps per call; {threads_line()}\n")
    gflops = runner.print_rounds(results, others, todo[0][0])

    # The gated model does more work per image than the peer's plain PixelCNN: its ratio is
    # also given per unit of work (x its FLOP / the plain model's), the figure comparable
    # with the plain model's ratio.
    print("\n| ratio | per round | median | median per unit of work | fraction of the ceiling (same precision) |")
    print("| --- | --- | --- | --- | --- |")
    for label, kind, _, model in todo:
        if kind == "ceiling":
            continue
        precision = "bf16" if label.endswith("bf16") else "fp32"
        dt = "bfloat16" if precision == "bf16" else "float32"
        ceiling = [g * 1e9 / flop_per_image(model) for g in gflops[dt]]
        fraction = statistics.median(x / c for x, c in zip(results[label], ceiling))
        if kind == "torch":
            print(f"| {label} (the peer) | | | | {fraction:.0%} |")
            continue
        peer = f"PyTorch eager pixelcnn {precision}"
        per_round = [x / y for x, y in zip(results[label], results[peer])]
        work = flop_per_image(model) / flop_per_image("pixelcnn")
        print(f"| {label} / {peer} | " + ", ".join(f"{v:.2f}" for v in per_round)
              + f" | {statistics.median(per_round):.2f} | {statistics.median(per_round) * work:.2f} | {fraction:.0%} |")
    print("\nceiling: " + ", ".join(f"{m} {flop_per_image(m) / 1e9:.2f} GFLOP" for m in MODELS)
          + " per image per step; fraction = img/s x GFLOP / GFLOP/s, per round, median")
    if has_bf16:
        print("bf16: keras-gen computes its 1x1 logits layer (256 maps) in float32 under mixed_bfloat16, "
              "PyTorch's autocast in bfloat16 (about 6% of the forward multiply-adds)")
    print(rounds_note(args.rounds).strip())


if __name__ == "__main__":
    main()
