"""Sampling time of PixelCNN, Gated PixelCNN, PixelRNN and PixelCNN++, cached sampler against naive sampler.

The cached sampler (the network a pixel at a time from cached activations, Ramachandran et
al. 2017) is what `sample` runs; the naive one runs the network once per sub-pixel, on the
rows that pixel can see.

Models: `pixelcnn`, `pixelcnn-large`, `pixelrnn` and `pixelcnn++` are the zoo entries
pixelcnn-mnist5k, pixelcnn-large-mnist5k, pixelrnn-mnist5k and pixelcnnpp-mnist5k (their
recipes' sizes, trained weights), and
`gated-pixelcnn-zoo` the class-conditional zoo entry gated-pixelcnn-mnist5k (classes drawn
from the seed); `gated-pixelcnn` is GatedPixelCNN at its default size (28x28x1, 64 filters,
12 + 1 layers) and `pixelrnn-diagonal` the pixelrnn-mnist5k recipe's
size with Diagonal BiLSTM layers, both with seeded initial weights (the time does not depend
on them). All in float32 unless `--precision` says otherwise. Each sampler is traced and run once before timing (excluded);
then each round times every (model, batch) cell, naive then cached, with the round's seed,
and a cell's figure is the median of its rounds (wall time; the cached sampler's CPU time
too, which other processes on the machine disturb less). A naive run that takes more than
`--naive-budget` seconds is not repeated (the cell says "1 run"), and batches left out of
`--naive-batches` time the cached sampler only. `identical` says whether the two samplers
drew the same images in every round that ran both.

    python bench/ar_sampling.py [--models pixelcnn pixelcnn-large gated-pixelcnn pixelrnn pixelrnn-diagonal pixelcnn++] [--batches 1 16 64] [--rounds 3]
    python bench/ar_sampling.py --models gated-pixelcnn-zoo --batches 1 16 64 --naive-batches 1 16
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import QUOTABLE_ROUNDS, int_range, non_negative_float, positive_int, rounds_note  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET_SECONDS = 1.0  # the goal: 64 samples of 28x28 in under a second
# Models timed with a zoo entry's trained weights; the others are built at a size with seeded weights.
ZOO_ENTRIES = {"pixelcnn": "pixelcnn-mnist5k", "gated-pixelcnn-zoo": "gated-pixelcnn-mnist5k",
               "pixelrnn": "pixelrnn-mnist5k", "pixelcnn++": "pixelcnnpp-mnist5k",
               "pixelcnn-large": "pixelcnn-large-mnist5k"}


def load(name, precision):
    import keras

    from keras_gen import zoo
    from keras_gen.models import GatedPixelCNN

    if name in ZOO_ENTRIES:  # the entry's weights, in the asked compute dtype
        return zoo.load(ZOO_ENTRIES[name], compile=False, precision=precision)
    keras.utils.set_random_seed(0)
    if name == "pixelrnn-diagonal":
        from keras_gen.models import PixelRNN

        return PixelRNN(rnn="diagonal_bilstm", precision=precision)  # h = 32, 3 layers, as the recipe
    return GatedPixelCNN(precision=precision)


def samplers(model):
    """`{"naive": fn, "cached": fn}`, each `(n, seed) -> uint8 images`, traced once."""
    import tensorflow as tf

    spec = [tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)]

    def sampler(cached):
        return tf.function(lambda n, seed: model._sample_graph(n, seed, cached=cached), input_signature=spec,
                           autograph=False)

    return {"naive": sampler(False), "cached": sampler(True)}


def timed(fn, n, seed):
    """`(wall seconds, CPU seconds of this process, images)`."""
    start, cpu = time.perf_counter(), time.process_time()
    images = fn(n, seed).numpy()
    return time.perf_counter() - start, time.process_time() - cpu, images


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["pixelcnn", "gated-pixelcnn", "pixelrnn", "pixelcnn++"],
                   choices=[*ZOO_ENTRIES, "gated-pixelcnn", "pixelrnn-diagonal"])
    p.add_argument("--batches", type=int_range(1, 10000), nargs="+", default=[1, 16, 64])
    p.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    p.add_argument("--naive-budget", type=non_negative_float, default=120.0,
                   help="seconds: a naive run longer than this is not repeated")
    p.add_argument("--naive-batches", type=int_range(1, 10000), nargs="*",
                   help="the batches that also run the naive sampler (default: every batch)")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    args = p.parse_args()
    naive_batches = set(args.batches if args.naive_batches is None else args.naive_batches)
    if not naive_batches <= set(args.batches):
        p.error(f"--naive-batches {' '.join(map(str, sorted(naive_batches - set(args.batches))))}: not among --batches")

    import numpy as np

    from keras_gen.hardware import describe_cpu

    models = {name: load(name, args.precision) for name in args.models}
    fns = {name: samplers(model) for name, model in models.items()}
    start = time.perf_counter()
    for name in models:  # the first call traces and optimises the graph: not timed
        for fn in fns[name].values():
            fn(1, 0)
    times = {(name, n, kind): [] for name in models for n in args.batches for kind in ("naive", "cached", "cpu")}
    identical = {(name, n): True for name in models for n in args.batches}
    for r in range(args.rounds):
        for name in models:
            for n in args.batches:
                naive_times = times[(name, n, "naive")]
                if n not in naive_batches or (naive_times and naive_times[0] > args.naive_budget):
                    naive = None
                else:
                    seconds, _, naive = timed(fns[name]["naive"], n, r)
                    naive_times.append(seconds)
                seconds, cpu, cached = timed(fns[name]["cached"], n, r)
                times[(name, n, "cached")].append(seconds)
                times[(name, n, "cpu")].append(cpu)
                if naive is not None:
                    identical[(name, n)] &= bool(np.array_equal(naive, cached))
                naive_seconds = (f"{naive_times[-1]:.2f} s" if naive is not None
                                 else "not repeated" if naive_times else "not run")
                print(f"round {r + 1}: {name} batch {n}: naive {naive_seconds}, cached {seconds:.3f} s", flush=True)

    load_average = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{time.strftime('%Y-%m-%d')}, {describe_cpu()}, {args.precision}, {time.perf_counter() - start:.0f} s "
          f"(load average at the end: {load_average}); 28x28x1 images, median of {args.rounds} rounds\n")
    print("| model | batch | naive (s) | cached (s) | cached, CPU time (s) | speed-up | identical images |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in models:
        for n in args.batches:
            naive, cached = times[(name, n, "naive")], times[(name, n, "cached")]
            cpu = statistics.median(times[(name, n, "cpu")])
            if not naive:
                print(f"| {name} | {n} | not run | {statistics.median(cached):.3f} | {cpu:.3f} | - | - |")
                continue
            runs = "" if len(naive) == len(cached) else f" ({len(naive)} run{'s' if len(naive) > 1 else ''})"
            ratio = statistics.median(naive) / statistics.median(cached)
            print(f"| {name} | {n} | {statistics.median(naive):.2f}{runs} | {statistics.median(cached):.3f} | "
                  f"{cpu:.3f} | {ratio:.0f}x | {'yes' if identical[(name, n)] else 'no'} |")
    if 64 in args.batches:
        print()
        for name in models:
            seconds = statistics.median(times[(name, 64, "cached")])
            verdict = "met" if seconds < TARGET_SECONDS else "not met"
            print(f"{name}: 64 samples in {seconds:.2f} s: under {TARGET_SECONDS:g} s {verdict}")
    print(rounds_note(args.rounds).strip())


if __name__ == "__main__":
    main()
