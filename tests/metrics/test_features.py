"""The shipped feature networks: integrity, accuracy as carded, refusals; evaluate_samples."""
import json
import shutil

import numpy as np
import pytest

from keras_gen import metrics
from keras_gen.errors import KerasGenError
from keras_gen.metrics import features
from keras_gen.zoo import sha256


@pytest.fixture(scope="module")
def mnist28():
    return metrics.load_feature_network("mnist28")


@pytest.fixture(scope="module")
def mnist_test():
    return features.load_images("mnist28", "test")


def test_shipped_files_match_their_json():
    base = features.weights_root()
    assert "mnist28" in metrics.shipped()
    for name in metrics.shipped():
        meta = json.loads((base / f"{name}.json").read_text())
        weights = base / f"{name}.weights.h5"
        assert sha256(weights) == meta["weights_sha256"]
        assert weights.stat().st_size == meta["weights_bytes"] <= 2_000_000
        assert meta["architecture"] == features.RECIPES[name]["architecture"]
        assert meta["train_images"] == len(features.load_images(name, "train")[0])
        assert f"sha256 `{meta['weights_sha256']}`" in (base / f"{name}.md").read_text()


def test_mnist28_test_accuracy_is_as_carded(mnist28, mnist_test):
    carded = mnist28.metadata["test_accuracy"]
    assert carded >= 0.97
    assert features.accuracy(mnist28, *mnist_test) >= carded - 0.005


@pytest.mark.parametrize("name", [n for n in features.RECIPES if n != "mnist28"])
def test_other_shipped_networks_are_as_carded(name):
    if name not in metrics.shipped():
        pytest.skip(f"{name} is not shipped")
    net = metrics.load_feature_network(name)
    assert features.accuracy(net, *features.load_images(name, "test")) >= net.metadata["test_accuracy"] - 0.005


def test_features_and_probabilities_are_batched_consistently(mnist28, mnist_test):
    images = mnist_test[0][::50]  # 20 images, two of each class
    feats = mnist28.features(images)
    probs = mnist28.predict_classes(images)
    assert feats.shape == (20, 128) and feats.dtype == np.float32 and np.any(feats < 0)  # before the ReLU
    assert probs.shape == (20, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(mnist28.features(images, batch_size=3), feats, rtol=1e-4, atol=1e-4)
    assert mnist28.features(images[:0]).shape == (0, 128)


def test_features_refuse_float_or_misshapen_images(mnist28, mnist_test):
    with pytest.raises(KerasGenError, match="uint8"):
        mnist28.features(mnist_test[0][:2].astype(np.float32) / 255)
    with pytest.raises(KerasGenError, match=r"\[N, 28, 28, 1\]"):
        mnist28.features(mnist_test[0][:2, :, :, 0])


def test_an_altered_weights_file_is_refused(tmp_path):
    for suffix in (".weights.h5", ".json"):
        shutil.copy(features.weights_root() / f"mnist28{suffix}", tmp_path)
    assert metrics.load_feature_network("mnist28", weights_dir=tmp_path).name == "mnist28"
    weights = tmp_path / "mnist28.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit inside the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(KerasGenError, match="sha256 .* does not match .* corrupt or altered"):
        metrics.load_feature_network("mnist28", weights_dir=tmp_path)


def test_unknown_or_missing_networks_say_what_exists(tmp_path):
    with pytest.raises(KerasGenError, match=r"unknown feature network 'cifar'; shipped: .*mnist28.*build_feature_network"):
        metrics.load_feature_network("cifar")
    with pytest.raises(KerasGenError, match=r"'mnist28' has no weights in .*build_feature_network\('mnist28'"):
        metrics.load_feature_network("mnist28", weights_dir=tmp_path)


def test_evaluate_samples_real_vs_real_and_noise(mnist28):
    # Small n keeps it fast; the full figures are in the card and the benchmark.
    train, _ = features.load_images("mnist28", "train")
    real = train[np.random.default_rng(0).choice(len(train), 300, replace=False)]
    good = metrics.evaluate_samples(real, mnist28, n=300)
    noise = np.random.default_rng(0).integers(0, 256, size=(300, 28, 28, 1), dtype=np.uint8)
    bad = metrics.evaluate_samples(noise, mnist28, n=300)
    assert set(good) == {
        "fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
        "classes_covered", "class_kl", "near_copy_fraction",
    }
    assert good["fid"] < bad["fid"] / 20 and good["kid_mean"] < bad["kid_mean"] / 20
    assert good["recall"] > 0.5 > bad["recall"] and good["coverage"] > 0.5 > bad["coverage"]
    assert good["classes_covered"] == 10 and good["class_kl"] < 0.05 < bad["class_kl"]
    assert good["near_copy_fraction"] == 1.0  # training images are copies of themselves
    assert bad["near_copy_fraction"] == 0.0
    with pytest.raises(KerasGenError, match="fewer than n=1000"):
        metrics.evaluate_samples(real, mnist28)
    with pytest.raises(KerasGenError, match="uint8 images"):
        metrics.evaluate_samples(real / 255.0, mnist28, n=300)


def test_build_writes_a_network_that_loads(tmp_path):
    # One epoch of the digits28 recipe (1,438 images): the files, not the figures.
    shipped_before = {p.name: sha256(p) for p in features.weights_root().iterdir()}
    assert metrics.build_feature_network("digits28", out_dir=tmp_path, epochs=1, verbose=0) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits28.json", "digits28.md", "digits28.weights.h5"]
    net = metrics.load_feature_network("digits28", weights_dir=tmp_path)
    meta = net.metadata
    assert meta["training"]["epochs"] == 1 and meta["weights_sha256"] == sha256(tmp_path / "digits28.weights.h5")
    assert set(meta["reference_floors"]) == {"floor", "ceiling"}
    # The embedding is scaled to unit root mean square over the training split.
    train = features.load_images("digits28", "train")[0]
    assert np.sqrt(np.mean(net.features(train).astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    assert f"**{meta['test_accuracy']:.2%}**" in (tmp_path / "digits28.md").read_text()
    assert {p.name: sha256(p) for p in features.weights_root().iterdir()} == shipped_before
    with pytest.raises(KerasGenError, match="unknown feature network"):
        metrics.build_feature_network("cifar", out_dir=tmp_path)
