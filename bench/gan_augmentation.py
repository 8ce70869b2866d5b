"""Low-shot classification with GAN-generated data: does a conditional GAN trained on the same
few labels add anything?

For k labelled images per class (k = 5, 10, 50) of the mnist5k train split, drawn per seed:

- **real only**: the domain-adaptation classifier (`keras_gen.models.SourceOnly`: two 5x5
  convolutions with pooling, a 100-100 classifier, Adam(1e-3)) trained on the 10k images,
  `--classifier-steps` batches of 64 drawn with replacement;
- **real + cgan**: the registry's `cgan` (conditional batch norm, projection discriminator,
  hinge loss; `zoo/cgan-mnist5k`'s settings) trained on the same 10k labelled images only (no
  unlabelled ones) for `--gan-steps` steps, then the same classifier for the same number of
  steps on batches of 32 real images (the real-only arm's stream of draws, at half its rate)
  and 32 generated ones, `--per-class` per class from `sample(labels=k)`.

Each is scored on the 1,000-image mnist5k test split (never seen in training); the table gives
mean ± std over the seeds and the difference. Within a seed both arms start from the same
classifier weights and draw real images in the same order, so the difference is what the
generated images do (the mixed arm sees half as many real draws in its steps).

    python bench/gan_augmentation.py                          # k = 5, 10, 50; seeds 0, 1, 2
    python bench/gan_augmentation.py --k 10 --seeds 0 --gan-steps 300   # a quick look
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import int_range, positive_int  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def labelled_subset(labels, k, seed):
    """Indices of k examples per class, drawn with `seed` (sorted)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False)
                                   for c in np.unique(labels)]))


def batches(images, labels, batch, seed):
    """Endless batches of `batch` examples drawn with replacement (a few images make no epoch)."""
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
            .shuffle(max(len(images), 1024), seed=seed).batch(batch, drop_remainder=True))


def train_cgan(images, labels, seed, steps, precision):
    import keras

    from keras_gen.models.cgan import CGAN

    keras.utils.set_random_seed(seed)
    model = CGAN(image_shape=images.shape[1:], num_classes=10, latent_dim=64, precision=precision, seed=seed)
    model.compile()
    model.fit(batches(images, labels, 64, seed), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return model


def generated(model, per_class, seed):
    """`per_class` samples of every class, uint8 images and their labels."""
    import numpy as np

    labels = np.repeat(np.arange(10), per_class).astype("int32")
    images = np.asarray(model.sample(len(labels), seed=seed, labels=labels))
    return np.round(images * 255).astype("uint8"), labels


def train_classifier(real, fake, test, seed, steps, precision):
    """Test accuracy of the classifier trained on batches of `real` (images, labels), or on
    batches of 32 real and 32 `fake` images."""
    import keras
    import tensorflow as tf

    from keras_gen.models.domain_adaptation import SourceOnly

    keras.utils.set_random_seed(seed)
    model = SourceOnly(image_shape=real[0].shape[1:], precision=precision)
    model.compile()
    if fake is None:
        ds = batches(*real, 64, seed)
    else:
        ds = tf.data.Dataset.zip(batches(*real, 32, seed), batches(*fake, 32, seed + 1)).map(
            lambda r, f: (tf.concat([r[0], f[0]], 0), tf.concat([r[1], f[1]], 0)))
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return float(model.evaluate(*test, batch_size=250, verbose=0, return_dict=True)["accuracy"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", nargs="+", type=positive_int, default=[5, 10, 50], help="labelled images per class")
    p.add_argument("--seeds", nargs="+", type=int_range(0, 2**31 - 1), default=[0, 1, 2])
    p.add_argument("--gan-steps", type=positive_int, default=1000)
    p.add_argument("--classifier-steps", type=positive_int, default=400)
    p.add_argument("--per-class", type=positive_int, default=200, help="generated images per class")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--json", help="also write every run's figures to this file")
    args = p.parse_args()

    from keras_gen import data
    from keras_gen.hardware import describe_cpu

    x, y = data.load_arrays("mnist5k", "train")
    test = data.load_arrays("mnist5k", "test")
    smallest = int(min((y == c).sum() for c in range(10)))
    if max(args.k) > smallest:
        p.error(f"--k {max(args.k)}: the mnist5k train split has {smallest} images of its rarest digit")
    rows = []
    for k in args.k:
        for seed in args.seeds:
            chosen = labelled_subset(y, k, seed)
            real = (x[chosen], y[chosen].astype("int32"))
            start = time.perf_counter()
            gan = train_cgan(*real, seed, args.gan_steps, args.precision)
            gan_seconds = time.perf_counter() - start
            fake = generated(gan, args.per_class, seed)
            row = {"k": k, "seed": seed, "gan_seconds": round(gan_seconds, 1),
                   "real": train_classifier(real, None, test, seed, args.classifier_steps, args.precision),
                   "real+cgan": train_classifier(real, fake, test, seed, args.classifier_steps, args.precision)}
            rows.append(row)
            print(f"k {k} seed {seed}: real only {row['real']:.4f}, real + cgan {row['real+cgan']:.4f} "
                  f"(cgan {row['gan_seconds']} s)", file=sys.stderr, flush=True)

    def cell(values):
        if len(values) == 1:
            return f"{100 * values[0]:.1f}"
        return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"

    print(f"\nmnist5k test accuracy (%), mean ± std over seeds {args.seeds}; {time.strftime('%Y-%m-%d')}, "
          f"{describe_cpu()}, {args.precision}; cgan {args.gan_steps} steps, classifier {args.classifier_steps} "
          f"steps of 64, {args.per_class} generated images per class\n")
    print("| labelled per class | real only | real + cgan | difference |")
    print("| --- | --- | --- | --- |")
    for k in args.k:
        mine = [r for r in rows if r["k"] == k]
        print(f"| {k} | {cell([r['real'] for r in mine])} | {cell([r['real+cgan'] for r in mine])} | "
              f"{cell([r['real+cgan'] - r['real'] for r in mine])} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
