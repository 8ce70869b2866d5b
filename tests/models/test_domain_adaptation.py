"""Domain adaptation (source-only, target oracle, DANN, ADDA): DANN's reversed domain gradient
and its schedules, ADDA's frozen source networks, channel conversion, save/load, the classify
export served by a process without keras_gen, one-line errors, and tiny end-to-end runs of keras_gen.training."""
import json
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import call_in_serving_process, run_cli

from keras_gen import data, export, training
from keras_gen.errors import KerasGenError
from keras_gen.models.domain_adaptation import (
    ADDA,
    DANN,
    DANNSchedule,
    DiscriminatorSaturation,
    DiscriminatorSaturationWarning,
    SourceOnly,
    TargetOracle,
    dann_lambda,
    dann_learning_rate,
)
from keras_gen.recipe import Recipe

TINY = {"filters": (4, 6), "classifier_widths": (8,)}
SGD1 = {"class_name": "SGD", "config": {"learning_rate": 1.0}}


def np_(x):
    return keras.ops.convert_to_numpy(x)


def rng_images(n, channels, seed=0, size=28):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def rng_labels(n, seed=0):
    return np.random.default_rng(seed + 100).integers(0, 10, n).astype(np.int64)


def triples(n=16, batch=8, source_channels=1, target_channels=3):
    return tf.data.Dataset.from_tensor_slices(
        (rng_images(n, source_channels), rng_labels(n), rng_images(n, target_channels, seed=1))).batch(batch)


def snapshot(variables):
    return [np_(v).copy() for v in variables]


# -- DANN: the gradient reversal in the step -------------------------------------------------------
def test_dann_step_descends_the_class_loss_and_ascends_the_domain_loss_by_lambda_in_the_encoder():
    """One SGD(1) step: the encoder moves by −(∇CE − λ ∇BCE_domain), D by −∇BCE_domain, the
    classifier by −∇CE, with the gradients computed here without any reversal."""
    lam = 0.7
    model = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), lambda_=lam, **TINY)
    model.compile(optimizer=SGD1)
    source, labels, target = rng_images(6, 1), rng_labels(6), rng_images(6, 3, seed=1)
    encoder, classifier, disc = (model.encoder.trainable_variables, model.classifier.trainable_variables,
                                 model.discriminator.trainable_variables)
    before = snapshot(encoder + classifier + disc)

    x = tf.concat([tf.cast(data.to_channels(source, 3), tf.float32), tf.cast(target, tf.float32)], 0) / 127.5 - 1
    domains = tf.concat([tf.zeros([6, 1]), tf.ones([6, 1])], 0)
    with tf.GradientTape(persistent=True) as tape:
        features = model.encoder(x)
        class_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels.astype(np.int32), model.classifier(features[:6])))
        domain_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(domains, model.discriminator(features)))
    g_class = tape.gradient(class_loss, encoder + classifier)
    g_domain = tape.gradient(domain_loss, encoder + disc)

    logs = model.fit(tf.data.Dataset.from_tensors((source, labels, target)), verbose=0).history
    after = snapshot(encoder + classifier + disc)
    ne, nc = len(encoder), len(classifier)
    for i in range(ne):  # encoder: class gradient minus lambda times the plain domain gradient
        np.testing.assert_allclose(before[i] - after[i], np_(g_class[i]) - lam * np_(g_domain[i]), atol=2e-5)
    for i in range(nc):
        np.testing.assert_allclose(before[ne + i] - after[ne + i], np_(g_class[ne + i]), atol=2e-5)
    for i, g in enumerate(g_domain[ne:]):  # D minimises the domain loss: not reversed
        np.testing.assert_allclose(before[ne + nc + i] - after[ne + nc + i], np_(g), atol=2e-5)
    assert any(np.abs(np_(g)).max() > 1e-4 for g in g_domain[:ne]), "the domain loss reached the encoder"
    np.testing.assert_allclose(logs["class_loss"][0], float(class_loss), rtol=1e-5)
    np.testing.assert_allclose(logs["domain_loss"][0], float(domain_loss), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"][0], float(class_loss + domain_loss), rtol=1e-5)
    assert logs["lambda"][0] == pytest.approx(lam)
    assert set(logs) == {"loss", "class_loss", "domain_loss", "domain_accuracy", "accuracy", "lambda"}


def test_the_reversal_gives_minus_lambda_times_the_plain_domain_gradient_to_the_encoder():
    model = DANN(image_shape=(28, 28, 1), discriminator_widths=(8,), lambda_=0.3, **TINY)
    x = tf.constant(rng_images(5, 1), tf.float32) / 127.5 - 1
    d = tf.constant([[0.0], [1.0], [0.0], [1.0], [1.0]])
    encoder = model.encoder.trainable_variables

    def gradient(reversed_):
        with tf.GradientTape() as tape:
            features = model.encoder(x)
            logits = model.domain_logits(features) if reversed_ else model.discriminator(features)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(d, logits))
        return [np_(g) for g in tape.gradient(loss, encoder)]

    for lam in (0.3, 1.0, 0.0):
        model.reversal.lambda_ = lam
        for rev, plain in zip(gradient(True), gradient(False)):
            np.testing.assert_allclose(rev, -lam * plain, rtol=1e-5, atol=1e-7)


# -- DANN: the paper's schedules ---------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_lambda_and_learning_rate_schedules_are_the_papers_formulas(p):
    assert dann_lambda(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1, abs=1e-12)
    assert dann_learning_rate(p, 0.01) == pytest.approx(0.01 / (1 + 10 * p) ** 0.75, rel=1e-12)
    # ... and the callback sets both from the optimizer's step count and the total steps.
    model = DANN(image_shape=(28, 28, 1), discriminator_widths=(8,), **TINY)
    model.compile()  # SGD(0.01, momentum 0.9): μ_0 = 0.01
    schedule = DANNSchedule(total_steps=40)
    schedule.set_model(model)
    schedule.on_train_begin()
    model.optimizer.iterations.assign(int(40 * p))
    schedule.on_train_batch_begin(0)
    assert model.reversal.lambda_ == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1, abs=1e-6)
    assert float(np_(model.optimizer.learning_rate)) == pytest.approx(0.01 / (1 + 10 * p) ** 0.75, rel=1e-6)
    assert dann_lambda(0) == 0 and dann_learning_rate(0, 0.01) == 0.01


def test_fit_with_the_schedule_ramps_lambda_from_zero_and_keeps_mu0_through_save(tmp_path):
    model = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    model.compile()
    logs = model.fit(triples(32, 8), epochs=2, verbose=0, callbacks=model.training_callbacks()).history
    steps = 8  # 2 epochs x 4 steps: lambda of step k is lambda_p(k / 8)
    expected = [np.mean([dann_lambda(k / steps) for k in range(4)]), np.mean([dann_lambda(k / steps)
                                                                              for k in range(4, 8)])]
    np.testing.assert_allclose(logs["lambda"], expected, rtol=1e-5)
    assert float(np_(model.optimizer.learning_rate)) == pytest.approx(dann_learning_rate(7 / 8, 0.01), rel=1e-5)
    model.save(tmp_path / "dann.keras")
    loaded = keras.models.load_model(tmp_path / "dann.keras")
    assert loaded.base_learning_rate == pytest.approx(0.01)  # μ_0, not the decayed rate
    assert loaded.reversal.lambda_ == pytest.approx(model.reversal.lambda_)
    assert int(np_(loaded.optimizer.iterations)) == 8


# -- ADDA: the stages ---------------------------------------------------------------------------------
def test_adda_stage2_starts_from_the_source_encoder_and_never_moves_it_or_the_classifier():
    model = ADDA(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    model.compile()
    model.fit(rng_images(16, 1), rng_labels(16), batch_size=8, verbose=0)  # stage 1 trains Es and C
    model.set_stage(2)
    for es, et in zip(model.source_encoder.get_weights(), model.target_encoder.get_weights()):
        np.testing.assert_array_equal(es, et)  # Et <- Es
    source_before = snapshot(model.source_encoder.weights + model.classifier.weights)
    target_before = snapshot(model.target_encoder.weights)
    d_before = snapshot(model.discriminator.weights)
    logs = model.fit(triples(16, 8), epochs=2, verbose=0, callbacks=model.training_callbacks()).history
    for a, b in zip(source_before, snapshot(model.source_encoder.weights + model.classifier.weights)):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(target_before, snapshot(model.target_encoder.weights))) > 1e-5
    assert max(np.abs(a - b).max() for a, b in zip(d_before, snapshot(model.discriminator.weights))) > 1e-5
    assert {"loss", "d_loss", "encoder_loss", "domain_accuracy", "discriminator_saturated"} <= set(logs)
    # Stage 3: C(Et(x)) classifies; training is over.
    model.set_stage(3)
    images = rng_images(4, 3, seed=5)
    expected = tf.nn.softmax(model.classifier(model.target_encoder(tf.cast(images, tf.float32) / 127.5 - 1)))
    np.testing.assert_allclose(np_(model.classify(images)[0]), np_(expected), rtol=1e-5, atol=1e-6)
    with pytest.raises(KerasGenError, match="stage 3"):
        model.fit(triples(8, 8), verbose=0)


def test_adda_stage2_discriminator_and_target_encoder_losses_with_inverted_labels():
    """D: −mean[log D(Es(x_s))] over source and −mean[log(1 − D(Et(x_t)))] over target, one mean;
    Et: −mean log D(Et(x_t)) against the updated D."""
    model = ADDA(image_shape=(28, 28, 3), discriminator_widths=(8,), stage=2, **TINY)
    model.compile(d_optimizer=SGD1, target_optimizer=SGD1)
    source, target = rng_images(4, 1), rng_images(4, 3, seed=1)
    xs = tf.cast(data.to_channels(source, 3), tf.float32) / 127.5 - 1
    xt = tf.cast(target, tf.float32) / 127.5 - 1
    logits = model.discriminator(tf.concat([model.source_encoder(xs), model.target_encoder(xt)], 0))
    d_loss = -np.mean(np.concatenate([np.log(np_(tf.sigmoid(logits[:4]))), np.log(1 - np_(tf.sigmoid(logits[4:])))]))
    t_before = model.target_encoder.get_weights()
    logs = model.fit(tf.data.Dataset.from_tensors((source, rng_labels(4), target)), verbose=0).history
    np.testing.assert_allclose(logs["d_loss"][0], d_loss, rtol=1e-4)
    # Et's loss: the inverted label, against the updated D, with Et as it was before its step.
    t_after = model.target_encoder.get_weights()
    model.target_encoder.set_weights(t_before)
    t_loss = -np.mean(np.log(np_(tf.sigmoid(model.discriminator(model.target_encoder(xt))))))
    model.target_encoder.set_weights(t_after)
    np.testing.assert_allclose(logs["encoder_loss"][0], t_loss, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"][0], d_loss + t_loss, rtol=1e-4)


def test_stages_go_forward_one_at_a_time():
    model = ADDA(image_shape=(28, 28, 1), discriminator_widths=(8,), **TINY)
    with pytest.raises(KerasGenError, match="from stage 1 to stage 2, not to 3"):
        model.set_stage(3)
    model.set_stage(2)
    model.set_stage(3)
    with pytest.raises(KerasGenError, match="at stage 3, its last .*: there is no stage 1 to go to"):
        model.set_stage(1)
    with pytest.raises(KerasGenError, match="stage must be 1, 2 or 3"):
        ADDA(image_shape=(28, 28, 1), stage=4, **TINY)


def test_the_saturation_check_warns_and_logs():
    check = DiscriminatorSaturation()
    logs = {"domain_accuracy": 0.995}
    with pytest.warns(DiscriminatorSaturationWarning, match="epoch 3: the domain discriminator's accuracy is 0.9950"):
        check.on_epoch_end(2, logs)
    assert logs["discriminator_saturated"] == 1.0
    logs = {"domain_accuracy": 0.7}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check.on_epoch_end(3, logs)
    assert logs["discriminator_saturated"] == 0.0
    logs = {"loss": 1.0}  # ADDA's stage 1: nothing to check
    check.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0}


# -- classifiers, channels, evaluation ----------------------------------------------------------------
def test_grey_source_images_are_converted_to_the_targets_channels_inside_the_model():
    model = SourceOnly(image_shape=(28, 28, 3), **TINY)
    model.compile()
    grey, labels = rng_images(20, 1), rng_labels(20)
    rgb = data.to_channels(grey, 3)
    model.fit(grey, labels, batch_size=10, verbose=0)
    by_grey = model.evaluate(grey, labels, batch_size=7, verbose=0, return_dict=True)
    by_rgb = model.evaluate(rgb, labels, batch_size=7, verbose=0, return_dict=True)  # a step traced for both
    assert by_grey == pytest.approx(by_rgb, rel=1e-6)
    probabilities, predicted = model.classify(rgb)
    assert probabilities.dtype == tf.float32 and predicted.dtype == tf.int32 and probabilities.shape == (20, 10)
    np.testing.assert_allclose(np_(tf.reduce_sum(probabilities, 1)), 1.0, rtol=1e-5)
    # evaluate's accuracy is per image, also with a short last batch (20 = 7 + 7 + 6).
    assert by_rgb["accuracy"] == pytest.approx(np.mean(np_(predicted) == labels), abs=1e-6)


def test_the_oracle_is_the_same_network_and_says_it_trains_on_target_labels():
    oracle, floor = TargetOracle(image_shape=(28, 28, 3), **TINY), SourceOnly(image_shape=(28, 28, 3), **TINY)
    assert [w.shape for w in oracle.weights] == [w.shape for w in floor.weights]
    assert oracle.TRAINING_DATA == ("target",) and floor.TRAINING_DATA == ("source",)
    assert not oracle.offers("sample") and oracle.offers("evaluate")


def trained_adda():
    model = ADDA(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    model.compile()
    model.fit(rng_images(8, 1), rng_labels(8), batch_size=8, verbose=0)
    model.set_stage(2)
    model.fit(triples(8, 8), verbose=0)
    model.set_stage(3)
    return model


def trained(model):
    model.compile()
    channels = model.image_shape[2]
    if isinstance(model, (DANN, ADDA)):  # ADDA in stage 2: (source, labels, target) triples
        model.fit(triples(8, 8, 1, channels), verbose=0)
    else:
        model.fit(rng_images(8, channels), rng_labels(8), batch_size=8, verbose=0)
    return model


@pytest.mark.parametrize("make", [
    lambda: SourceOnly(image_shape=(28, 28, 3), **TINY),
    lambda: TargetOracle(image_shape=(28, 28, 1), **TINY),
    lambda: DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY),
    lambda: ADDA(image_shape=(28, 28, 3), discriminator_widths=(8,), stage=2, source_epochs=3, **TINY),
])
def test_keras_round_trip_gives_the_same_classify_and_optimizer_state(make, tmp_path):
    model = trained(make())
    channels = model.image_shape[2]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    images = rng_images(6, channels, seed=9)
    np.testing.assert_array_equal(np_(loaded.classify(images)[0]), np_(model.classify(images)[0]))
    np.testing.assert_array_equal(np_(loaded.classify(images)[1]), np_(model.classify(images)[1]))
    assert int(np_(loaded.optimizer.iterations)) == int(np_(model.optimizer.iterations)) == 1
    # classify where the batch size is unknown (a tf.function, Dataset.map): it took int(shape[0]).
    traced = tf.function(model.classify, input_signature=[tf.TensorSpec([None, 28, 28, channels], tf.uint8)])
    np.testing.assert_array_equal(np_(traced(images)[1]), np_(model.classify(images)[1]))


@pytest.mark.parametrize("make", [
    trained_adda,
    lambda: trained(SourceOnly(image_shape=(28, 28, 3), **TINY)),
    lambda: trained(TargetOracle(image_shape=(28, 28, 1), **TINY)),
    lambda: trained(DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)),
], ids=["adda", "source-only", "target-oracle", "dann"])
def test_classify_export_without_keras_gen_matches_classify(make, tmp_path):
    model = make()
    path = export.export(model, tmp_path / "serving", "classifier")
    channels = model.image_shape[2]
    images = rng_images(5, channels, seed=3)
    out, stdout = call_in_serving_process(
        path, [("classify", {"images": images}), ("serving_default", {"images": images})], tmp_path)
    assert "'classify'" in stdout and "'serving_default'" in stdout
    probabilities, labels = model.classify(images)
    for i in (0, 1):
        assert out[f"{i}/probabilities"].dtype == np.float32 and out[f"{i}/label"].dtype == np.int32
        np.testing.assert_allclose(out[f"{i}/probabilities"], np_(probabilities), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(out[f"{i}/label"], np_(labels))
    assert f"classify: images uint8 [batch, 28, 28, {channels}]" in export.describe(model)


# -- one-line errors ------------------------------------------------------------------------------------
def test_wrong_shapes_and_missing_target_are_one_line_errors():
    dann = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    dann.compile()
    with pytest.raises(KerasGenError, match=r"expected uint8 images of shape \[batch, 28, 28, 3\]"):
        dann.classify(rng_images(2, 2))  # the target's channels, or the other of grey / RGB
    with pytest.raises(KerasGenError, match=r"trains on \(source images, source labels, target images\)"):
        dann.fit(tf.data.Dataset.from_tensor_slices((rng_images(8, 3), rng_labels(8))).batch(4), verbose=0)
    with pytest.raises(KerasGenError, match="give a tf.data.Dataset"):
        dann.fit(rng_images(8, 3), rng_labels(8), verbose=0)
    with pytest.raises(KerasGenError, match=r"\[batch, 28, 28, 3\]"):  # target images must be the target's
        dann.fit(triples(8, 4, target_channels=1), verbose=0)
    source_only = SourceOnly(image_shape=(28, 28, 3), **TINY)
    source_only.compile()
    with pytest.raises(KerasGenError, match=r"expected batches of uint8 images \[batch, 28, 28, 1 or 3\]"):
        source_only.fit(rng_images(4, 1, size=8), rng_labels(4), verbose=0)
    with pytest.raises(KerasGenError, match="give the labels too"):
        source_only.fit(rng_images(4, 3), verbose=0)
    with pytest.raises(KerasGenError, match=r"labels must be in 0..9"):
        source_only.fit(rng_images(4, 3), np.array([0, 1, 2, 10]), verbose=0)
    with pytest.raises(KerasGenError, match="dann takes 2 dataset"):
        Recipe("dann")
    with pytest.raises(KerasGenError, match="too small"):
        SourceOnly(image_shape=(8, 8, 1), **TINY)


def test_the_cli_needs_a_target_for_domain_adaptation_and_refuses_one_elsewhere():
    from keras_gen import cli

    args = cli.build_parser().parse_args(["train", "adda", "--target", "mnistm5k", "--set", "hparams.source_epochs=2"])
    recipe = cli.recipe_from_args(args)
    assert recipe.data == ("mnist5k", "mnistm5k") and recipe.hparams == {"source_epochs": 2}
    args = cli.build_parser().parse_args(["train", "dann", "--data", "syndigits5k", "--target", "mnist5k"])
    assert cli.recipe_from_args(args).data == ("syndigits5k", "mnist5k")
    for argv, message in ((["train", "dann", "--data", "mnist5k"], "give --target"),
                          (["train", "dcgan", "--target", "mnistm5k"], "--target is for the domain adaptation")):
        with pytest.raises(KerasGenError, match=message):
            cli.recipe_from_args(cli.build_parser().parse_args(argv))
    result = run_cli("train", "source-only", "--out", "/nonexistent/never")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "give --target" in result.stderr


# -- data and training ----------------------------------------------------------------------------------
def test_the_domain_batches_carry_no_target_labels_unpaired_orders_and_resume_exactly():
    both, steps = training.make_domain_dataset("mnist5k", "mnist5k", 1000, seed=3, epochs=2)
    assert steps == 4 and len(both.element_spec) == 3  # (source images, source labels, target images)
    batches = list(both.as_numpy_iterator())
    assert len(batches) == 8
    source, _, target = batches[0]
    # The same dataset on both sides, in different orders: an image meets itself by chance only
    # (1 in 4,000 per place), where equal orders would pair every one.
    assert np.mean([np.array_equal(s, t) for s, t in zip(source, target)]) < 0.01
    later, _ = training.make_domain_dataset("mnist5k", "mnist5k", 1000, seed=3, epochs=1, first_epoch=1)
    for a, b in zip(batches[4:], later.as_numpy_iterator()):  # epoch 2 alone reads the same
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("model", ["dann", "adda"])
def test_a_tiny_run_from_mnist5k_to_mnistm5k_writes_the_model_and_the_target_test_accuracy(model, tmp_path, capsys):
    hparams = {**{k: list(v) for k, v in TINY.items()}, "discriminator_widths": [8]}
    if model == "adda":
        hparams["source_epochs"] = 1
    recipe = Recipe(model, data=("mnist5k", "mnistm5k"), epochs=1, batch_size=500, hparams=hparams)
    trained, info = training.train(recipe, tmp_path / "run", verbose=2)
    # One line per epoch, ADDA's headed by their stage and numbered on through both.
    heads = [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()]
    assert heads == (["stage 1, epoch 1/2", "stage 2, epoch 2/2"] if model == "adda" else ["epoch 1/1"])
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert 0.0 <= run["test"]["accuracy"] <= 1.0 and run["test"] == info["test"]
    assert run["evaluated_on"] == {"test": "mnistm5k test split", "validation": "mnist5k test split"}
    assert len(run["history"]["val_accuracy"]) == (2 if model == "adda" else 1)
    loaded = keras.models.load_model(tmp_path / "run" / "model.keras")
    x, y = data.load_arrays("mnistm5k", "test")
    assert np.mean(np_(loaded.classify(x)[1]) == y) == pytest.approx(run["test"]["accuracy"], abs=1e-6)
    assert not (tmp_path / "run" / "samples").exists()  # these models do not sample
    if model == "adda":
        assert loaded.stage == 3 and [s["model"] for s in run["stages"]] == ["stage1.keras", "stage2.keras"]
        assert keras.models.load_model(tmp_path / "run" / "stage1.keras").stage == 1
        stage2 = keras.models.load_model(tmp_path / "run" / "stage2.keras")
        assert stage2.stage == 2 and "domain_accuracy" in run["history"]
        # Entry k of every history list is epoch k + 1's, None where that stage logs nothing.
        assert {len(values) for values in run["history"].values()} == {2}
        assert run["history"]["domain_accuracy"][0] is None and run["history"]["domain_accuracy"][1] is not None
        assert run["history"]["accuracy"][0] is not None and run["history"]["accuracy"][1] is None
        for a, b in zip(stage2.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
        # A run killed after stage 1 resumes into stage 2 (Et from Es) and ends the same.
        import shutil

        cut = tmp_path / "cut"
        shutil.copytree(tmp_path / "run", cut)
        for name in ("run.json", "model.keras", "stage2.keras", "checkpoints/epoch_002.keras",
                     "checkpoints/epoch_002.json"):
            (cut / name).unlink()
        resumed, _ = training.train(None, cut, verbose=0, resume=True)
        for a, b in zip(resumed.get_weights(), trained.get_weights()):
            np.testing.assert_array_equal(a, b)
        # Stage 1 is the source-only model of the same recipe, bit for bit.
        floor, _ = training.train(Recipe("source-only", data=("mnist5k", "mnistm5k"), epochs=1, batch_size=500,
                                         hparams={k: list(v) for k, v in TINY.items()}), tmp_path / "floor", verbose=0)
        stage1 = keras.models.load_model(tmp_path / "run" / "stage1.keras")
        np.testing.assert_array_equal(np_(stage1.classify(x[:200])[0]), np_(floor.classify(x[:200])[0]))
    else:
        assert run["history"]["lambda"][0] > 0


class _TriplesSequence(keras.utils.PyDataset):
    def __init__(self, parts, batch):
        super().__init__()
        self.parts, self.batch = parts, batch

    def __len__(self):
        return len(self.parts[0]) // self.batch

    def __getitem__(self, i):
        return tuple(part[i * self.batch:(i + 1) * self.batch] for part in self.parts)


@pytest.mark.parametrize("kind", ["generator", "py_dataset"])
def test_dann_and_adda_train_on_a_generator_or_a_py_dataset_of_triples_as_on_a_dataset(kind):
    """What `fit` takes besides a tf.data.Dataset (README): the same batches give the same
    weights; arrays, which cannot pair two domains, stay refused."""
    parts = (rng_images(16, 1), rng_labels(16), rng_images(16, 3, seed=1))

    def source(epochs):
        if kind == "py_dataset":
            return _TriplesSequence(parts, 8)
        return (tuple(part[i:i + 8] for part in parts) for _ in range(epochs) for i in (0, 8))

    for make in (lambda: DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), lambda_=0.5, **TINY),
                 lambda: ADDA(image_shape=(28, 28, 3), discriminator_widths=(8,), stage=2, **TINY)):
        results = []
        for batches in (tf.data.Dataset.from_tensor_slices(parts).batch(8), source(2)):
            keras.utils.set_random_seed(0)
            model = make()
            model.compile()
            before = snapshot(model.trainable_variables)
            model.fit(batches, epochs=2, steps_per_epoch=2, verbose=0)
            results.append(snapshot(model.trainable_variables))
        assert any(not np.array_equal(a, b) for a, b in zip(before, results[0]))  # it trained
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
    dann = DANN(image_shape=(28, 28, 3), lambda_=0.5, **TINY)
    dann.compile()
    with pytest.raises(KerasGenError, match="a tf.data.Dataset, a PyDataset or a generator .*got a tuple"):
        dann.fit(parts, verbose=0)
    with pytest.raises(KerasGenError, match="give a tf.data.Dataset, a generator or a keras.utils.PyDataset"):
        dann.fit(parts[2], verbose=0)


def test_lambda_max_scales_the_schedule_and_is_kept_through_save(tmp_path):
    """λ_p = lambda_max · λ_p(paper): the recipe's way to cap the reversed gradient (a
    `lambda_` the schedule overwrites at once was a silent no-op in `keras-gen train`)."""
    model = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), lambda_max=0.3, **TINY)
    model.compile()
    logs = model.fit(triples(32, 8), epochs=1, verbose=0, callbacks=model.training_callbacks()).history
    np.testing.assert_allclose(logs["lambda"], [0.3 * np.mean([dann_lambda(k / 4) for k in range(4)])], rtol=1e-5)
    model.save(tmp_path / "dann.keras")
    loaded = keras.models.load_model(tmp_path / "dann.keras")
    assert loaded.lambda_max == 0.3 and loaded.get_config()["lambda_max"] == 0.3
    loaded.set_progress(1.0)
    assert loaded.reversal.lambda_ == pytest.approx(0.3 * dann_lambda(1.0), rel=1e-6)


@pytest.mark.parametrize("kwargs", [{"lambda_": -1.0}, {"lambda_max": -0.5}, {"lambda_max": float("inf")},
                                    {"lambda_": float("nan")}, {"lambda_max": "1"}, {"lambda_": True}])
def test_dann_refuses_a_negative_or_non_finite_lambda(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(KerasGenError, match=f"DANN's {name} must be a finite number >= 0"):
        DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **kwargs, **TINY)


def test_dann_warns_when_the_schedule_overwrites_lambda_and_refuses_bad_data_before_any_warning():
    dann = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), lambda_=0.7, **TINY)
    dann.compile()
    with pytest.warns(UserWarning, match=r"lambda_ \(0.7\) is overwritten by the DANNSchedule.*set lambda_max"):
        dann.fit(triples(8, 8), verbose=0, callbacks=dann.training_callbacks())
    unset = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    unset.compile()
    images = np.zeros((8, 28, 28, 3), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the data's error, not the λ warning first
        with pytest.raises(KerasGenError, match=r"DANN trains on \(source images, source labels, target images\)"):
            unset.fit(images, np.zeros(8, np.int32), verbose=0)


def test_dann_warns_when_nothing_will_set_lambda():
    dann = DANN(image_shape=(28, 28, 3), discriminator_widths=(8,), **TINY)
    dann.compile()
    with pytest.warns(UserWarning, match="λ is 0 and no DANNSchedule"):
        dann.fit(triples(8, 8), verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dann.fit(triples(8, 8), verbose=0, callbacks=dann.training_callbacks())  # the schedule sets λ
        dann.reversal.lambda_ = 0.3
        dann.fit(triples(8, 8), verbose=0)  # λ set by hand


def test_a_pair_with_digits_trains_at_the_other_domains_size_without_being_told(tmp_path):
    """digits is 8x8 unless resized; beside a 28x28-only domain a pair resizes it to 28x28 (the
    issue's digits domain) instead of asking for --image-size; an explicit size still rules."""
    assert training.pair_image_size("mnist5k", "digits") == 28
    assert training.pair_image_size("digits", "mnistm5k") == 28
    assert training.pair_image_size("mnist5k", "mnistm5k") is None  # one size already
    assert training.pair_image_size("digits", "mnist5k", 28) == 28
    recipe = Recipe("source-only", data=("digits", "mnist5k"), epochs=1, batch_size=500,
                    hparams={k: list(v) for k, v in TINY.items()})
    trained, info = training.train(recipe, tmp_path / "run", verbose=0)
    assert trained.image_shape == (28, 28, 1) and 0.0 <= info["test"]["accuracy"] <= 1.0
    with pytest.raises(KerasGenError, match="mnist5k is 28x28; image_size must be 28 or unset"):
        training.train(Recipe("source-only", data=("digits", "mnist5k"), image_size=8, epochs=1,
                              hparams={k: list(v) for k, v in TINY.items()}), tmp_path / "other", verbose=0)


def test_predict_names_the_arrays_own_shape_after_keras_relaxed_its_trace():
    model = SourceOnly(image_shape=(28, 28, 3), **TINY)
    model.compile()
    assert np_(model.predict(rng_images(4, 3), verbose=0)).shape == (4, 10)
    with pytest.raises(KerasGenError, match=r"expected batches of uint8 images \[batch, 28, 28, 1 or 3\] with values "
                                            r"0..255, got uint8 \[None, 28, 28, 2\]"):
        model.predict(rng_images(4, 2), verbose=0)


@pytest.mark.parametrize("target_channels", [3, 1])
def test_classify_predict_and_evaluate_agree_on_the_other_domains_channels(target_channels):
    """A grey source's images for an RGB-target model (and RGB for a grey one) are classified as
    training saw them, by `to_channels`, in `classify`, `predict`, a call and `evaluate` alike
    (evaluate took them, classify and predict refused them)."""
    from keras_gen.data import to_channels

    model = SourceOnly(image_shape=(28, 28, target_channels), **TINY)
    model.compile()
    other = rng_images(6, 4 - target_channels)
    converted = np_(to_channels(tf.constant(other), target_channels))
    probabilities, labels = (np_(t) for t in model.classify(other))
    np.testing.assert_array_equal(probabilities, np_(model.classify(converted)[0]))
    np.testing.assert_allclose(np_(model.predict(other, verbose=0)), probabilities, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np_(model(other)), probabilities, rtol=1e-6, atol=1e-7)
    truth = rng_labels(6)
    accuracy = model.evaluate(other, truth, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(float(np.mean(labels == truth)))
