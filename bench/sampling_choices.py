"""Sampling-time choices of the trained zoo GANs, measured on their shipped weights: the EMA
generator against the raw generator it averages, and BigGAN's truncation trick.

Each row scores 1,000 samples (seed 0) against the 1,000 mnist5k test images with
`keras_gen.metrics.evaluate_samples` (the cards' figures); conditional rows add the label
accuracy of `sample(labels=k)`. No training: the choices compared here are made at sampling
time, on one set of weights.

    python bench/sampling_choices.py [--entry biggan-mnist5k] [--truncation 2.0 1.0 0.5]
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import positive_float  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N = 1000


def score(model, network, generator=None, truncation=None):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_gen import metrics
    from keras_gen.images import to_uint8

    def draw(labels=None):  # what model.sample(N, 0, labels) draws, from `generator`
        z = model.latents(N, 0, truncation=truncation)
        if getattr(model, "num_classes", None) and labels is None:
            labels = model._labels_graph(N, 0)
        images = generator(model.generator_inputs(z, labels), training=False)
        return to_uint8((keras.ops.convert_to_numpy(images).astype(np.float32) + 1.0) / 2.0)

    figures = metrics.evaluate_samples(draw(), network, n=N)
    if getattr(model, "num_classes", None):
        labels = np.arange(N) % model.num_classes
        figures["label_accuracy"] = float(np.mean(
            network.predict_classes(draw(tf.constant(labels, tf.int32))).argmax(axis=1) == labels))
    return figures


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entry", action="append", help="zoo entries (default: every entry with an EMA generator)")
    p.add_argument("--truncation", type=positive_float, nargs="*", default=[2.0, 1.0, 0.5])
    args = p.parse_args()

    from keras_gen import metrics, zoo

    unknown = sorted(set(args.entry or ()) - set(zoo.list()))
    if unknown:
        p.error(f"no zoo entry {', '.join(unknown)} (one of {', '.join(zoo.list())})")
    from keras_gen.hardware import describe_cpu

    network = metrics.load_feature_network("mnist28")
    entries = args.entry or [n for n in zoo.list() if getattr(zoo.load(n, compile=False), "ema_generator", None)]
    rows = []
    start = time.perf_counter()
    for name in entries:
        model = zoo.load(name, compile=False)
        if not hasattr(model, "generator"):
            continue
        if model.ema_generator is not None:
            rows.append((name, "raw generator", score(model, network, model.generator)))
        rows.append((name, "EMA generator" if model.ema_generator is not None else "generator",
                     score(model, network, model.sampling_generator)))
        if model.offers_truncation:
            for t in args.truncation:
                rows.append((name, f"truncation {t:g}", score(model, network, model.sampling_generator, t)))
    print(f"\n{time.strftime('%Y-%m-%d')}, {describe_cpu()}, {time.perf_counter() - start:.0f} s; "
          f"1,000 samples (seed 0) vs the mnist5k test split, mnist28 features\n")
    keys = ["fid", "precision", "recall", "coverage", "classes_covered", "label_accuracy"]
    print("| entry | sampler | " + " | ".join(keys) + " |")
    print("| --- | --- |" + " --- |" * len(keys))
    for name, what, figures in rows:
        print(f"| {name} | {what} | " + " | ".join(
            "–" if figures.get(k) is None else f"{figures[k]:.4g}" for k in keys) + " |")


if __name__ == "__main__":
    main()
