"""PixelRNN (Row LSTM, Diagonal BiLSTM): causal at initialisation (grey, colour, conditional),
the paper's receptive fields (the Row LSTM's triangle, the Diagonal BiLSTM's whole past but one
pixel), a normalised exact likelihood, training, seeded sampling from the conditionals, saving,
export and bfloat16."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import call_in_serving_process
from keras_gen import data, registry
from keras_gen.errors import KerasGenError
from keras_gen.models import PixelRNN


def tiny(shape=(5, 5, 1), **kwargs):
    kwargs.setdefault("hidden_size", 4 * shape[-1])
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("first_kernel_size", 3)
    return PixelRNN(image_shape=shape, **kwargs)


def random_images(shape, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("rnn", ["row_lstm", "diagonal_bilstm"])
@pytest.mark.parametrize("shape, classes", [((5, 5, 1), None), ((3, 3, 3), None), ((4, 4, 1), 3)])
def test_changing_subpixel_k_never_changes_an_earlier_distribution(shape, classes, rnn):
    model = tiny(shape, num_classes=classes, rnn=rnn)
    x = random_images(shape, n=1, seed=1)
    inputs = (lambda images: [images, np.array([2], np.int32)]) if classes else (lambda images: images)
    base = numpy(model(inputs(x))).reshape(1, -1, 256)  # sub-pixels in raster order, channels innermost
    later_changed = False
    for k in range(int(np.prod(shape))):
        changed = x.copy().reshape(1, -1)
        changed[0, k] = (int(changed[0, k]) + 128) % 256
        diff = np.abs(numpy(model(inputs(changed.reshape(x.shape)))).reshape(1, -1, 256) - base).max(axis=-1)[0]
        assert diff[: k + 1].max() <= 1e-5, f"sub-pixel {k} leaks into {int(np.argmax(diff[:k + 1]))}"
        later_changed |= bool(diff[k + 1:].max(initial=0.0) > 1e-4)
    assert later_changed, "the model ignores its context entirely"


def paper_dependency(shape, num_layers, first_kernel_size, input_kernel_size=3, state_kernel_size=3):
    """`dep[k, m]`: may the logits of sub-pixel k depend on sub-pixel m, by the paper's
    architecture? Sets of input sub-pixels are pushed through each layer's connectivity:
    mask-A conv, Row LSTM (masked K_is along the row, K_ss across the row above, the cell
    down the column), 1x1 mask-B convs; a feature's colour group is the sub-pixel it serves."""
    h, w, c = shape
    n = h * w * c

    def sub_pixel(i, j, g):
        return (i * w + j) * c + g

    def mask_a(images):
        r = first_kernel_size // 2
        out = np.zeros_like(images)
        for i, j, g in np.ndindex(h, w, c):
            for di in range(-r, 1):
                for dj in range(-r, r + 1):
                    ii, jj = i + di, j + dj
                    if not (0 <= ii < h and 0 <= jj < w) or (di == 0 and dj > 0):
                        continue
                    groups = range(c) if (di, dj) != (0, 0) else range(g)  # type A: not itself
                    for gg in groups:
                        out[i, j, g] |= images[ii, jj, gg]
        return out

    def mask_b_1x1(x):
        return np.logical_or.accumulate(x, axis=-2)  # group g sees groups <= g of its pixel

    def row_lstm(x):
        ri, rs = input_kernel_size // 2, state_kernel_size // 2
        hidden = np.zeros_like(x)
        cell = np.zeros_like(x)
        for i in range(h):
            for j, g in np.ndindex(w, c):
                gates = mask_b_1x1(x[i])[j, g].copy()
                for jj in range(max(0, j - ri), j):
                    gates |= x[i, jj].any(axis=0)
                if i > 0:
                    gates |= hidden[i - 1, max(0, j - rs):j + rs + 1].any(axis=(0, 1))
                    gates |= cell[i - 1, j, g]
                cell[i, j, g] = hidden[i, j, g] = gates
        return hidden

    images = np.zeros((h, w, c, n), bool)
    for i, j, g in np.ndindex(h, w, c):
        images[i, j, g, sub_pixel(i, j, g)] = True
    x = mask_a(images)
    for _ in range(num_layers):
        x = x | mask_b_1x1(row_lstm(x))  # residual around the LSTM and its 1x1 output conv
    return mask_b_1x1(mask_b_1x1(x)).reshape(n, n)  # the two 1x1 head convolutions


def network_dependency(model, draws=2):
    """`dep[k, m]` measured: a nonzero gradient of sub-pixel k's logits w.r.t. input m,
    the union over a few random images (a ReLU can cut a path at one image, not at all). The
    images are one batch and one `batch_jacobian` (an output reads its own image only): one
    trace of the Jacobian's loop instead of one per image."""
    h, w, c = model.image_shape
    readout = tf.constant(np.random.default_rng(1).normal(size=(256,)).astype(np.float32))
    images = tf.Variable(np.stack([np.random.default_rng(draw).uniform(-1, 1, size=(h, w, c))
                                   for draw in range(draws)]).astype(np.float32))
    with tf.GradientTape() as tape:
        scalar_per_subpixel = tf.linalg.matvec(tf.reshape(model.network(images), [draws, h * w * c, 256]), readout)
    jac = tape.batch_jacobian(scalar_per_subpixel, images).numpy()  # [draws, H*W*C, H, W, C]
    return (np.abs(jac.reshape(draws, h * w * c, h * w * c)) > 0).any(axis=0)


@pytest.mark.parametrize("shape, layers", [((6, 6, 1), 1), ((5, 5, 1), 2), ((3, 3, 3), 1)])
def test_receptive_field_is_the_papers_triangle(shape, layers):
    model = tiny(shape, num_layers=layers)
    expected = paper_dependency(shape, layers, 3)
    assert not (expected & ~np.tril(np.ones_like(expected), k=-1)).any()  # the rule itself is causal
    np.testing.assert_array_equal(network_dependency(model), expected)


def test_the_triangle_reaches_up_and_right_and_leaves_the_papers_blind_region():
    # The rule of `paper_dependency`, which the network follows exactly (the test above).
    dep = paper_dependency((6, 6, 1), 1, 3).reshape(6, 6, 6, 6)
    for i, j in np.ndindex(6, 5):
        if i > 0:
            assert dep[i, j, i - 1, j + 1]  # pixel (i, j) sees (i-1, j+1)
    # From the bottom-left pixel, row 5 - d is seen up to column d: a 45-degree triangle (the
    # 3x3 first layer alone reaches one row up), and nothing right of it.
    for d in range(1, 6):
        assert dep[5, 0, 5 - d, :d + 1].all() and not dep[5, 0, 5 - d, d + 1:].any()
    assert not dep[5, 3, 5, :1].any()  # and the current row beyond the kernels, to the left


def diagonal_dependency(shape, first_kernel_size):
    """The Diagonal BiLSTM network's field for grey images: every earlier pixel, except the
    last pixel of the row above for the first W - 1 - r pixels of a row (r = first_kernel_size
    // 2). No feature at a position holds that position's own pixel (type-A first layer), so
    the row above's last pixel first enters row i's features at its columns >= W - 1 - r; the
    left-to-right LSTM at (i, j) reads row i up to j, and the right-to-left one, shifted down,
    row i - 1's features, none of which holds it. Deeper layers do not close it."""
    h, w, _ = shape
    r = first_kernel_size // 2
    dep = np.zeros((h * w, h * w), bool)
    for i, j, i2, j2 in np.ndindex(h, w, h, w):
        dep[i * w + j, i2 * w + j2] = (i2, j2) < (i, j) and not (i2 == i - 1 and j2 == w - 1 and j + r < w - 1)
    return dep


@pytest.mark.parametrize("shape, layers, first", [((5, 5, 1), 1, 3), ((5, 6, 1), 2, 3), ((4, 6, 1), 1, 5)])
def test_the_diagonal_bilstm_sees_the_whole_past_but_the_last_pixel_of_the_row_above(shape, layers, first):
    model = tiny(shape, num_layers=layers, first_kernel_size=first, rnn="diagonal_bilstm")
    expected = diagonal_dependency(shape, first)
    np.testing.assert_array_equal(network_dependency(model), expected)
    # Far more than the Row LSTM's triangle: (i, 0) sees the row above up to column W - 2 - r.
    row = tiny(shape, num_layers=layers, first_kernel_size=first)
    assert network_dependency(row).sum() < expected.sum()


def test_a_diagonal_model_saves_exports_and_samples_with_the_cached_sampler(tmp_path):
    from keras_gen import export

    model = tiny((4, 4, 1), num_classes=2, rnn="diagonal_bilstm")
    assert model.samples_fast and model.cached_sampler(np.array([0, 1], np.int32)) is not None
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x, y = random_images((4, 4, 1), n=8), np.arange(8, dtype=np.int32) % 2
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert loaded.get_config() == model.get_config() and loaded.get_config()["rnn"] == "diagonal_bilstm"
    np.testing.assert_array_equal(numpy(loaded.log_prob(x, y)), numpy(model.log_prob(x, y)))
    samples = numpy(model.sample_uint8(2, 3, labels=[0, 1]))
    np.testing.assert_array_equal(numpy(loaded.sample_uint8(2, 3, labels=[0, 1])), samples)
    path = export.export(model, tmp_path / "export", "pixelrnn")
    out, _ = call_in_serving_process(path, [("log_prob", {"images": x, "labels": y})], tmp_path)
    np.testing.assert_allclose(out["0/log_prob"], numpy(model.log_prob(x, y)), rtol=1e-6)


def test_log_prob_is_the_sum_of_the_log_softmax_at_the_observed_values():
    model = tiny((4, 4, 3))
    x = random_images((4, 4, 3), n=3)
    logits = numpy(model(x)).astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax, x[..., None].astype(np.int64), axis=-1)[..., 0]
    pixel_log_prob = numpy(model.pixel_log_prob(x))
    np.testing.assert_allclose(pixel_log_prob, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(model.log_prob(x)), pixel_log_prob.sum(axis=(1, 2, 3)), rtol=1e-6)


def test_each_subpixel_distribution_sums_to_one():
    model = tiny((4, 4, 1))
    x = np.repeat(random_images((4, 4, 1), n=1), 256, axis=0)
    k = 9
    x.reshape(256, -1)[:, k] = np.arange(256)  # every value of sub-pixel k, the same context
    probs = np.exp(numpy(model.pixel_log_prob(x)).reshape(256, -1)[:, k].astype(np.float64))
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)


def test_joint_distribution_sums_to_one_over_every_image():
    """A 1x2 grey image has 65,536 values; p(x) must sum to one over all of them."""
    model = tiny((1, 2, 1), num_layers=1)
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    images = np.stack([a.ravel(), b.ravel()], axis=1).reshape(-1, 1, 2, 1).astype(np.uint8)
    log_p = np.concatenate([numpy(model.log_prob(batch)) for batch in np.split(images, 16)])
    assert np.exp(log_p.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)


def test_untrained_likelihood_is_near_uniform():
    model = tiny((4, 4, 1))
    bits = -numpy(model.log_prob(random_images((4, 4, 1), n=4))) / (16 * math.log(2))
    assert np.all(np.abs(bits - 8.0) < 0.5)


def test_fit_lowers_the_nll_and_evaluate_agrees_with_log_prob():
    images = data.load_arrays("digits", "train")[0][:128]
    model = tiny((8, 8, 1), hidden_size=8, num_layers=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, batch_size=32, epochs=3, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    result = model.evaluate(images, batch_size=48, verbose=0, return_dict=True)
    nll = -float(np.mean(numpy(model.log_prob(images))))
    assert result["nll"] == pytest.approx(nll, rel=1e-4)
    assert result["bits_per_dim"] == pytest.approx(nll / (64 * math.log(2)), rel=1e-4)


def test_labels_condition_the_likelihood_and_classify_is_bayes_rule():
    model = tiny((4, 4, 1), num_classes=3)
    x = random_images((4, 4, 1), n=4)
    model.network.get_layer("row_lstm0_class_bias").embeddings.assign(
        np.random.default_rng(0).normal(size=(3, 16)).astype("float32"))  # Embedding starts small
    per_class = np.stack([numpy(model.log_prob(x, labels=k)) for k in range(3)], axis=1)
    assert np.abs(per_class[:, 0] - per_class[:, 1]).max() > 1e-3  # the label reaches the gates
    probabilities, labels = model.classify(x)
    np.testing.assert_allclose(numpy(probabilities).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(numpy(labels), per_class.argmax(axis=1))
    with pytest.raises(KerasGenError, match="conditional: give labels"):
        model.log_prob(x)


def test_sample_is_seeded_and_drawn_from_the_conditionals():
    """The sampler runs the network on rows 0..i; by causality the logits of sub-pixel k on
    the finished sample are those it was drawn from, so redrawing with the documented
    stateless seed (seed, k) reproduces every value."""
    shape = (4, 3, 3)
    model = tiny(shape)
    # Sharp, context-dependent distributions (untrained logits are near uniform): a sampler
    # that saw the wrong context would draw other values.
    logits_layer = model.network.get_layer("logits")
    logits_layer.kernel.assign(logits_layer.kernel * 40.0)
    s = numpy(model.sample_uint8(3, seed=7))
    assert s.dtype == np.uint8 and s.shape == (3, *shape)
    np.testing.assert_array_equal(s, numpy(model.sample_uint8(3, seed=7)))
    assert not np.array_equal(s, numpy(model.sample_uint8(3, seed=8)))
    logits = numpy(model(s)).reshape(3, -1, 256)
    for k in range(int(np.prod(shape))):
        redraw = tf.random.stateless_categorical(logits[:, k], 1, seed=[7, k], dtype=tf.int32)[:, 0]
        np.testing.assert_array_equal(redraw.numpy(), s.reshape(3, -1)[:, k])


def test_save_load_and_export_give_identical_outputs(tmp_path):
    from keras_gen import export

    model = tiny((4, 4, 1))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = random_images((4, 4, 1), n=16)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "p.keras")
    loaded = keras.models.load_model(tmp_path / "p.keras")
    assert isinstance(loaded, PixelRNN) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(model(x)))
    np.testing.assert_array_equal(numpy(loaded.log_prob(x)), numpy(model.log_prob(x)))
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2

    path = export.export(model, tmp_path / "export", "pixelrnn")
    out, stdout = call_in_serving_process(path, [
        ("log_prob", {"images": x}),
        ("sample", {"batch_size": np.int32(2), "seed": np.int32(5)}),
    ], tmp_path)
    assert "serving_default" in stdout and "complete" in stdout
    np.testing.assert_allclose(out["0/log_prob"], numpy(model.log_prob(x)), rtol=1e-6)
    np.testing.assert_array_equal(out["1/images"], numpy(model.sample_uint8(2, 5)))


def test_mixed_bfloat16_trains_and_keeps_logits_and_likelihoods_float32():
    x = random_images((4, 4, 1), n=8)
    exact = tiny((4, 4, 1), precision="float32")
    model = tiny((4, 4, 1), precision="mixed_bfloat16")
    model.set_weights(exact.get_weights())
    assert model(x).dtype == "float32" and model.log_prob(x).dtype == tf.float32
    # bfloat16 convolutions, a float32 cell: the likelihood within 1% of float32's.
    np.testing.assert_allclose(numpy(model.log_prob(x)), numpy(exact.log_prob(x)), rtol=1e-2)
    model.compile()
    history = model.fit(x, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_the_registry_builds_it():
    assert registry.model_class("pixelrnn") is PixelRNN
    assert registry.name_of(PixelRNN) == "pixelrnn"
    assert registry.spec("pixelrnn").default_batch_size == 64 and registry.spec("pixelrnn").default_epochs == 10


@pytest.mark.parametrize("kwargs, message", [
    ({"state_kernel_size": 4}, "kernel sizes must be odd"),
    ({"first_kernel_size": 2}, "kernel sizes must be odd"),
    ({"hidden_size": 4}, "multiple of the 3 colour channels"),
    ({"num_layers": -1}, "num_layers"),
    ({"num_classes": 1}, "num_classes"),
    ({"rnn": "diagonal"}, "rnn must be one of row_lstm, diagonal_bilstm"),
])
def test_bad_constructor_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(KerasGenError, match=message):
        tiny((3, 3, 3), **kwargs)
