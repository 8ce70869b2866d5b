"""Distances between sets of samples: FID, KID, precision/recall, density/coverage, class
coverage and memorisation. numpy only (no TensorFlow), float64 throughout.

Inputs are feature matrices `[N, D]` (e.g. `FeatureNetwork.features`, or flattened pixels),
one row per image. Pairwise distances are computed in row chunks (`CHUNK_ELEMENTS` float64
values at a time, 32 MB), so 5,000 x 5,000 sets of 128-d features (or 784-d pixels) never
hold a full distance matrix in memory.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from keras_gen.errors import KerasGenError

CHUNK_ELEMENTS = 1 << 22  # distances per chunk: 4M float64 = 32 MB


def _features(x, what: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # 1-D points
    if x.ndim != 2:
        raise KerasGenError(f"{what} must be a [N, D] feature matrix, got shape {list(x.shape)}")
    if len(x) < min_rows:
        raise KerasGenError(f"{what} needs at least {min_rows} rows, got {len(x)}")
    if not np.all(np.isfinite(x)):
        raise KerasGenError(f"{what} contains NaN or infinite values")
    return x


def _pair(a, b, what: str, min_rows: int = 1):
    a, b = _features(a, f"{what} first set", min_rows), _features(b, f"{what} second set", min_rows)
    if a.shape[1] != b.shape[1]:
        raise KerasGenError(f"{what}: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    return a, b


def squared_distances_chunks(a: np.ndarray, b: np.ndarray):
    """Yield `(start, d2)`: squared Euclidean distances of rows `a[start:start+c]` to all of `b`.

    ‖a − b‖² = ‖a‖² + ‖b‖² − 2 aᵀb, in float64, clipped at 0 (rounding can make it
    slightly negative for identical rows).
    """
    a2, b2 = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    rows = max(1, CHUNK_ELEMENTS // max(1, len(b)))
    for start in range(0, len(a), rows):
        d2 = a2[start:start + rows, None] + b2[None, :] - 2.0 * (a[start:start + rows] @ b.T)
        yield start, np.maximum(d2, 0.0, out=d2)


def _nearest_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(len(a))
    for start, d2 in squared_distances_chunks(a, b):
        out[start:start + len(d2)] = d2.min(axis=1)
    return out


def nearest_distances(a, b) -> np.ndarray:
    """`[len(a)]`: the Euclidean distance of each row of `a` to its nearest row of `b`."""
    return np.sqrt(_nearest_sq(*_pair(a, b, "nearest_distances")))


def _knn_sq(x: np.ndarray, k) -> np.ndarray:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < len(x):
        raise KerasGenError(f"k must be a whole number from 1 to N - 1 = {len(x) - 1}, got {k!r}")
    out = np.empty(len(x))
    for start, d2 in squared_distances_chunks(x, x):
        d2[np.arange(len(d2)), start + np.arange(len(d2))] = 0.0  # a row's own distance, exactly
        # Sorted, index 0 is the row itself (0), so index k is its k-th neighbour.
        out[start:start + len(d2)] = np.partition(d2, k, axis=1)[:, k]
    return out


def knn_radii(x, k: int) -> np.ndarray:
    """`[N]`: the distance of each row of `x` to its k-th nearest *other* row of `x`."""
    return np.sqrt(_knn_sq(_features(x, "knn_radii"), k))


# --------------------------------------------------------------------------- FID


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via its eigendecomposition.

    Eigenvalues below `max(λ) · D · eps` (rounding noise of a singular matrix, possibly
    negative) are set to 0.
    """
    w, v = np.linalg.eigh(sigma)
    w = np.where(w > max(w.max(), 0.0) * len(w) * np.finfo(np.float64).eps, w, 0.0)
    return (v * np.sqrt(w)) @ v.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((Σ1 Σ2)^½) = Σ √λᵢ(√Σ1 Σ2 √Σ1).

    Σ1 Σ2 is similar to √Σ1 Σ2 √Σ1 (when Σ1 is invertible, and by continuity otherwise),
    which is symmetric PSD: its eigenvalues are real and ≥ 0, so no complex square root of
    a non-symmetric matrix is needed, and a singular Σ1 or Σ2 is no special case.
    """
    s1 = _psd_sqrt(sigma1)
    m = s1 @ sigma2 @ s1
    w = np.linalg.eigvalsh((m + m.T) / 2.0)
    w = np.where(w > max(w.max(), 0.0) * len(w) * np.finfo(np.float64).eps, w, 0.0)
    return float(np.sqrt(w).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein²) distance between Gaussians N(μ1, Σ1) and N(μ2, Σ2).

        d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)

    (Dowson & Landau 1982; used as FID by Heusel et al. 2017, "GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium"). The trace of the square
    root is computed as Σ √λᵢ of the symmetric PSD matrix √Σ1 Σ2 √Σ1 (eigenvalues below
    rounding level clipped to 0), which stays accurate when a covariance is singular or
    near singular (fewer samples than dimensions, duplicated features). Clipped at 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise KerasGenError(
            f"frechet_distance needs means [D] and covariances [D, D] of one D; got {list(mu1.shape)}, "
            f"{list(sigma1.shape)}, {list(mu2.shape)}, {list(sigma2.shape)}"
        )
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2.0, (sigma2 + sigma2.T) / 2.0
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))


def fid(features_a, features_b) -> float:
    """Fréchet Inception Distance (Heusel et al. 2017) between two feature sets `[N, D]`.

    The Fréchet distance (`frechet_distance`) between Gaussians fitted to each set: the
    sample means and the unbiased (N − 1) sample covariances. FID is biased upwards at
    small N (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where
    to find them"): compare figures only at equal sample sizes.
    """
    a, b = _pair(features_a, features_b, "fid", min_rows=2)
    return frechet_distance(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))


# --------------------------------------------------------------------------- KID


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / D + 1)³ for all row pairs."""
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    return k * k * k  # not ** 3: numpy's pow is several times slower


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD²_u (Gretton et al. 2012, "A Kernel Two-Sample Test") with the cubic
    polynomial kernel k(x, y) = (xᵀy / D + 1)³ of KID:

        MMD²_u = Σ_{i≠j} k(xᵢ, xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (n(n−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / (mn)
    """
    x, y = _pair(x, y, "mmd2_unbiased", min_rows=2)
    m, n = len(x), len(y)
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): `(mean, std)`.

    The unbiased MMD² (`mmd2_unbiased`) with kernel k(x, y) = (xᵀy / D + 1)³, averaged
    over `subsets` pairs of random subsets of `subset_size` rows (drawn without replacement
    within a subset, independently across subsets; seeded), with the population standard
    deviation of the subset estimates. `subset_size` is capped at the smaller set's size.
    Unlike FID the estimator is unbiased: its expectation is 0 when both sets come from one
    distribution, so small negative values occur.
    """
    a, b = _pair(features_a, features_b, "kid", min_rows=2)
    for value, what in ((subsets, "subsets"), (subset_size, "subset_size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise KerasGenError(f"kid: {what} must be a whole number of at least 1, got {value!r}")
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    m = max(2, min(subset_size, len(a), len(b)))
    rng = np.random.default_rng(seed)
    # Many small products: a second BLAS thread saves little on an idle machine and, on a
    # busy one, spins against other processes (measured 5x slower on 2 shared cores).
    with threadpool_limits(limits=1, user_api="blas"):
        estimates = [
            mmd2_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
            for _ in range(subsets)
        ]
    return float(np.mean(estimates)), float(np.std(estimates))


# --------------------------------------------------------------------------- k-NN manifolds


def _balls_holding(points: np.ndarray, centres: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """`[len(points)]`: how many balls B(centreᵢ, √r2ᵢ) (boundary included) hold each point."""
    counts = np.empty(len(points), dtype=np.int64)
    for start, d2 in squared_distances_chunks(points, centres):
        counts[start:start + len(d2)] = (d2 <= r2[None, :]).sum(axis=1)
    return counts


def precision_recall(real, fake, k: int = 3):
    """Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and
    Recall Metric for Assessing Generative Models"): `(precision, recall)`.

    Each set's manifold is the union of balls around its points, of radius the distance to
    the point's k-th nearest neighbour within the set:

        precision = (1/M) Σⱼ 1[fakeⱼ ∈ ∪ᵢ B(realᵢ, NN_k(realᵢ))]   (fakes that look real)
        recall    = (1/N) Σᵢ 1[realᵢ ∈ ∪ⱼ B(fakeⱼ, NN_k(fakeⱼ))]   (reals the fakes cover)

    Ball boundaries are included (≤).
    """
    real, fake = _pair(real, fake, "precision_recall", min_rows=2)
    precision = np.mean(_balls_holding(fake, real, _knn_sq(real, k)) > 0)
    recall = np.mean(_balls_holding(real, fake, _knn_sq(fake, k)) > 0)
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5):
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics
    for Generative Models"): `(density, coverage)`.

    With balls B(realᵢ, NN_k(realᵢ)) around the N real points only (the fakes' outliers do
    not inflate a fake manifold):

        density  = 1/(kM) Σⱼ Σᵢ 1[fakeⱼ ∈ B(realᵢ, NN_k(realᵢ))]   (about 1 for a perfect
                   generator; above 1 when fakes crowd dense real regions)
        coverage = (1/N) Σᵢ 1[∃ j: fakeⱼ ∈ B(realᵢ, NN_k(realᵢ))]  (in [0, 1])
    """
    real, fake = _pair(real, fake, "density_coverage", min_rows=2)
    r2 = _knn_sq(real, k)
    density = _balls_holding(fake, real, r2).sum() / (k * len(fake))
    coverage = np.mean(_nearest_sq(real, fake) <= r2)
    return float(density), float(coverage)


# --------------------------------------------------------------------------- classes


class ClassCoverage(NamedTuple):
    histogram: np.ndarray  # [K] fraction of samples per class
    classes_covered: int
    class_kl: float  # KL(samples ‖ reference), nats, smoothed


COVERED_FRACTION = 0.25  # a class is covered at >= 1/4 of its reference share
KL_PSEUDOCOUNT = 1.0  # added to every class count of both histograms before the KL


def _labels(values, num_classes: int, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 2:
        if values.shape[1] != num_classes:
            raise KerasGenError(f"{what}: probabilities have {values.shape[1]} columns, not num_classes={num_classes}")
        return values.argmax(axis=1)
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise KerasGenError(f"{what} must be integer labels [N] or probabilities [N, K], got {values.dtype} {list(values.shape)}")
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise KerasGenError(f"{what}: labels must be in 0..{num_classes - 1}")
    return values


def class_coverage(predicted, reference_labels, num_classes: int = 10) -> ClassCoverage:
    """How the samples' predicted classes spread over the classes, against reference data.

    `predicted`: labels `[N]` or class probabilities `[N, K]` (argmax taken);
    `reference_labels`: labels (or probabilities) of the reference data. With sample shares
    pₖ = nₖ / N and reference shares qₖ:

    - histogram: p (fractions, summing to 1);
    - classes_covered: #{k : qₖ > 0 and pₖ ≥ COVERED_FRACTION · qₖ}, a class counts when
      it gets at least a quarter of its reference share (2.5% of samples for 10 balanced
      digit classes), so a generator that drops or starves a mode scores below K;
    - class_kl: KL(p̃ ‖ q̃) = Σₖ p̃ₖ log(p̃ₖ / q̃ₖ) in nats, with add-one (Laplace) smoothing
      p̃ₖ = (nₖ + 1) / (N + K) and likewise q̃ (KL_PSEUDOCOUNT), so it is finite when a
      class is missing from either side. 0 for identical histograms; log K for all samples
      in one class of a balanced reference as N grows.

    The class-histogram view of mode collapse follows Metz et al. (2017, "Unrolled GANs")
    and Srivastava et al. (2017, "VEEGAN"), who count modes with a pretrained classifier.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise KerasGenError(f"num_classes must be a whole number of at least 1, got {num_classes!r}")
    p_labels = _labels(predicted, num_classes, "predicted")
    q_labels = _labels(reference_labels, num_classes, "reference_labels")
    if not len(p_labels) or not len(q_labels):
        raise KerasGenError("class_coverage needs at least one sample and one reference label")
    n_p = np.bincount(p_labels, minlength=num_classes).astype(np.float64)
    n_q = np.bincount(q_labels, minlength=num_classes).astype(np.float64)
    p, q = n_p / n_p.sum(), n_q / n_q.sum()
    covered = int(np.sum((q > 0) & (p >= COVERED_FRACTION * q)))
    ps = (n_p + KL_PSEUDOCOUNT) / (n_p.sum() + KL_PSEUDOCOUNT * num_classes)
    qs = (n_q + KL_PSEUDOCOUNT) / (n_q.sum() + KL_PSEUDOCOUNT * num_classes)
    return ClassCoverage(p, covered, float(np.sum(ps * np.log(ps / qs))))


# --------------------------------------------------------------------------- memorisation


class Memorisation(NamedTuple):
    near_copy_fraction: float  # fraction of samples closer to train than `threshold`
    threshold: float  # the NEAR_COPY_PERCENTILE-th percentile of test-to-train distances
    sample_distances: np.ndarray  # [M] each sample's distance to its nearest training image
    test_distances: np.ndarray  # [T] each test image's distance to its nearest training image


NEAR_COPY_PERCENTILE = 1.0


def memorisation(samples, train, test, percentile: float = NEAR_COPY_PERCENTILE) -> Memorisation:
    """Does a generator copy its training set? Nearest-neighbour distances to `train`.

    For each sample, d(s) = minᵢ ‖s − trainᵢ‖; for each held-out test image the same,
    d(t). Test images are fresh draws from the data distribution, so d(t) shows how close
    a *new* image usually comes to the training set. A sample is a near-copy when

        d(s) < τ,  τ = the `percentile`-th percentile (default 1st) of {d(t)}

    i.e. closer to a training image than 99% of fresh real images are; a generator that
    draws fresh images flags about 1% of its samples, one that replays its training set
    flags nearly all. (The test-to-train reference is the comparison of Meehan et al.
    2020, "A Non-Parametric Test to Detect Data-Copying in Generative Models", reduced to
    one threshold.) Works on any representation: flattened pixels (rows are reshaped to
    `[N, -1]`) or features. `train` and `test` must not share images.
    """
    def flat(x):
        x = np.asarray(x)
        return x.reshape(len(x), -1)

    samples, train = _pair(flat(samples), flat(train), "memorisation samples/train")
    test = _pair(flat(test), train, "memorisation test/train")[0]
    if not 0 <= percentile <= 100:
        raise KerasGenError(f"percentile must be in [0, 100], got {percentile!r}")
    d_samples, d_test = nearest_distances(samples, train), nearest_distances(test, train)
    threshold = float(np.percentile(d_test, percentile))
    return Memorisation(float(np.mean(d_samples < threshold)), threshold, d_samples, d_test)
