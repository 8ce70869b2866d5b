"""PixelCNN++: causal at pixel and sub-pixel level, a normalised mixture head equal to numpy,
exact sampling windows across the strides, training, dropout, saving, export, bfloat16."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import call_in_serving_process, digits8
from keras_gen import likelihoods, registry
from keras_gen.errors import KerasGenError
from keras_gen.models import PixelCNNPlusPlus
from keras_gen.models.pixelcnnpp import LEARNING_RATE_DECAY, DecayingAdam


def tiny(shape=(8, 8, 1), **kwargs):
    kwargs.setdefault("filters", 8)
    kwargs.setdefault("blocks_per_resolution", 0)  # both stride-2 levels, the fewest layers
    kwargs.setdefault("num_mixtures", 3)
    kwargs.setdefault("dropout", 0.0)
    return PixelCNNPlusPlus(image_shape=shape, **kwargs)


def random_images(shape, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def peaked(model):
    """Output biases as after training: narrow logistics (log s = −3) and strong RGB coupling
    (coefficients tanh(2) = 0.96), so that each conditional visibly reads the others; at
    initialisation every logistic is about as wide as the whole range."""
    k, c = model.num_mixtures, model.image_shape[2]
    bias = numpy(model.network.get_layer("outputs").bias).copy()
    bias[k + c * k: k + 2 * c * k] = -3.0
    bias[k + 2 * c * k:] = 2.0
    model.network.get_layer("outputs").bias.assign(bias)
    return model


def with_labels(model, images, labels):
    return [images, np.asarray(labels, np.int32)] if model.conditional else images


def test_registered_as_pixelcnn_plus_plus_and_samples_from_row_zero():
    assert registry.model_class("pixelcnn++") is PixelCNNPlusPlus
    assert registry.spec("pixelcnn++").default_batch_size == 64
    assert tiny((7, 5, 1)).rows_seen_above == 7


@pytest.mark.parametrize("shape, classes", [((8, 8, 1), None), ((6, 5, 3), None), ((8, 8, 1), 3)])
def test_changing_a_subpixel_changes_no_output_at_its_pixel_or_before(shape, classes):
    """The mixture parameters at pixel p read no part of p: changing sub-pixel (q, c) leaves
    every output at pixels <= q exactly as it was; 8x8 runs through both stride-2 levels,
    6x5 is padded to 8x8."""
    h, w, c = shape
    model = tiny(shape, num_classes=classes)
    x = random_images(shape, n=1, seed=1)
    n = h * w * c
    batch = np.repeat(x.reshape(1, n), n + 1, axis=0)
    batch[np.arange(n), np.arange(n)] = (batch[np.arange(n), np.arange(n)].astype(int) + 128) % 256
    out = numpy(model(with_labels(model, batch.reshape(-1, *shape), [1] * (n + 1))))
    diff = np.abs(out[:-1] - out[-1]).reshape(n, h * w, -1).max(axis=-1)  # [changed sub-pixel, output pixel]
    later_changed = False
    for k in range(n):
        pixel = k // c
        assert diff[k, :pixel + 1].max() == 0, f"sub-pixel {k} leaks into pixel {int(np.argmax(diff[k, :pixel + 1]))}"
        later_changed |= bool(diff[k, pixel + 1:].max(initial=0.0) > 0)
    assert later_changed and diff[0, -1] > 0  # the first pixel reaches the last one


@pytest.mark.parametrize("shape", [(4, 4, 1), (4, 4, 3)])
def test_subpixel_log_probs_are_causal_within_the_pixel(shape):
    """Changing sub-pixel k changes no log p(x_m | x_<m) for m < k (the head's RGB coupling
    reads only earlier channels), and changes log p of sub-pixel k itself."""
    model = peaked(tiny(shape))
    x = random_images(shape, n=1, seed=2)
    n = int(np.prod(shape))
    batch = np.repeat(x.reshape(1, n), n + 1, axis=0)
    batch[np.arange(n), np.arange(n)] = (batch[np.arange(n), np.arange(n)].astype(int) + 100) % 256
    log_p = numpy(model.pixel_log_prob(batch.reshape(-1, *shape))).reshape(n + 1, n)
    diff = np.abs(log_p[:-1] - log_p[-1])
    for k in range(n):
        assert diff[k, :k].max(initial=0.0) == 0, f"sub-pixel {k} leaks into {int(np.argmax(diff[k, :k]))}"
        assert diff[k, k] > 0
    if shape[-1] == 3:  # G's and B's conditionals read R through the coupling
        assert diff[0, 1] > 0 and diff[0, 2] > 0 and diff[1, 2] > 0


@pytest.mark.parametrize("shape", [(4, 4, 1), (4, 4, 3)])
def test_each_subpixel_is_a_distribution_over_256_values_and_the_sampler_table_agrees(shape):
    model = tiny(shape)
    h, w, c = shape
    x = random_images(shape, n=1, seed=3)
    i, j = 2, 1
    for channel in range(c):
        images = np.repeat(x, 256, axis=0)
        images[:, i, j, channel] = np.arange(256)  # every value of one sub-pixel, same context
        log_p = numpy(model.pixel_log_prob(images))[:, i, j, channel].astype(np.float64)
        assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-4)
        # The sampler's 256-way table (its channel a tensor, as in the sampling loop) is the
        # same distribution.
        outputs = model(x)[:, i, j]
        table = numpy(model.subpixel_logits(outputs, tf.constant(x[:, i, j], tf.int32), tf.constant(channel)))
        np.testing.assert_allclose(table[0], log_p, rtol=1e-4, atol=1e-4)


def test_log_prob_sums_pixel_log_probs_that_equal_numpy_mixtures():
    """A grey pixel's probability from the model's outputs, written out in numpy:
    sum_k π_k [σ((x + ½ − μ_k)/s_k) − σ((x − ½ − μ_k)/s_k)] in pixel units, edges to ±∞."""
    model = tiny((4, 4, 1), num_mixtures=4)
    x = random_images((4, 4, 1), n=3, seed=4)
    params = numpy(model(x)).astype(np.float64)  # [3, 4, 4, 12]
    logits, means, log_scales = params[..., :4], params[..., 4:8], np.maximum(params[..., 8:12], -7.0)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    centre = (means + 1.0) * 127.5  # [-1, 1] units -> levels
    scale = np.exp(log_scales) * 127.5
    value = x.astype(np.float64)  # [3, 4, 4, 1] broadcasts over the 4 components

    def cdf(edge):
        return 1.0 / (1.0 + np.exp(-(edge - centre) / scale))

    upper = np.where(value == 255, 1.0, cdf(value + 0.5))
    lower = np.where(value == 0, 0.0, cdf(value - 0.5))
    expected = np.log((weights * (upper - lower)).sum(-1))
    pixel_log_prob = numpy(model.pixel_log_prob(x))
    np.testing.assert_allclose(pixel_log_prob[..., 0], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(numpy(model.log_prob(x)), pixel_log_prob.sum(axis=(1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("shape, classes", [((7, 5, 1), None), ((8, 4, 3), 2)])
def test_the_sampler_window_from_row_zero_gives_the_full_images_outputs(shape, classes):
    """The sampler runs the network on rows 0..i only (padded below to a multiple of 4 rows):
    for every i, those rows' outputs are the full image's, across both stride-2 levels."""
    model = tiny(shape, num_classes=classes)
    x = random_images(shape, n=2, seed=5)
    full = numpy(model(with_labels(model, x, [0, 1])))
    for rows in range(1, shape[0] + 1):
        window = numpy(model(with_labels(model, x[:, :rows], [0, 1])))
        assert window.shape == (2, rows, shape[1], full.shape[-1])
        np.testing.assert_array_equal(window, full[:, :rows], err_msg=f"rows 0..{rows - 1}")


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_samples_are_seeded_and_drawn_from_the_models_conditionals(temperature):
    # 3 x 3, not a multiple of the 4 that cached sampling needs: the naive sampler, which
    # traces in seconds where the cached one takes tens; tests/networks/test_cached_sampling.py
    # holds the cached samples equal to the naive ones, at temperature 1 and below.
    shape = (3, 3, 3)
    model = peaked(tiny(shape))  # peaked conditionals: a draw from the wrong one shows
    s = numpy(model.sample_uint8(3, seed=7, temperature=temperature))
    assert s.dtype == np.uint8 and s.shape == (3, *shape)
    np.testing.assert_array_equal(s, numpy(model.sample_uint8(3, seed=7, temperature=temperature)))
    assert not np.array_equal(s, numpy(model.sample_uint8(3, seed=8, temperature=temperature)))
    # Every sub-pixel k is the stateless draw (seed, k) from its conditional, computed here
    # from the whole finished image (the sampler saw only rows 0..i): at temperature 1
    # PixelCNN++'s own draw (component, then logistic), else a categorical over p^(1/T).
    h, w, c = shape
    outputs = tf.reshape(model(s), [3 * h * w, -1])
    values = tf.constant(s.reshape(3 * h * w, c), tf.int32)
    for k in range(h * w * c):
        pixel, channel = k // c, k % c
        rows = outputs[pixel::h * w], values[pixel::h * w]
        if temperature == 1.0:
            redraw = likelihoods.logistic_mixture_subpixel_sample(*rows, channel, model.num_mixtures, c, seed=[7, k])
        else:
            table = model.subpixel_logits(*rows, channel)
            redraw = tf.random.stateless_categorical(table / temperature, 1, seed=[7, k], dtype=tf.int32)[:, 0]
        np.testing.assert_array_equal(numpy(redraw), s.reshape(3, h * w, c)[:, pixel, channel],
                                      err_msg=f"sub-pixel {k}")


def test_fit_lowers_the_nll_and_reports_it_consistently():
    """Built as `keras-gen train pixelcnn++` builds it (named as the registry names it)."""
    from keras_gen import training
    from keras_gen.recipe import Recipe

    images = digits8(128)
    hparams = {"filters": 8, "num_mixtures": 3, "blocks_per_resolution": 0}
    adam = {"class_name": "Adam", "config": {"learning_rate": 3e-3}}
    model = training.build_model(Recipe(model="pixelcnn++", hparams=hparams, compile={"optimizer": adam}), (8, 8, 1))
    assert isinstance(model, PixelCNNPlusPlus) and model.name == "pixelcnnpp"
    history = model.fit(images, batch_size=32, epochs=3, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["bits_per_dim"][-1] < history["bits_per_dim"][0]
    result = model.evaluate(images, batch_size=48, verbose=0, return_dict=True)
    nll = -float(np.mean(numpy(model.log_prob(images))))
    assert result["nll"] == pytest.approx(nll, rel=1e-4)
    assert result["bits_per_dim"] == pytest.approx(nll / (64 * math.log(2)), rel=1e-4)


def test_dropout_is_active_in_training_only():
    model = tiny((8, 8, 1), dropout=0.5)
    x = random_images((8, 8, 1), n=2)
    inference = numpy(model(x))
    np.testing.assert_array_equal(numpy(model(x)), inference)
    np.testing.assert_array_equal(numpy(model(x, training=False)), inference)
    train_a, train_b = numpy(model(x, training=True)), numpy(model(x, training=True))
    assert np.abs(train_a - inference).max() > 1e-4 and np.abs(train_a - train_b).max() > 1e-4
    np.testing.assert_array_equal(numpy(model.log_prob(x)), numpy(model.log_prob(x)))
    # Without dropout, training and inference are the same function.
    plain = tiny((8, 8, 1))
    np.testing.assert_array_equal(numpy(plain(x, training=True)), numpy(plain(x)))


def test_labels_condition_the_likelihood_and_classify_is_bayes_rule():
    model = tiny((8, 8, 1), num_classes=3)
    # The per-class biases start at zero: move them so that the classes differ.
    for weight in model.trainable_weights:
        if "class" in weight.path:
            weight.assign(np.random.default_rng(0).normal(0, 0.5, size=weight.shape).astype(np.float32))
    x = random_images((8, 8, 1), n=4)
    per_class = np.stack([numpy(model.log_prob(x, labels=k)) for k in range(3)], axis=1)
    assert np.abs(per_class[:, 0] - per_class[:, 1]).max() > 1e-3
    probabilities, labels = model.classify(x)
    np.testing.assert_allclose(numpy(probabilities).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(numpy(labels), per_class.argmax(axis=1))
    with pytest.raises(KerasGenError, match="conditional: give labels"):
        model.log_prob(x)


def test_the_default_optimizer_decays_per_step_and_its_rate_stays_settable(tmp_path):
    """lr_t = 1e-3 · decay^t; ReduceLROnPlateau halves the current rate, which decays on from
    there; a saved model comes back with the optimizer, its step and its rate."""
    model = tiny((4, 4, 1))
    model.compile()
    assert isinstance(model.optimizer, DecayingAdam) and model.optimizer.decay == LEARNING_RATE_DECAY
    halve = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9)
    history = model.fit(random_images((4, 4, 1), n=24), batch_size=8, epochs=3, verbose=0, callbacks=[halve]).history
    d = LEARNING_RATE_DECAY
    # Logged at each epoch's end, before that epoch's reduction (none after the first: it
    # sets the best loss).
    np.testing.assert_allclose(history["learning_rate"], [1e-3 * d**3, 1e-3 * d**6, 1e-3 * d**9 * 0.5], rtol=1e-5)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3 * d**9 * 0.25, rel=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, DecayingAdam) and int(loaded.optimizer.iterations) == 9
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(model.optimizer.learning_rate), rel=1e-6)
    for bad in (0, 1.5, "0.9", True):
        with pytest.raises(KerasGenError, match="decay must be"):
            DecayingAdam(decay=bad)


def test_save_load_and_export_give_identical_outputs(tmp_path):
    from keras_gen import export

    shape = (4, 4, 1)
    model = tiny(shape, dropout=0.2)
    model.compile()
    x = random_images(shape, n=3)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, PixelCNNPlusPlus) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(model(x)))
    np.testing.assert_array_equal(numpy(loaded.log_prob(x)), numpy(model.log_prob(x)))

    path = export.export(model, tmp_path / "export", "pcpp")
    out, _ = call_in_serving_process(path, [
        ("log_prob", {"images": x}),
        ("sample", {"batch_size": np.int32(2), "seed": np.int32(3)}),
    ], tmp_path)
    np.testing.assert_allclose(out["0/log_prob"], numpy(model.log_prob(x)), rtol=1e-6)
    np.testing.assert_allclose(out["0/bits_per_dim"], numpy(likelihoods.bits_per_dim(model.log_prob(x), 16)),
                               rtol=1e-6)
    np.testing.assert_array_equal(out["1/images"], numpy(model.sample_uint8(2, 3)))


def test_mixed_bfloat16_builds_trains_and_keeps_the_head_in_float32():
    model = tiny((8, 8, 1), precision="mixed_bfloat16", dropout=0.1)
    model.compile()
    x = random_images((8, 8, 1), n=8)
    history = model.fit(x, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert model(x).dtype == "float32" and model.log_prob(x).dtype == tf.float32
    assert all(v.dtype == "float32" for v in model.trainable_variables)


@pytest.mark.parametrize("kwargs, message", [({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"),
                                             ({"dropout": "0.5"}, "dropout"), ({"num_mixtures": 0}, "num_mixtures"),
                                             ({"filters": 0}, "filters"), ({"blocks_per_resolution": -1}, "blocks"),
                                             ({"num_classes": 1}, "num_classes")])
def test_bad_constructor_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(KerasGenError, match=message):
        tiny(**kwargs)


def test_images_of_another_shape_are_a_clear_error():
    model = tiny((8, 8, 1))
    with pytest.raises(KerasGenError, match="shape"):
        model.log_prob(np.zeros((1, 8, 7, 1), np.uint8))
    with pytest.raises(KerasGenError, match=r"\[batch, 8, 8, 1\] \(or their first rows\).*got uint8 \[1, 9, 8, 1\]"):
        model(np.zeros((1, 9, 8, 1), np.uint8))
