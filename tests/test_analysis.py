"""Latent interpolation, nearest neighbours and linear probes against hand-computed values."""
import math

import numpy as np
import pytest

from keras_gen import analysis
from keras_gen.errors import KerasGenError
from keras_gen.images import make_grid, to_uint8

IMAGE_SHAPE = (2, 3, 1)


class EchoModel:
    """Unconditional fake: `generate(z)` writes each latent's 6 values into a 2x3 image."""

    latent_dim = 6
    num_classes = None

    def latents(self, n, seed):
        return np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype(np.float32)

    def generate(self, z):  # no labels argument, like an unconditional model may have
        return np.asarray(z, np.float32).reshape(-1, *IMAGE_SHAPE)


class ConditionalEchoModel(EchoModel):
    num_classes = 3

    def __init__(self):
        self.labels_seen = []

    def generate(self, z, labels=None):
        self.labels_seen.append(np.asarray(labels))
        return super().generate(z)


class FeatureModel:
    """Fake with `discriminator_features`: the mean brightness per channel, times a few constants."""

    def __init__(self):
        self.batches = []

    def discriminator_features(self, images_uint8):
        self.batches.append((len(images_uint8), images_uint8.dtype))
        mean = np.asarray(images_uint8, np.float32).mean(axis=(1, 2))
        return np.concatenate([mean, 2 * mean, -mean], axis=1)


def tiny_dcgan():
    from keras_gen.models import DCGAN

    return DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16))


def angle(a, b):
    return math.acos(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def brute_force(queries, references, k):
    """Exact distances from every difference, float64, then a stable argsort."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = references.reshape(len(references), -1).astype(np.float64)
    distances = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distances, order, axis=1)


# -- interpolation -----------------------------------------------------------------------
def test_slerp_ends_are_the_inputs_exactly():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((2, 16)).astype(np.float32)
    np.testing.assert_array_equal(analysis.slerp(z0, z1, 0.0), z0)
    np.testing.assert_array_equal(analysis.slerp(z0, z1, 1.0), z1)
    assert analysis.slerp(z0, z1, 0.5).dtype == np.float32
    # Batched ends [3, D] with t [T] -> [3, T, D].
    a, b = rng.standard_normal((2, 3, 16)).astype(np.float32)
    path = analysis.slerp(a, b, [0.0, 0.3, 1.0])
    assert path.shape == (3, 3, 16)
    np.testing.assert_array_equal(path[:, 0], a)
    np.testing.assert_array_equal(path[:, -1], b)
    np.testing.assert_allclose(path[1, 1], analysis.slerp(a[1], b[1], 0.3), rtol=1e-6)


def test_slerp_of_orthogonal_unit_vectors_stays_on_the_circle():
    e0, e1 = np.eye(5, dtype=np.float32)[:2]
    middle = analysis.slerp(e0, e1, 0.5)
    assert np.linalg.norm(middle) == pytest.approx(1.0, abs=1e-6)
    assert angle(middle, e0) == pytest.approx(math.pi / 4, abs=1e-6)
    assert angle(middle, e1) == pytest.approx(math.pi / 4, abs=1e-6)
    # The straight line cuts the corner: its midpoint has norm sqrt(1/2).
    assert np.linalg.norm(analysis.lerp(e0, e1, 0.5)) == pytest.approx(math.sqrt(0.5), abs=1e-6)
    # A third of the way along the quarter circle is at angle pi/6 from e0.
    np.testing.assert_allclose(analysis.slerp(e0, e1, 1 / 3)[:2], [math.cos(math.pi / 6), math.sin(math.pi / 6)], atol=1e-6)


@pytest.mark.parametrize("scale", [2.0, -1.0, 1.0 + 1e-9, 0.0])
def test_slerp_of_parallel_vectors_falls_back_to_lerp(scale):
    z0 = np.array([0.3, -1.2, 2.0])
    z1 = scale * z0
    t = np.linspace(0.0, 1.0, 7)
    path = analysis.slerp(z0, z1, t)
    assert np.all(np.isfinite(path))
    np.testing.assert_allclose(path, analysis.lerp(z0, z1, t), atol=1e-12)
    # A zero start is no direction either.
    np.testing.assert_allclose(analysis.slerp(np.zeros(3), z0, t), analysis.lerp(np.zeros(3), z0, t), atol=1e-12)


def test_interpolation_latents_shape_ends_and_methods():
    rng = np.random.default_rng(1)
    z0, z1 = rng.standard_normal((2, 8)).astype(np.float32)
    for method in analysis.METHODS:
        path = analysis.interpolation_latents(z0, z1, 5, method=method)
        assert path.shape == (5, 8)
        np.testing.assert_array_equal(path[0], z0)
        np.testing.assert_array_equal(path[-1], z1)
    np.testing.assert_allclose(analysis.interpolation_latents(z0, z1, 3, "linear")[1], (z0 + z1) / 2, rtol=1e-6)
    np.testing.assert_allclose(analysis.interpolation_latents(z0, z1, 3)[1], analysis.slerp(z0, z1, 0.5), rtol=1e-6)
    with pytest.raises(KerasGenError, match="slerp"):
        analysis.interpolation_latents(z0, z1, 5, method="cubic")
    with pytest.raises(KerasGenError, match="steps"):
        analysis.interpolation_latents(z0, z1, 1)


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_interpolation_grid_rows_walk_between_pairs_of_latents(method):
    model, rows, steps = EchoModel(), 3, 4
    images = analysis.interpolation_grid(model, rows=rows, steps=steps, seed=5, method=method)
    assert images.shape == (rows * steps, *IMAGE_SHAPE) and images.dtype == np.float32
    z = model.latents(2 * rows, 5)
    walks = images.reshape(rows, steps, model.latent_dim)
    for r in range(rows):
        np.testing.assert_array_equal(walks[r, 0], z[2 * r])
        np.testing.assert_array_equal(walks[r, -1], z[2 * r + 1])
        np.testing.assert_allclose(walks[r], analysis.interpolation_latents(z[2 * r], z[2 * r + 1], steps, method), rtol=1e-6)


def test_interpolation_grid_keeps_each_rows_class():
    model, rows, steps = ConditionalEchoModel(), 4, 3
    analysis.interpolation_grid(model, rows=rows, steps=steps)
    analysis.interpolation_grid(model, rows=rows, steps=steps, labels=2)
    analysis.interpolation_grid(model, rows=rows, steps=steps, labels=[1, 0, 2, 2])
    default, same, listed = model.labels_seen
    np.testing.assert_array_equal(default, [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0])  # row r: class r % 3
    np.testing.assert_array_equal(same, [2] * 12)
    np.testing.assert_array_equal(listed, [1, 1, 1, 0, 0, 0, 2, 2, 2, 2, 2, 2])
    with pytest.raises(KerasGenError, match="4"):
        analysis.interpolation_grid(model, rows=rows, steps=steps, labels=[0, 1])
    with pytest.raises(KerasGenError, match="0..2"):
        analysis.interpolation_grid(model, rows=rows, steps=steps, labels=3)
    with pytest.raises(KerasGenError, match="unconditional"):
        analysis.interpolation_grid(EchoModel(), rows=2, steps=2, labels=0)


def test_interpolation_grid_of_a_real_dcgan():
    model = tiny_dcgan()
    images = analysis.interpolation_grid(model, rows=2, steps=3, seed=7)
    assert images.shape == (6, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    z = np.asarray(model.latents(4, 7))
    ends = np.asarray(model.generate(z))
    np.testing.assert_allclose(images[[0, 2, 3, 5]], ends, atol=1e-5)


# -- nearest neighbours ------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_nearest_neighbours_equal_brute_force(batch_size):
    rng = np.random.default_rng(2)
    queries = rng.random((23, 4, 4, 2), dtype=np.float32)
    references = rng.random((50, 4, 4, 2), dtype=np.float32)
    indices, distances = analysis.nearest_neighbours(queries, references, k=4, batch_size=batch_size)
    expected_indices, expected_distances = brute_force(queries, references, 4)
    assert indices.dtype == np.int64 and distances.dtype == np.float32
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)
    assert np.all(np.diff(distances, axis=1) >= 0)


def test_images_of_another_integer_type_are_refused_not_taken_for_floats():
    """An int64 copy of uint8 images was compared as if in [0, 1]: an exact copy of reference 5
    came out nearest to reference 7, at distance 568."""
    references = np.random.default_rng(1).integers(0, 256, (20, 4, 4, 1), dtype=np.uint8)
    for call in (lambda: analysis.nearest_neighbours(references[[5]].astype(np.int64), references, k=1),
                 lambda: analysis.neighbour_grid(references[[5]].astype(np.int32), references, k=1)):
        with pytest.raises(KerasGenError, match="must be uint8 \\(0..255\\) or floats in \\[0, 1\\], got int"):
            call()


def test_nearest_neighbours_find_exact_copies_at_distance_zero():
    # 28x28: at this size |q|^2 + |r|^2 - 2 q.r leaves ~1e-12 behind for q = r.
    rng = np.random.default_rng(3)
    references = rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    queries = references[[5, 17, 33]]
    for q in (queries, queries / 255.0):  # uint8 and float images are compared on one scale
        indices, distances = analysis.nearest_neighbours(q, references, k=2, batch_size=16)
        np.testing.assert_array_equal(indices[:, 0], [5, 17, 33])
        np.testing.assert_array_equal(distances[:, 0], 0.0)
        assert np.all(distances[:, 1] > 1.0)
    floats = rng.random((40, 28, 28, 1), dtype=np.float32)
    indices, distances = analysis.nearest_neighbours(floats[[3, 9]], floats, k=1, batch_size=16)
    np.testing.assert_array_equal(indices[:, 0], [3, 9])
    np.testing.assert_array_equal(distances[:, 0], 0.0)


def test_nearest_neighbours_in_a_feature_space():
    rng = np.random.default_rng(4)
    queries = rng.random((9, 3, 3, 1), dtype=np.float32)
    references = rng.random((30, 3, 3, 1), dtype=np.float32)
    calls = []

    def top_left_pixel(images):
        calls.append(len(images))
        return 10.0 * images[:, 0, 0, :]

    indices, distances = analysis.nearest_neighbours(queries, references, k=3, features=top_left_pixel, batch_size=8)
    expected_indices, expected_distances = brute_force(10.0 * queries[:, 0, 0], 10.0 * references[:, 0, 0], 3)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-5)
    assert calls == [8, 1, 8, 8, 8, 6]  # queries, then references, at most batch_size at a time
    assert not np.array_equal(indices, analysis.nearest_neighbours(queries, references, k=3)[0])


def test_nearest_neighbours_reject_bad_input():
    images = np.zeros((4, 2, 2, 1), np.uint8)
    with pytest.raises(KerasGenError, match="only 4 references"):
        analysis.nearest_neighbours(images, images, k=5)
    with pytest.raises(KerasGenError, match="k"):
        analysis.nearest_neighbours(images, images, k=0)
    with pytest.raises(KerasGenError, match="differ in size"):
        analysis.nearest_neighbours(images, np.zeros((4, 3, 3, 1), np.uint8))


def test_neighbour_grid_puts_each_sample_before_its_neighbours():
    rng = np.random.default_rng(5)
    references = rng.integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
    samples = np.clip(references[[2, 7, 4]] / 255.0 + rng.normal(0, 0.01, (3, 4, 4, 1)), 0, 1)
    k = 2
    grid = analysis.neighbour_grid(samples, references, k=k)
    assert grid.shape == (3 * (k + 1), 4, 4, 1) and grid.dtype == np.uint8
    indices, _ = analysis.nearest_neighbours(to_uint8(samples), references, k=k)
    np.testing.assert_array_equal(indices[:, 0], [2, 7, 4])
    for i in range(3):
        np.testing.assert_array_equal(grid[i * (k + 1)], to_uint8(samples[i]))
        for j in range(k):
            np.testing.assert_array_equal(grid[i * (k + 1) + 1 + j], references[indices[i, j]])
    assert make_grid(grid, columns=k + 1).shape == (3 * 6 + 2, 3 * 6 + 2, 1)


# -- linear probes -----------------------------------------------------------------------
def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(6)
    labels = np.tile(np.arange(10), 20)
    features = 3.0 * np.eye(10)[labels] + 0.1 * rng.standard_normal((200, 10))
    features = np.concatenate([features, rng.standard_normal((200, 5))], axis=1)  # plus uninformative ones
    result = analysis.linear_probe(features[:100], labels[:100], features[100:], labels[100:])
    assert result == {"accuracy": 1.0, "chance": 0.1}
    # Standardised first, so features on a tiny scale escape the L2 penalty.
    tiny = 1e-4 * features
    assert analysis.linear_probe(tiny[:100], labels[:100], tiny[100:], labels[100:])["accuracy"] == 1.0


def test_linear_probe_chance_is_the_majority_training_class():
    # Train: class 0 six times, 1 and 2 three times each; test: class 0 once in six.
    train_labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    test_labels = np.array([0, 1, 1, 1, 2, 2])
    result = analysis.linear_probe(np.eye(3)[train_labels], train_labels, np.eye(3)[test_labels], test_labels)
    assert result["accuracy"] == 1.0
    assert result["chance"] == pytest.approx(1 / 6)


def test_linear_probe_is_near_chance_on_random_labels():
    rng = np.random.default_rng(7)
    features = rng.standard_normal((600, 20))
    labels = rng.integers(0, 10, 600)
    result = analysis.linear_probe(features[:300], labels[:300], features[300:], labels[300:])
    assert result["accuracy"] < 0.35
    assert 0.05 < result["chance"] < 0.2


def test_discriminator_probe_uses_batched_features_of_uint8_images():
    rng = np.random.default_rng(8)
    labels = np.tile(np.arange(4), 15)
    images = (40 * labels[:, None, None, None] + rng.integers(0, 10, (60, 4, 4, 1))).astype(np.uint8)
    model = FeatureModel()
    result = analysis.discriminator_probe(model, images[:40], labels[:40], images[40:], labels[40:], batch_size=16)
    assert result["accuracy"] == 1.0 and result["chance"] == pytest.approx(0.25)
    assert model.batches == [(16, np.uint8), (16, np.uint8), (8, np.uint8), (16, np.uint8), (4, np.uint8)]
    with pytest.raises(KerasGenError, match="uint8"):
        analysis.discriminator_probe(model, images / 255.0, labels, images, labels)
