"""keras_gen.metrics.evaluate: a model's figures, from its samples, labels and likelihood."""
import json
import math

import keras
import numpy as np
import pytest

from keras_gen import cli, metrics
from keras_gen.errors import KerasGenError
from keras_gen.images import to_uint8
from keras_gen.models import CGAN, DCGAN, PixelCNN


def tiny_dcgan(size=28):
    return DCGAN(image_shape=(size, size, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
                 seed=0)


@pytest.fixture(scope="module")
def mnist28():
    return metrics.load_feature_network("mnist28")


def test_evaluate_is_evaluate_samples_of_the_seeded_samples(mnist28):
    model = tiny_dcgan()
    figures = metrics.evaluate(model, "mnist5k", n=200, seed=3)
    samples = to_uint8(keras.ops.convert_to_numpy(model.sample(200, 3)))
    assert figures == metrics.evaluate_samples(samples, mnist28, n=200, seed=3)
    assert "label_accuracy" not in figures and "test_bits_per_dim" not in figures


def test_conditional_models_add_the_accuracy_of_their_labels(mnist28):
    model = CGAN(image_shape=(28, 28, 1), num_classes=10, latent_dim=8, generator_widths=(16, 8),
                 discriminator_widths=(8, 16), embed_dim=4, seed=1)
    figures = metrics.evaluate(model, "mnist5k", n=100, seed=0)
    labels = np.arange(100) % 10
    images = to_uint8(keras.ops.convert_to_numpy(model.sample(100, 0, labels=labels)))
    expected = np.mean(mnist28.predict_classes(images).argmax(axis=1) == labels)
    assert figures["label_accuracy"] == pytest.approx(expected)


def test_likelihood_models_add_test_bits_per_dim_and_still_sample():
    from keras_gen import data

    model = PixelCNN(image_shape=(28, 28, 1), filters=4, num_layers=1, first_kernel_size=3)
    figures = metrics.evaluate(model, "mnist5k", n=10, seed=0)
    test, _ = data.load_arrays("mnist5k", "test")
    log_prob = np.concatenate([keras.ops.convert_to_numpy(model.log_prob(b)) for b in np.split(test, 4)])
    assert figures["test_bits_per_dim"] == pytest.approx(-log_prob.mean() / (784 * math.log(2)), rel=1e-5)
    assert "fid" in figures
    # A Bernoulli head's figure is of binary dimensions (an untrained one scores 0.8, an untrained
    # categorical one 8): it is named so, never "test_bits_per_dim".
    binary = PixelCNN(image_shape=(28, 28, 1), filters=4, num_layers=1, first_kernel_size=3, head="bernoulli")
    figures = metrics.evaluate(binary, "mnist5k", n=10, seed=0, samples=False)
    assert set(figures) == {"test_bits_per_binary_dim"} and 0 < figures["test_bits_per_binary_dim"] < 1.5


def test_networks_are_found_by_dataset_and_image_size():
    assert metrics.network_name_for("mnist5k", (28, 28, 1)) == "mnist28"
    assert metrics.network_name_for("digits", (28, 28, 1)) == "digits28"
    for data, shape in [("digits", (8, 8, 1)), ("tfds:fashion_mnist", (28, 28, 1)), ("mnist5k", (28, 28, 3)),
                        ("tfds:cifar10", None)]:
        with pytest.raises(KerasGenError, match="feature networks exist for mnist5k at 28x28.*build-features"):
            metrics.network_name_for(data, shape)


def test_digits_are_scored_at_the_models_image_size():
    figures = metrics.evaluate(tiny_dcgan(), "digits", n=100)
    assert figures["fid"] > 0  # read by digits28, against digits resized to 28x28
    with pytest.raises(KerasGenError, match="no feature network scores digits images of shape \\[16, 16, 1\\]"):
        metrics.evaluate(tiny_dcgan(16), "digits", n=100)


def test_bad_arguments_are_one_line_errors(mnist28):
    for n in (0, 1, 2, 3, 2.5, True, "100"):  # 2 and 3: too few for recall's 3rd nearest other sample
        with pytest.raises(KerasGenError, match="n must be"):
            metrics.evaluate(tiny_dcgan(), n=n)
    with pytest.raises(KerasGenError, match="reads images of shape \\[28, 28, 1\\]; the model makes \\[16, 16, 1\\]"):
        metrics.evaluate(tiny_dcgan(16), "digits", n=10, image_size=16, network=mnist28)


def test_a_new_feature_network_scores_its_own_dataset(tmp_path):
    out = metrics.build_feature_network("digits16", tmp_path, data="digits", image_size=16, epochs=1, verbose=0)
    net = metrics.load_feature_network("digits16", weights_dir=out)
    assert net.image_shape == (16, 16, 1) and net.metadata["data"] == "digits"
    assert "--data digits --image-size 16" in (tmp_path / "digits16.md").read_text()
    figures = metrics.evaluate(tiny_dcgan(16), "digits", n=50, network=net)
    assert figures["fid"] > 0 and 0 <= figures["coverage"] <= 1
    floors = metrics.reference_floors(net, n=50)
    assert floors["floor"]["fid"] < floors["ceiling"]["fid"]
    # `neighbours --space features` takes it too, as the error for a dataset without a shipped
    # network says ("then pass --features DIR/NAME", which neighbours refused).
    model = tiny_dcgan(16)
    model.compile()
    model.save(tmp_path / "g16.keras")
    asked = ["neighbours", str(tmp_path / "g16.keras"), "--data", "digits", "--image-size", "16", "--n", "2", "--k",
             "2", "--features", str(out / "digits16"), "--out", str(tmp_path / "nn.png")]
    assert cli.main(asked + ["--space", "features"]) == 0 and (tmp_path / "nn.png").is_file()
    assert cli.main(asked) == 1  # pixel distances need no network
    with pytest.raises(KerasGenError, match="shipped network's name"):
        metrics.build_feature_network("digits28", tmp_path, data="digits", image_size=28)
    with pytest.raises(KerasGenError, match="needs out_dir"):
        metrics.build_feature_network("mine", data="digits", image_size=16)


def test_cli_evaluate_prints_a_table_beside_floors_and_writes_json(tmp_path, capsys):
    model = tiny_dcgan()
    model.compile()
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "figures.json"
    assert cli.main(["evaluate", str(tmp_path / "tiny.keras"), "--n", "100", "--seed", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "100 samples (seed 2) vs the mnist5k test split in mnist28's features" in printed
    assert "real train (floor)" in printed and "uniform noise (ceiling)" in printed
    result = json.loads(out.read_text())
    assert result["figures"] == pytest.approx(metrics.evaluate(model, "mnist5k", n=100, seed=2))
    assert result["floor"]["fid"] < result["figures"]["fid"] and result["floor"]["fid"] < result["ceiling"]["fid"]
    assert result["feature_network"] == "mnist28" and result["n"] == 100 and result["machine"]
    assert result["floor_images"] == 100
    # More samples than real training images: the floor scores all of those, and says so.
    model = tiny_dcgan(28)
    model.compile()
    model.save(tmp_path / "tiny28.keras")
    assert cli.main(["evaluate", str(tmp_path / "tiny28.keras"), "--data", "digits", "--n", "1500", "--json",
                     str(tmp_path / "digits.json")]) == 0
    assert "real train (floor: all 1,438)" in capsys.readouterr().out
    assert json.loads((tmp_path / "digits.json").read_text())["floor_images"] == 1438


def test_cli_evaluate_says_why_a_likelihood_model_gets_no_sample_figures(tmp_path, capsys):
    """8x8 digits have no shipped feature network: a PixelCNN on them is scored by its
    likelihood, and the output says why FID and the rest are missing (they were left out
    without a word, and the JSON named an n of samples never drawn)."""
    from keras_gen.models import PixelCNN

    model = PixelCNN(image_shape=(8, 8, 1), filters=8, num_layers=1)
    model.compile()
    model.save(tmp_path / "pc.keras")
    out = tmp_path / "ev.json"
    assert cli.main(["evaluate", str(tmp_path / "pc.keras"), "--data", "digits", "--n", "50", "--json", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("no sample figures: no feature network scores digits images of shape [8, 8, 1]")
    result = json.loads(out.read_text())
    assert set(result["figures"]) == {"test_bits_per_dim"} and "n" not in result and "seed" not in result
    assert result["skipped"] == printed[1]


def test_cli_evaluate_and_metrics_refuse_bad_input_in_one_line(tmp_path, capsys):
    precious = tmp_path / "notes.json"
    precious.write_text("not json, and precious")
    cases = [
        (["evaluate", "dcgan-mnist5k", "--data", "tfds:fashion_mnist"], "no feature network scores tfds:fashion_mnist"),
        (["evaluate", "dcgan-mnist5k", "--json", str(precious)], "exists and is not a keras-gen evaluate result"),
        (["evaluate", "dcgan-mnist5k", "--json", str(tmp_path)], "is a folder"),
        (["evaluate", "no-such-entry"], "neither a run folder"),
        (["evaluate", "dcgan-mnist5k", "--likelihood-only"], "DCGAN has no likelihood"),
        (["metrics", "build-features", "cifar", "--out", str(tmp_path)], "unknown feature network"),
        (["metrics", "build-features", "digits28", "--data", "digits", "--out", str(tmp_path)], "shipped network"),
        (["metrics", "build-features", "mine", "--image-size", "16", "--out", str(tmp_path)], "give --data too"),
        (["metrics", "build-features", "mnist28", "--out", str(metrics.features.weights_root())], "shipped folder"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert precious.read_text() == "not json, and precious"


def test_cli_metrics_list_names_the_shipped_networks(capsys):
    assert cli.main(["metrics", "list"]) == 0
    printed = capsys.readouterr().out
    assert "mnist28    scores mnist5k at 28x28 (shipped)" in printed and "digits28" in printed


def test_conditional_likelihood_models_add_bits_given_labels_and_bayes_accuracy():
    from keras_gen import data
    from keras_gen.models import GatedPixelCNN

    model = GatedPixelCNN(image_shape=(28, 28, 1), num_classes=10, filters=4, num_layers=0, kernel_size=3,
                          first_kernel_size=3)
    # digits at 28x28: 359 test images (mnist5k has 1,000) and its own shipped feature network
    figures = metrics.evaluate(model, "digits", n=10, seed=0, image_size=28)
    test, labels = data.load_arrays("digits", "test", image_size=28)
    log_prob = np.concatenate([keras.ops.convert_to_numpy(model.log_prob(x, y))
                               for x, y in zip(np.array_split(test, 4), np.array_split(labels, 4))])
    assert figures["test_bits_per_dim"] == pytest.approx(-log_prob.mean() / (784 * math.log(2)), rel=1e-5)
    predicted = np.concatenate([keras.ops.convert_to_numpy(model.classify(x)[1]) for x in np.array_split(test, 4)])
    assert figures["bayes_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert 0.0 <= figures["label_accuracy"] <= 1.0


def test_cli_evaluate_scores_a_likelihood_model_without_a_feature_network(tmp_path, capsys):
    model = PixelCNN(image_shape=(8, 8, 1), filters=4, num_layers=1, first_kernel_size=3)
    model.compile()
    model.save(tmp_path / "pixels.keras")
    # digits at 8x8: no feature network reads them, the likelihood still counts.
    assert cli.main(["evaluate", str(tmp_path / "pixels.keras"), "--data", "digits"]) == 0
    printed = capsys.readouterr().out
    assert "test_bits_per_dim" in printed and "fid" not in printed
    assert metrics.evaluate(model, "digits", n=10) == {
        "test_bits_per_dim": pytest.approx(metrics.evaluate(model, "digits", n=10, samples=False)["test_bits_per_dim"])}


def test_cli_evaluate_scores_a_domain_adaptation_model_on_its_targets_test_split(tmp_path, capsys):
    """`keras-gen evaluate` refused ADDA and DANN ("neither samples nor has a likelihood"), so a
    run folder or .keras of one could be scored only through `zoo evaluate` or Python."""
    from keras_gen import zoo

    assert cli.main(["evaluate", "adda-mnist5k-mnistm5k", "--json", str(tmp_path / "adda.json")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("adda-mnist5k-mnistm5k (ADDA): the mnistm5k test split; ")  # the target, by default
    result = json.loads((tmp_path / "adda.json").read_text())
    assert result["data"] == "mnistm5k" and set(result["figures"]) == {"test_accuracy"}
    card = json.loads((zoo.entry_dir("adda-mnist5k-mnistm5k") / "metadata.json").read_text())["figures"]
    assert result["figures"]["test_accuracy"] == pytest.approx(card["test accuracy"], abs=2e-3)  # 0.703
    model = zoo.load("adda-mnist5k-mnistm5k", compile=False)
    assert metrics.evaluate(model, "mnistm5k", n=10) == {"test_accuracy": result["figures"]["test_accuracy"]}
    # Another domain is scored as asked, the grey source too (as classify takes it; refused
    # until 2026-11-28): the adapted encoder still knows its source's digits.
    assert cli.main(["evaluate", "adda-mnist5k-mnistm5k", "--data", "mnist5k", "--json", str(tmp_path / "s.json")]) == 0
    source = json.loads((tmp_path / "s.json").read_text())
    assert source["data"] == "mnist5k" and source["figures"]["test_accuracy"] > 0.9
