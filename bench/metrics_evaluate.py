"""keras_gen.metrics: wall time of evaluate_samples at 5,000 vs 5,000, and the shipped
network's floors / ceilings; optionally a zoo DCGAN's figures at n = 1,000.

    python bench/metrics_evaluate.py [--zoo dcgan-mnist5k] [--rounds 3]

The 5,000 "fake" images are the zoo DCGAN's samples (seed 0), else the 5,000 mnist5k images
shuffled; the 5,000 reference images are all mnist5k images (train + test). Memorisation
runs against the 4,000-image train split (the near-copy figure of this timing run is
meaningless, as the reference contains the training images; only its time counts).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import QUOTABLE_ROUNDS, positive_int, rounds_note  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zoo", default="dcgan-mnist5k")
    parser.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    args = parser.parse_args()
    if args.zoo:
        from keras_gen import zoo

        if args.zoo not in zoo.list():
            parser.error(f"--zoo {args.zoo}: no such zoo entry (one of {', '.join(zoo.list())})")

    import numpy as np

    from keras_gen import data, metrics
    from keras_gen.hardware import describe_cpu
    from keras_gen.images import to_uint8

    t = time.perf_counter()
    net = metrics.load_feature_network("mnist28")
    print(f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}")
    print(f"load_feature_network (incl. TensorFlow import): {time.perf_counter() - t:.1f} s")
    train = data.load_arrays("mnist5k", "train")[0]
    everything = np.concatenate([train, data.load_arrays("mnist5k", "test")[0]])
    fake, source, model = None, "mnist5k shuffled", None
    if args.zoo:
        try:
            import keras_gen.zoo

            model = keras_gen.zoo.load(args.zoo, compile=False)
            fake, source = to_uint8(model.sample(5000, 0)), f"{args.zoo} samples (seed 0)"
        except Exception as exc:  # the zoo is another team's; the timing does not need it
            print(f"zoo entry {args.zoo!r} unavailable ({str(exc)[:120]}); timing on real images")
            model = None
    if fake is None:
        fake = everything[np.random.default_rng(1).permutation(len(everything))]

    times, with_generation = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        if model is not None:  # generation included: what `keras-gen evaluate --n 5000` pays
            fake = to_uint8(model.sample(5000, 0))
        t_metrics = time.perf_counter()
        figures = metrics.evaluate_samples(fake, net, real_train=train, real_test=everything, n=5000,
                                           kid_subset_size=1000)
        times.append(time.perf_counter() - t_metrics)
        with_generation.append(time.perf_counter() - t)
    print(f"evaluate_samples, 5,000 {source} vs 5,000 real: "
          f"{', '.join(f'{x:.1f}' for x in times)} s (median {statistics.median(times):.1f} s)")
    if model is not None:
        print(f"the same with the 5,000 samples generated: {', '.join(f'{x:.1f}' for x in with_generation)} s "
              f"(median {statistics.median(with_generation):.1f} s)")
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items()))

    t = time.perf_counter()
    floors = metrics.reference_floors(net)
    print(f"reference_floors (n=1,000): {time.perf_counter() - t:.1f} s" + rounds_note(args.rounds))
    rows = {"floor": floors["floor"], "ceiling": floors["ceiling"]}
    if fake is not None and args.zoo and source.startswith(args.zoo):
        rows[args.zoo] = metrics.evaluate_samples(fake, net)  # first 1,000 samples vs the test split
    print("| figure | " + " | ".join(rows) + " |")
    print("| --- |" + " --- |" * len(rows))
    for key in rows["floor"]:
        print(f"| {key} | " + " | ".join(f"{r[key]:.4g}" for r in rows.values()) + " |")


if __name__ == "__main__":
    main()
