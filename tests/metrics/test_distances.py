"""The distances against closed forms, independent computations and hand-checked cases."""
import itertools

import numpy as np
import pytest
import scipy.linalg

from keras_gen.errors import KerasGenError
from keras_gen.metrics import distances
from keras_gen.metrics.distances import (
    class_coverage,
    density_coverage,
    fid,
    frechet_distance,
    kid,
    knn_radii,
    memorisation,
    mmd2_unbiased,
    precision_recall,
)


def random_features(rng, n, d, scale=1.0, shift=0.0, mix_seed=0):
    """Correlated, non-negative-ish features like a ReLU layer's; one distribution per
    (d, scale, shift, mix_seed), fresh draws from `rng`."""
    mix = np.random.default_rng(mix_seed).normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(size=(n, d)) @ mix * scale + shift, 0.0) + rng.normal(size=(n, d)) * 0.01


def fid_sqrtm(a, b):
    """FID the textbook way: scipy's general matrix square root of Σ1 Σ2."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def fid_svd(a, b):
    """FID via Tr((Σ1Σ2)^½) = ‖X1 X2ᵀ‖_* / √((n1−1)(n2−1)), X the centred data: exact for any rank."""
    x1, x2 = a - a.mean(0), b - b.mean(0)
    c1, c2 = len(a) - 1, len(b) - 1
    trace_root = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum(x1**2) / c1 + np.sum(x2**2) / c2 - 2 * trace_root)


# --------------------------------------------------------------------------- FID


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_of_singular_rotated_gaussians_is_closed_form():
    # Σ1 = Q D1 Qᵀ, Σ2 = Q D2 Qᵀ commute: d² = ‖Δμ‖² + Σ (√d1 − √d2)², also with zeros in D
    # (rank-deficient, and rotated so that the zeros are not exact in floating point).
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    d1, d2 = rng.uniform(0.1, 4.0, 32), rng.uniform(0.1, 4.0, 32)
    d1[:10] = 0.0
    d2[5:15] = 0.0
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(expected, abs=1e-6)


def test_fid_matches_scipy_sqrtm_on_random_features():
    rng = np.random.default_rng(2)
    a = random_features(rng, 600, 32)
    b = random_features(rng, 500, 32, scale=1.3, shift=0.2, mix_seed=1)
    assert fid(a, b) == pytest.approx(fid_sqrtm(a, b), rel=1e-6)
    assert fid(a, b) == pytest.approx(fid_svd(a, b), rel=1e-6)


def test_fid_with_a_duplicated_feature_column():
    # A duplicated column makes both covariances singular. Rotating the pair (u, u) by 45°
    # gives (√2 u, 0): FID is invariant to the rotation and a constant-0 column adds nothing,
    # so the answer is the FID of full-rank features with that column scaled by √2.
    rng = np.random.default_rng(3)
    a, b = random_features(rng, 400, 16), random_features(rng, 400, 16, shift=0.3, mix_seed=1)
    dup = lambda x: np.concatenate([x, x[:, :1]], axis=1)  # noqa: E731
    scaled = lambda x: np.concatenate([x[:, :1] * np.sqrt(2), x[:, 1:]], axis=1)  # noqa: E731
    assert np.linalg.matrix_rank(np.cov(dup(a), rowvar=False)) == 16
    got = fid(dup(a), dup(b))
    assert np.isfinite(got)
    assert got == pytest.approx(fid_sqrtm(scaled(a), scaled(b)), rel=1e-10)


def test_fid_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(4)
    a, b = random_features(rng, 40, 128), random_features(rng, 30, 128, shift=0.1, mix_seed=1)
    got = fid(a, b)
    assert np.isfinite(got)
    # Rank 39 and 29 of 128: the rounding-level eigenvalues of the null space, if their
    # square roots were summed, would cost ~1e-8 relative (scipy's sqrtm does no better).
    assert got == pytest.approx(fid_svd(a, b), rel=1e-10)


@pytest.mark.parametrize("n, d", [(2000, 128), (50, 128), (20, 512)])
def test_fid_of_a_set_with_itself_is_zero(n, d):
    x = random_features(np.random.default_rng(5), n, d, scale=5.0)  # ReLU-like magnitudes
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)
    # fid is clipped at 0, which would hide an overestimated Tr((Σ1Σ2)^½); a small mean
    # shift (same covariance) does not: FID = ‖c‖² = 1.28e-4 (d = 128), exactly.
    c = np.full(d, 1e-3)
    assert fid(x, x + c) == pytest.approx(c @ c, abs=1e-9)


def test_fid_grows_with_a_shift_and_rejects_bad_input():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(500, 8))
    assert fid(a, a + 1.0) == pytest.approx(8.0, abs=1e-9)  # a pure shift of every feature by 1
    with pytest.raises(KerasGenError, match="feature sizes differ"):
        fid(a, a[:, :4])
    with pytest.raises(KerasGenError, match="NaN"):
        fid(a, np.full((5, 8), np.nan))
    with pytest.raises(KerasGenError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


# --------------------------------------------------------------------------- KID


def test_mmd2_unbiased_equals_a_direct_double_sum():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 0.5
    k = lambda u, v: (float(np.dot(u, v)) / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(5), 2)) / (5 * 4)
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(4), 2)) / (4 * 3)
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / (5 * 4)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    # Subsets of all rows are the whole-set estimate, whatever order the draw puts them in.
    x4 = x[:4]
    mean, std = kid(x4, y, subsets=3, subset_size=4)
    assert mean == pytest.approx(mmd2_unbiased(x4, y), rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(8)
    a, b = random_features(rng, 1000, 32), random_features(rng, 1000, 32)  # one distribution
    mean, std = kid(a, b, subsets=50, subset_size=200)
    assert std > 0 and abs(mean) < 3 * std
    shifted_mean, shifted_std = kid(a, b + 0.5, subsets=50, subset_size=200)
    assert shifted_mean > 10 * shifted_std > 0
    assert kid(a, b, subsets=5, subset_size=100, seed=1) == kid(a, b, subsets=5, subset_size=100, seed=1)


# --------------------------------------------------------------------------- k-NN manifolds


def test_knn_radii_by_hand():
    x = np.array([0.0, 1.0, 3.0, 7.0])
    np.testing.assert_allclose(knn_radii(x, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(knn_radii(x, 2), [3, 2, 3, 6])
    with pytest.raises(KerasGenError, match="k must be"):
        knn_radii(x, 4)


def test_precision_recall_by_hand():
    real = np.array([0.0, 1.0, 2.0, 3.0])  # k=1 radii: 1, 1, 1, 1
    fake = np.array([0.5, 10.0])  # k=1 radii: 9.5, 9.5
    # 0.5 lies in real balls, 10 in none: precision 1/2. The fake ball B(0.5, 9.5) holds every real.
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)
    # In 2-D: fakes on two of four real corners, plus one far away.
    real2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)  # k=1 radii: 1
    fake2 = np.array([[0, 0], [1, 1], [5, 5]], float)  # k=1 radii: √2, √2, 4√2
    # Precision 2/3 ((5,5) is far from every real point); recall: the balls B((0,0), √2) and
    # B((1,1), √2) hold all four corners.
    p, r = precision_recall(real2, fake2, k=1)
    assert p == pytest.approx(2 / 3) and r == 1.0


def test_density_coverage_by_hand():
    real = np.array([0.0, 1.0, 2.0, 3.0])  # k=1 radii: 1
    fake = np.array([0.5, 10.0])
    # 0.5 is in the balls of 0 and 1 (|0.5 - 2| > 1): density = 2 / (k M) = 2 / 2; two of four
    # real balls hold a fake: coverage 1/2.
    assert density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_identical_sets_score_one_and_disjoint_sets_zero():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 8))
    assert precision_recall(x, x.copy(), k=3) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.copy(), k=5)
    assert coverage == 1.0 and density >= 1.0  # each fake is in its own real ball and those of its neighbours
    far = x + 100.0
    assert precision_recall(x, far, k=3) == (0.0, 0.0)
    assert density_coverage(x, far, k=5) == (0.0, 0.0)


def test_chunked_distances_agree_with_unchunked(monkeypatch):
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(250, 5))
    whole = precision_recall(a, b, k=3), density_coverage(a, b, k=5), knn_radii(a, 4)
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 1000)  # 4 rows of 250 at a time
    chunked = precision_recall(a, b, k=3), density_coverage(a, b, k=5), knn_radii(a, 4)
    assert whole[:2] == chunked[:2]
    np.testing.assert_allclose(whole[2], chunked[2], rtol=1e-12)
    brute = np.sort(np.linalg.norm(a[:, None] - a[None], axis=-1), axis=1)[:, 4]
    np.testing.assert_allclose(chunked[2], brute, rtol=1e-9)


# --------------------------------------------------------------------------- classes


def test_class_coverage_by_hand():
    reference = np.repeat(np.arange(4), 25)  # balanced: q = 1/4 each
    predicted = np.array([0] * 50 + [1] * 45 + [2] * 5)  # class 3 missing, class 2 starved
    hist, covered, kl = class_coverage(predicted, reference, 4)
    np.testing.assert_allclose(hist, [0.5, 0.45, 0.05, 0.0])
    # Threshold 1/4 of the reference share = 1/16 = 0.0625: classes 0 and 1 only.
    assert covered == 2
    p = np.array([51, 46, 6, 1]) / 104  # add-one smoothing
    q = np.array([26, 26, 26, 26]) / 104
    assert kl == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-12)


def test_class_coverage_takes_probabilities_and_is_zero_for_equal_histograms():
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.1
    hist, covered, kl = class_coverage(probs, np.array([0, 1, 2, 2]), 3)
    np.testing.assert_allclose(hist, [0.25, 0.25, 0.5])
    assert covered == 3 and kl == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(KerasGenError, match="labels must be in"):
        class_coverage(np.array([0, 5]), np.array([0, 1]), 3)


# --------------------------------------------------------------------------- memorisation


def test_memorisation_flags_copies_of_training_images_not_fresh_ones():
    rng = np.random.default_rng(13)
    pool = rng.uniform(size=(1400, 64))
    train, test, fresh = pool[:1000], pool[1000:1200], pool[1200:]
    copies = train[rng.choice(1000, 100, replace=False)]
    result = memorisation(copies, train, test)
    assert result.near_copy_fraction == 1.0
    assert result.threshold == pytest.approx(np.percentile(result.test_distances, 1.0))
    np.testing.assert_allclose(result.sample_distances, 0.0, atol=1e-6)
    assert memorisation(fresh, train, test).near_copy_fraction <= 0.05
    # Half copies, half fresh: about half flagged. Image-shaped input is flattened.
    mixed = np.concatenate([copies, fresh[:100]]).reshape(200, 8, 8, 1)
    assert 0.5 <= memorisation(mixed, train.reshape(-1, 8, 8, 1), test.reshape(-1, 8, 8, 1)).near_copy_fraction <= 0.55
