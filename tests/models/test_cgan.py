"""Class-conditional GANs (projection cGAN, AC-GAN): the label really selects the class, in the
generator's layout and in D's projection; training, saving, export and label errors."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import call_in_serving_process

from keras_gen import data, export
from keras_gen.errors import KerasGenError
from keras_gen.models.cgan import ACGAN, CGAN


def tiny(cls=CGAN, **kwargs):
    kwargs.setdefault("image_shape", (8, 8, 1))
    kwargs.setdefault("num_classes", 3)
    kwargs.setdefault("embed_dim", 4)
    return cls(latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=1, **kwargs)


def digits8(n=64, classes=3):
    x, y = data.load_arrays("digits", "train")
    keep = y < classes
    return x[keep][:n], y[keep][:n]


def np_(x):
    return keras.ops.convert_to_numpy(x)


def cbn_layers(model):
    return [layer for layer in model.generator.layers if layer.name.startswith("cbn_")]


def randomize_conditioning(model, seed=0):
    """Non-zero class gains and biases (they start at zero, i.e. plain batch norm)."""
    rng = np.random.default_rng(seed)
    for cbn in cbn_layers(model):
        for dense in (cbn.gain, cbn.bias):
            dense.kernel.assign(rng.normal(0.0, 0.5, dense.kernel.shape).astype(np.float32))


def numpy_vars(variables):
    return [np_(v).copy() for v in variables]


# -- the label selects the class: generator -------------------------------------------------


def test_label_k_scales_and_shifts_with_row_k_of_the_class_gains():
    """CBN output of example i = BN(x_i) * (1 + γ[y_i]) + β[y_i], with a one-hot embedding."""
    model = tiny(num_classes=3, embed_dim=3)
    g = model.generator
    g.get_layer("label_embedding").embeddings.assign(np.eye(3, dtype=np.float32))  # e_k = one-hot k
    cbn = g.get_layer("cbn_0")
    rng = np.random.default_rng(1)
    gains = rng.normal(size=cbn.gain.kernel.shape).astype(np.float32)  # row k: class k's gain per channel
    biases = rng.normal(size=cbn.bias.kernel.shape).astype(np.float32)
    cbn.gain.kernel.assign(gains)
    cbn.bias.kernel.assign(biases)
    probe = keras.Model(g.inputs, [cbn.input[0], cbn.output])
    labels = np.array([2, 0, 1, 1, 0, 2, 2], np.int32)  # neither sorted nor a repeated pattern
    z = np_(model.latents(len(labels), seed=3))
    before, after = (np_(t) for t in probe([z, labels], training=False))
    mean, var = np_(cbn.norm.moving_mean), np_(cbn.norm.moving_variance)
    normalised = (before - mean) / np.sqrt(var + cbn.epsilon)
    expected = normalised * (1.0 + gains[labels][:, None, None, :]) + biases[labels][:, None, None, :]
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)


def test_changing_one_label_changes_only_that_image():
    model = tiny(num_classes=3)
    randomize_conditioning(model)
    z = np.repeat(np_(model.latents(1, seed=0)), 5, axis=0)  # one z for every example
    labels = np.array([0, 1, 0, 2, 1])
    images = np_(model.generate(z, labels))
    np.testing.assert_array_equal(images[0], images[2])  # same z, same label: the same image
    np.testing.assert_array_equal(images[1], images[4])
    for i, j in [(0, 1), (0, 3), (1, 3)]:  # same z, different labels: different images
        assert np.abs(images[i] - images[j]).max() > 1e-3
    relabelled = labels.copy()
    relabelled[3] = 0
    changed = np_(model.generate(z, relabelled))
    np.testing.assert_array_equal(np.delete(changed, 3, axis=0), np.delete(images, 3, axis=0))
    np.testing.assert_array_equal(changed[3], images[0])  # example 3 is now class 0's image of z


# -- the label selects the class: projection discriminator ----------------------------------


def test_projection_logit_is_linear_term_plus_class_embedding_inner_product():
    model = tiny(num_classes=3)
    d = model.discriminator
    x, _ = digits8(5)
    phi = np_(model.discriminator_features(x))  # the layer `features`, label-free
    w, b = (np_(v) for v in d.get_layer("linear").weights)
    embeddings = np_(d.get_layer("class_embedding").embeddings)
    assert embeddings.shape == (3, phi.shape[1])
    logits = {
        k: np_(d([model.images_to_float(x), tf.fill([5], k)]))[:, 0] for k in range(3)
    }
    for k in range(3):
        np.testing.assert_allclose(logits[k], phi @ w[:, 0] + b[0] + phi @ embeddings[k], rtol=1e-5, atol=1e-5)
    for k, j in [(0, 1), (2, 0), (1, 2)]:
        np.testing.assert_allclose(logits[k] - logits[j], phi @ (embeddings[k] - embeddings[j]), rtol=1e-4, atol=1e-5)
    mixed = tf.constant([2, 0, 1, 1, 0])  # per-example labels pick per-example rows
    np.testing.assert_allclose(
        np_(d([model.images_to_float(x), mixed]))[:, 0], [logits[int(k)][i] for i, k in enumerate(mixed.numpy())], rtol=1e-5, atol=1e-6
    )


# -- the label selects the class: after training ---------------------------------------------


@pytest.mark.parametrize("cls", [CGAN, ACGAN])
def test_samples_of_class_k_look_like_digit_k_after_training(cls):
    """Trained on 0s and 1s, `sample(labels=k)` is nearest to digit k's mean image (chance 50%)."""
    x, y = data.load_arrays("digits", "train")
    x, y = x[y < 2], y[y < 2]
    model = cls(image_shape=(8, 8, 1), num_classes=2, latent_dim=8, generator_widths=(32, 16),
                discriminator_widths=(16, 32), embed_dim=8, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5))
    model.fit(x, y, batch_size=32, epochs=16, verbose=0)  # 144 steps; model seeds 1-12 all split the classes by epoch 9
    means = np.stack([x[y == k].reshape(-1, 64).mean(0) / 255.0 for k in (0, 1)])
    labels = np.arange(200) % 2
    samples = np_(model.sample(200, seed=5, labels=labels)).reshape(200, -1)
    nearest = ((samples[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == labels).mean() >= 0.85
    if cls is ACGAN:  # its classifier head learned the classes of real digits too
        xt, yt = data.load_arrays("digits", "test")
        xt, yt = xt[yt < 2], yt[yt < 2]
        assert (np_(model.classify(xt)[1]) == yt).mean() >= 0.85


# -- training --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, loss", [(CGAN, "hinge"), (ACGAN, "non_saturating")])
def test_fit_on_images_and_labels_trains_both_players(cls, loss):
    model = tiny(cls)
    model.compile()
    assert model.loss_pair.name == loss
    d_before, g_before = numpy_vars(model.discriminator.trainable_variables), numpy_vars(model.generator.trainable_variables)
    x, y = digits8(32)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    pairs = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    history2 = model.fit(pairs, epochs=1, verbose=0, shuffle=False).history
    for h in (history, history2):
        assert set(h) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
        assert all(np.isfinite(v[0]) for v in h.values())
    assert int(model.g_optimizer.iterations) == 4
    # Kernels and embeddings (D's last bias gets no hinge gradient while every logit is inside the margin).
    for before, network in [(d_before, model.discriminator), (g_before, model.generator)]:
        moved = [not np.array_equal(a, np_(v)) for a, v in zip(before, network.trainable_variables) if a.ndim >= 2]
        assert moved and all(moved)


@pytest.mark.parametrize("cls", [CGAN, ACGAN])
def test_mixed_bfloat16_keeps_float32_weights_logits_and_images(cls):
    model = tiny(cls, precision="mixed_bfloat16")
    model.compile()
    x, y = digits8(16)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0])
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert model.generator.get_layer("cbn_0").compute_dtype == "bfloat16"
    assert model.generate(model.latents(2), [0, 1]).dtype == "float32"
    logits, _ = model.discriminate(model.images_to_float(x[:2]), tf.constant(y[:2], tf.int32), training=False)
    assert logits.dtype == "float32"


@pytest.mark.parametrize("cls", [CGAN, ACGAN])
def test_unlabelled_batches_are_a_one_line_error(cls):
    model = tiny(cls)
    model.compile()
    x, _ = digits8(16)
    for unlabelled in (x, tf.data.Dataset.from_tensor_slices(x).batch(8)):
        with pytest.raises(KerasGenError, match=r"give \(images, labels\) batches") as info:
            model.fit(unlabelled, epochs=1, verbose=0, shuffle=False)
        assert "\n" not in str(info.value)


# -- AC-GAN's auxiliary classifier -------------------------------------------------------------


def cross_entropy(logits, labels):
    logits = np.asarray(logits, np.float64)
    log_softmax = logits - logits.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    return -log_softmax[np.arange(len(labels)), labels].mean()


def softplus(x):
    return np.logaddexp(0.0, np.asarray(x, np.float64))


def test_acgan_auxiliary_losses_are_the_class_cross_entropy_of_both_heads():
    model = tiny(ACGAN, num_classes=3)
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    labels = tf.constant([2, 0, 1, 1, 0, 2], tf.int32)
    np.testing.assert_allclose(
        float(model.auxiliary_discriminator_loss(real, fake, labels)),
        cross_entropy(real, labels.numpy()) + cross_entropy(fake, labels.numpy()), rtol=1e-5,
    )
    np.testing.assert_allclose(float(model.auxiliary_generator_loss(fake, labels)), cross_entropy(fake, labels.numpy()), rtol=1e-5)
    assert float(CGAN.auxiliary_discriminator_loss(tiny(), real, fake, labels)) == 0.0  # the projection has none


def test_acgan_fit_adds_the_class_losses_to_both_players():
    """With frozen players one step's d_loss and g_loss are recomputed by hand from the outputs."""
    model = tiny(ACGAN, num_classes=3)
    model.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    x, y = digits8(8)
    state = np_(model.seed_generator.state).copy()
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history
    model.seed_generator.state.assign(state)  # replay the step's two latent draws
    z_d, z_g = model.training_latents(8), model.training_latents(8)
    labels = tf.constant(y, tf.int32)
    real_logits, real_classes = (np_(t) for t in model.discriminator(model.images_to_float(x), training=True))
    fake_logits, fake_classes = (np_(t) for t in model.discriminator(model.generator([z_d, labels], training=True), training=True))
    g_logits, g_classes = (np_(t) for t in model.discriminator(model.generator([z_g, labels], training=True), training=True))
    d_adversarial = softplus(-real_logits).mean() + softplus(fake_logits).mean()
    d_classes = cross_entropy(real_classes, y) + cross_entropy(fake_classes, y)
    g_adversarial, g_classes_ce = softplus(-g_logits).mean(), cross_entropy(g_classes, y)
    assert d_classes > 1.0 and g_classes_ce > 0.5  # untrained: about 2 log 3 and log 3
    np.testing.assert_allclose(history["d_loss"][0], d_adversarial + d_classes, rtol=1e-5)
    np.testing.assert_allclose(history["g_loss"][0], g_adversarial + g_classes_ce, rtol=1e-5)


def test_acgan_classify_gives_probabilities_and_labels_from_the_class_head():
    model = tiny(ACGAN, num_classes=3)
    x, _ = digits8(5)
    probs, label = model.classify(x, batch_size=2)  # across batches
    probs, label = np_(probs), np_(label)
    assert probs.shape == (5, 3) and probs.dtype == np.float32
    assert label.dtype == np.int32
    np.testing.assert_array_equal(label, probs.argmax(1))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    _, class_logits = model.discriminator(model.images_to_float(x))
    np.testing.assert_allclose(probs, np_(tf.nn.softmax(class_logits)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np_(model.classify(x, batch_size=256)[0]), probs, rtol=1e-6, atol=1e-7)
    with pytest.raises(KerasGenError, match="uint8"):
        model.classify(x.astype(np.float32))
    with pytest.raises(KerasGenError, match="batch_size"):
        model.classify(x, batch_size=0)
    assert len(model.discriminator.inputs) == 1  # AC-GAN's D reads the class off the image


# -- sampling and labels -------------------------------------------------------------------------


def test_sample_without_labels_draws_classes_uniformly_from_the_seed():
    model = tiny(num_classes=4)
    randomize_conditioning(model)
    n = 400
    z = model.latents(n, seed=7)
    per_class = np.stack([np_(model.generate(z, np.full([n], k))) for k in range(4)])  # [K, n, H, W, C]
    drawn = np_(model.sample(n, seed=7))
    matches = np.all(np.isclose(per_class, drawn[None], rtol=0, atol=1e-6), axis=(2, 3, 4))  # [K, n]
    assert (matches.sum(0) == 1).all()  # each image is z_i's image for exactly one class
    labels = matches.argmax(0)
    counts = np.bincount(labels, minlength=4)
    assert counts.min() >= 70 and counts.max() <= 130, counts  # 100 each expected, sd ~9
    np.testing.assert_array_equal(np_(model.sample(n, seed=7)), drawn)  # reproducible
    np.testing.assert_array_equal(np_(model.sample(n, seed=7, labels=labels)), drawn)
    assert not np.array_equal(np_(model.sample(n, seed=8)), drawn)
    assert np_(model.sample(3, seed=1, labels=2)).shape == (3, 8, 8, 1)  # one int for all


def test_bad_labels_are_a_clear_error():
    model = tiny(num_classes=3)
    z = model.latents(4)
    with pytest.raises(KerasGenError, match=r"labels must be in 0\.\.2"):
        model.generate(z, [0, 1, 2, 3])
    with pytest.raises(KerasGenError, match=r"labels must be in 0\.\.2"):
        model.sample(2, labels=-1)
    with pytest.raises(KerasGenError, match="4 ints"):
        model.generate(z, [0, 1, 2])
    with pytest.raises(KerasGenError, match="4 ints"):
        model.generate(z, [0.0, 1.0, 2.0, 1.0])
    with pytest.raises(KerasGenError, match="conditional: give labels"):
        model.generate(z)
    with pytest.raises(KerasGenError, match="conditional: give labels"):
        model.interpolate(np.zeros(8), np.ones(8), steps=3)
    assert np_(model.interpolate(np.zeros(8), np.ones(8), steps=3, labels=1)).shape == (3, 8, 8, 1)
    with pytest.raises(KerasGenError, match="num_classes"):
        tiny(num_classes=1)
    with pytest.raises(KerasGenError, match="num_classes"):
        tiny(ACGAN, num_classes=None)


# -- saving and serving ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CGAN, ACGAN])
def test_keras_round_trip_is_identical(cls, tmp_path):
    model = tiny(cls, ema_decay=0.9)
    model.compile(loss="least_squares")
    x, y = digits8(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    config = model.get_config()
    own = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    assert own <= set(config), own - set(config)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is cls and loaded.get_config() == config
    assert loaded.loss_pair.name == "least_squares" and int(loaded.g_optimizer.iterations) == 2
    z, labels = model.latents(6, seed=2), np.array([2, 0, 1, 1, 0, 2])
    np.testing.assert_array_equal(np_(loaded.generate(z, labels)), np_(model.generate(z, labels)))
    np.testing.assert_array_equal(np_(loaded.sample(5, seed=3)), np_(model.sample(5, seed=3)))
    if cls is ACGAN:
        np.testing.assert_array_equal(np_(loaded.classify(x)[0]), np_(model.classify(x)[0]))


def test_export_signatures_without_keras_gen_match_generate_and_sample(tmp_path):
    model = tiny(num_classes=3)
    model.compile()
    x, y = digits8(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    randomize_conditioning(model)  # so a wrong label would show
    path = export.export(model, tmp_path / "serving", "cgan")
    z = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    labels = np.array([2, 0, 1, 1, 0], np.int32)
    out, stdout = call_in_serving_process(
        path,
        [("serving_default", {"z": z, "labels": labels}), ("sample", {"labels": labels, "seed": np.int32(11)})],
        tmp_path,
    )
    assert "'sample'" in stdout and "'serving_default'" in stdout

    def uint8(images):
        return np.round(np_(images) * 255).astype(np.uint8)

    assert out["0/images"].dtype == np.uint8
    np.testing.assert_array_equal(out["0/images"], uint8(model.generate(z, labels)))
    np.testing.assert_array_equal(out["1/images"], uint8(model.sample(5, 11, labels=labels)))
    assert not np.array_equal(out["1/images"], uint8(model.sample(5, 11, labels=(labels + 1) % 3)))


def test_labels_are_checked_wherever_they_enter():
    import tensorflow as tf

    model = tiny()
    model.compile()
    x, y = digits8(16)
    with pytest.raises(KerasGenError, match=r"call it with \[z, labels\]"):
        model(model.latents(2, seed=0))
    with pytest.raises(KerasGenError, match="labels must be in 0..2"):
        model.fit(x, y + 3, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(KerasGenError, match="labels must be integers"):
        model.fit(x, y.astype("float32"), batch_size=8, epochs=1, verbose=0)
    # In a dataset, seen only inside the step: one line too (it was TensorFlow's "Graph
    # execution error" of 35 lines), for fit and evaluate.
    bad = tf.data.Dataset.from_tensor_slices((x, y + 3)).batch(8)
    with pytest.raises(KerasGenError, match=r"^labels must be in 0\.\.2 \(a batch of the data given to fit\)$"):
        model.fit(bad, epochs=1, verbose=0, shuffle=False)
    with pytest.raises(KerasGenError, match=r"^labels must be in 0\.\.2 \(a batch of the data given to evaluate\)$"):
        model.evaluate(bad, verbose=0)


def test_classify_and_features_run_where_the_batch_size_is_unknown():
    """Inside a `tf.function` or `Dataset.map` the batch dimension is None: the calls chunk in
    the graph, and give what the eager calls give."""
    model = tiny(ACGAN, num_classes=3)
    x, _ = digits8(7)
    spec = tf.TensorSpec([None, 8, 8, 1], tf.uint8)
    probs = tf.function(lambda images: model.classify(images, batch_size=3)[0], input_signature=[spec])(x)
    np.testing.assert_allclose(np_(probs), np_(model.classify(x)[0]), rtol=1e-6, atol=1e-7)
    features = tf.function(lambda images: model.discriminator_features(images, batch_size=3),
                           input_signature=[spec])(x)
    np.testing.assert_allclose(np_(features), np_(model.discriminator_features(x)), rtol=1e-6, atol=1e-6)
    mapped = tf.data.Dataset.from_tensor_slices(x).batch(4).map(lambda images: model.classify(images)[1])
    np.testing.assert_array_equal(np.concatenate([np_(b) for b in mapped]), np_(model.classify(x)[1]))


def test_acgan_export_classify_without_keras_gen_is_its_classifier(tmp_path):
    model = tiny(ACGAN, num_classes=3)
    model.compile()
    x, y = digits8(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = export.export(model, tmp_path / "serving", "acgan")
    out, stdout = call_in_serving_process(path, [("classify", {"images": x[:5]})], tmp_path)
    assert "'classify'" in stdout and "'sample'" in stdout
    probs, label = model.classify(x[:5])
    np.testing.assert_allclose(out["0/probabilities"], np_(probs), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out["0/label"], np_(label))
