"""Offline evaluation of generated digits: FID, KID, precision/recall, density/coverage,
class coverage and memorisation, in the feature space of a classifier that ships with the
package (`load_feature_network("mnist28")`) instead of a downloaded Inception net.

    from keras_gen import metrics
    figures = metrics.evaluate(model, "mnist5k", n=1000)     # a model: samples, labels, bits/dim
    figures = metrics.evaluate_samples(samples_uint8)        # [N, 28, 28, 1] uint8, N >= 1000
    floors = metrics.reference_floors("mnist28")             # real-vs-real and noise-vs-real

The distances (`keras_gen.metrics.distances`) are numpy/scipy and take any `[N, D]`
features; TensorFlow is imported only when a feature network is loaded or built.
"""
from __future__ import annotations

import numpy as np

from keras_gen.errors import KerasGenError
from keras_gen.metrics.distances import (
    COVERED_FRACTION,
    KL_PSEUDOCOUNT,
    NEAR_COPY_PERCENTILE,
    ClassCoverage,
    Memorisation,
    class_coverage,
    density_coverage,
    fid,
    frechet_distance,
    kid,
    knn_radii,
    memorisation,
    mmd2_unbiased,
    nearest_distances,
    precision_recall,
)
from keras_gen.metrics.evaluation import (
    FEATURE_NETWORKS,
    bayes_accuracy,
    evaluate,
    label_accuracy,
    network_for,
    network_name_for,
    test_bits_per_dim,
)
from keras_gen.metrics.features import (
    RECIPES,
    FeatureNetwork,
    build_feature_network,
    load_feature_network,
    shipped,
)

__all__ = [
    "COVERED_FRACTION",
    "FEATURE_NETWORKS",
    "bayes_accuracy",
    "KL_PSEUDOCOUNT",
    "NEAR_COPY_PERCENTILE",
    "RECIPES",
    "ClassCoverage",
    "FeatureNetwork",
    "Memorisation",
    "build_feature_network",
    "class_coverage",
    "density_coverage",
    "evaluate",
    "evaluate_samples",
    "fid",
    "frechet_distance",
    "kid",
    "knn_radii",
    "label_accuracy",
    "load_feature_network",
    "memorisation",
    "mmd2_unbiased",
    "nearest_distances",
    "network_for",
    "network_name_for",
    "precision_recall",
    "reference_floors",
    "shipped",
    "test_bits_per_dim",
]

DEFAULT_N = 1000  # the size of the mnist5k test split: samples and reference at one size
PR_K, DC_K = 3, 5  # k of precision/recall and of density/coverage, as their papers recommend
# The fewest samples scored: recall's radii are each sample's PR_K-th nearest other sample.
MIN_SAMPLES = PR_K + 1


def check_sample_count(n) -> int:
    """`n`, the number of samples to score, as an int of at least `MIN_SAMPLES`; a one-line
    error otherwise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < MIN_SAMPLES:
        raise KerasGenError(f"n must be a whole number of at least {MIN_SAMPLES} (recall's radii are each "
                            f"sample's {PR_K}rd nearest other sample), got {n!r}")
    return int(n)


def _network(name) -> FeatureNetwork:
    return name if isinstance(name, FeatureNetwork) else load_feature_network(name)


def _uint8_images(images, what: str, shape) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise KerasGenError(
            f"{what} must be uint8 images [N, {', '.join(map(str, shape))}] in 0..255, got {images.dtype} "
            f"{list(images.shape)} (convert float images in [0, 1] with keras_gen.images.to_uint8)"
        )
    return images


def _pixels(images) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _figures(net: FeatureNetwork, samples, test, kid_subset_size, seed):
    """Everything but memorisation: samples against the reference `test` images."""
    f_samples, p_samples = net.features_and_classes(samples)
    f_test, p_test = net.features_and_classes(test)
    kid_mean, kid_std = kid(f_samples, f_test, subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(f_test, f_samples, k=PR_K)
    density, coverage = density_coverage(f_test, f_samples, k=DC_K)
    classes = class_coverage(p_samples, p_test, p_samples.shape[1])
    return {
        "fid": fid(f_samples, f_test),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "classes_covered": classes.classes_covered,
        "class_kl": classes.class_kl,
    }


def _references(net: FeatureNetwork, real_train, real_test):
    from keras_gen.metrics.features import network_images

    shape = net.image_shape
    train = network_images(net, "train")[0] if real_train is None else real_train
    test = network_images(net, "test")[0] if real_test is None else real_test
    return _uint8_images(train, "real_train", shape), _uint8_images(test, "real_test", shape)


def evaluate_samples(
    samples_uint8,
    name="mnist28",
    real_train=None,
    real_test=None,
    n: int | None = DEFAULT_N,
    kid_subset_size: int | None = None,
    seed: int = 0,
) -> dict:
    """Score generated images against real ones; a dict of floats (and one int).

    Args:
      samples_uint8: generated images, uint8 `[N, 28, 28, 1]` (the network's image shape).
      name: a feature network name, or a loaded `FeatureNetwork`.
      real_train: the generator's training images (memorisation); default the network's
        data, train split (mnist5k: 4,000 images).
      real_test: held-out real images, disjoint from `real_train`, to compare against;
        default the network's data, test split (mnist5k: 1,000 images).
      n: use the first `n` samples (an error if there are fewer); None uses all. FID is
        biased by the sample size, so the default, 1,000, matches the mnist5k test split
        and `reference_floors`: compare models only at one `n`.
      kid_subset_size: KID's subset size; default half the smaller set, at most 1,000, so
        that the 100 subsets differ and kid_std measures their spread.
      seed: KID's subset draws.

    Returns, in the network's 128-d feature space unless said otherwise:
      fid; kid_mean, kid_std (subsets of the two sets); precision, recall (k=3);
      density, coverage (k=5); classes_covered (of 10) and class_kl (KL of the samples'
      predicted-class histogram from the test images' predicted-class histogram, both by
      the same classifier, so its errors largely cancel); near_copy_fraction (in pixel
      space, [0, 1]-scaled: the fraction of samples closer to a training image than 99%
      of test images are, see `memorisation`).
    """
    net = _network(name)
    samples = _uint8_images(samples_uint8, "samples", net.image_shape)
    if n is not None:
        n = check_sample_count(n)
        if len(samples) < n:
            raise KerasGenError(f"evaluate_samples was given {len(samples)} samples, fewer than n={n}; pass n=None to use all")
        samples = samples[:n]
    train, test = _references(net, real_train, real_test)
    if kid_subset_size is None:
        kid_subset_size = max(2, min(1000, min(len(samples), len(test)) // 2))
    figures = _figures(net, samples, test, kid_subset_size, seed)
    figures["near_copy_fraction"] = memorisation(_pixels(samples), _pixels(train), _pixels(test)).near_copy_fraction
    return figures


def reference_floors(name="mnist28", n: int = DEFAULT_N, seed: int = 0) -> dict:
    """The figures `evaluate_samples` gives a perfect and a useless generator, at size `n`.

    Returns `{"floor": figures, "ceiling": figures}`, each with `evaluate_samples`' keys:

    - floor: `n` real training images (a seeded draw, all if there are fewer) scored as
      samples against the real test split: the best a generator can expect at this size
      (FID and KID are not 0 for finite sets). Scored against its own training set, every
      real training image would be a "near-copy"; the floor's `near_copy_fraction` is
      instead what fresh real images give: test images of odd index against the threshold
      taken from those of even index (about the 1% that the threshold admits by design).
    - ceiling: `n` images of uniform uint8 noise (seeded) against the real test split.
    """
    net = _network(name)
    train, test = _references(net, None, None)
    rng = np.random.default_rng(seed)
    draw = np.sort(rng.choice(len(train), min(n, len(train)), replace=False))
    floor = evaluate_samples(train[draw], net, n=None, seed=seed)
    floor["near_copy_fraction"] = memorisation(_pixels(test[1::2]), _pixels(train), _pixels(test[0::2])).near_copy_fraction
    noise = rng.integers(0, 256, size=(n, *net.image_shape), dtype=np.uint8)
    return {"floor": floor, "ceiling": evaluate_samples(noise, net, n=None, seed=seed)}
