"""PixelCNN: causality, normalisation, exact log-likelihood, sampling, saving."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.errors import KerasGenError
from keras_gen.models import PixelCNN


def tiny(shape=(5, 5, 1), **kwargs):
    kwargs.setdefault("filters", 6 * shape[-1])
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("first_kernel_size", 5)
    return PixelCNN(image_shape=shape, **kwargs)


def random_images(shape, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def digits8(n=128):
    x, _ = data.load_arrays("digits", "train")
    return x[:n]


def flat_logits(model, images):
    logits = keras.ops.convert_to_numpy(model(images))
    # Sub-pixels in raster order, channels innermost; 256 logits (Bernoulli: 1 log-odds) each.
    return logits.reshape(len(images), -1, logits.shape[-1])


def assert_causal(model):
    h, w, c = model.image_shape
    x = random_images(model.image_shape, n=1, seed=1)
    base = flat_logits(model, x)
    later_changed = False
    for k in range(h * w * c):
        changed = x.copy().reshape(1, -1)
        changed[0, k] = (int(changed[0, k]) + 128) % 256
        out = flat_logits(model, changed.reshape(x.shape))
        diff = np.abs(out - base).max(axis=-1)[0]
        # The distribution of every sub-pixel up to and including k is unchanged.
        assert diff[: k + 1].max() <= 1e-5, f"sub-pixel {k} leaks into {int(np.argmax(diff[:k + 1]))}"
        later_changed |= bool(diff[k + 1:].max(initial=0.0) > 1e-4)
    assert later_changed, "the model ignores its context entirely"


@pytest.mark.parametrize("shape, head", [((5, 5, 1), "categorical"), ((3, 3, 3), "categorical"),
                                         ((5, 5, 1), "bernoulli"), ((3, 3, 3), "bernoulli")])
def test_causal_untrained(shape, head):
    assert_causal(tiny(shape, head=head))


def test_causal_after_training():
    model = tiny((8, 8, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(digits8(), batch_size=32, epochs=2, verbose=0)
    assert_causal(model)


def test_rgb_causal_after_training():
    model = tiny((3, 3, 3))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(random_images((3, 3, 3), n=64), batch_size=16, epochs=2, verbose=0)
    assert_causal(model)


def test_each_sub_pixel_distribution_sums_to_one():
    model = tiny((4, 4, 1))
    x = np.repeat(random_images((4, 4, 1), n=1), 256, axis=0)
    k = 9
    x.reshape(256, -1)[:, k] = np.arange(256)  # every value of sub-pixel k, same context
    probs = np.exp(keras.ops.convert_to_numpy(model.pixel_log_prob(x)).reshape(256, -1)[:, k])
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)


def test_joint_distribution_sums_to_one_over_every_image():
    """A 1x2 grey image has 65,536 values; p(x) must sum to one over all of them."""
    model = tiny((1, 2, 1), num_layers=1)
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    images = np.stack([a.ravel(), b.ravel()], axis=1).reshape(-1, 1, 2, 1).astype(np.uint8)
    log_p = np.concatenate([keras.ops.convert_to_numpy(model.log_prob(batch)) for batch in np.split(images, 16)])
    assert np.exp(log_p.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)


def test_log_prob_is_the_log_softmax_at_the_observed_values():
    model = tiny((4, 4, 3))
    x = random_images((4, 4, 3), n=3)
    logits = keras.ops.convert_to_numpy(model(x)).astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax, x[..., None].astype(np.int64), axis=-1)[..., 0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.pixel_log_prob(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.log_prob(x)), expected.sum(axis=(1, 2, 3)), rtol=1e-5
    )


def test_untrained_likelihood_is_near_uniform():
    # Near-zero logits at initialisation: about 8 bits per sub-pixel.
    model = tiny((4, 4, 1))
    bits = -keras.ops.convert_to_numpy(model.log_prob(random_images((4, 4, 1), n=4))) / (16 * math.log(2))
    assert np.all(np.abs(bits - 8.0) < 0.5)


def test_training_reports_nll_and_bits_per_dim_consistently():
    model = tiny((8, 8, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = digits8()
    history = model.fit(images, batch_size=32, epochs=3, verbose=0).history
    assert history["bits_per_dim"][-1] < history["bits_per_dim"][0]  # it learns
    # 128 images in batches of 48: the short last batch must weigh by its 32 images.
    result = model.evaluate(images, batch_size=48, verbose=0, return_dict=True)
    nll = -float(np.mean(keras.ops.convert_to_numpy(model.log_prob(images))))
    assert result["nll"] == pytest.approx(nll, rel=1e-4)
    assert result["bits_per_dim"] == pytest.approx(nll / (64 * math.log(2)), rel=1e-4)


@pytest.mark.parametrize(
    "shape, layers",
    [
        ((4, 4, 3), {}),  # colour channels
        ((8, 3, 1), {"num_layers": 1, "first_kernel_size": 3}),  # sees 2 rows up: the sampler crops
    ],
)
def test_sample_is_reproducible_and_drawn_from_the_conditionals(shape, layers):
    model = tiny(shape, **layers)
    assert model.rows_seen_above == (2 if layers else 4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(random_images(shape, n=32), batch_size=16, epochs=1, verbose=0)
    s = keras.ops.convert_to_numpy(model.sample_uint8(3, seed=7))
    assert s.dtype == np.uint8 and s.shape == (3, *shape)
    np.testing.assert_array_equal(s, keras.ops.convert_to_numpy(model.sample_uint8(3, seed=7)))
    assert not np.array_equal(s, keras.ops.convert_to_numpy(model.sample_uint8(3, seed=8)))
    # By causality the logits of sub-pixel k on the finished sample are those it was drawn
    # from; redrawing with the documented stateless seed (seed, k) reproduces every value.
    logits = flat_logits(model, s)  # on the whole image, whatever rows the sampler ran on
    for k in range(int(np.prod(shape))):
        redraw = tf.random.stateless_categorical(logits[:, k], 1, seed=[7, k], dtype=tf.int32)[:, 0]
        np.testing.assert_array_equal(redraw.numpy(), s.reshape(3, -1)[:, k])
    floats = keras.ops.convert_to_numpy(model.sample(3, seed=7))
    np.testing.assert_allclose(floats, s / 255.0, atol=1e-7)


def test_save_load_identical(tmp_path):
    model = tiny((4, 4, 1))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = random_images((4, 4, 1), n=16)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "p.keras")
    loaded = keras.models.load_model(tmp_path / "p.keras")
    assert isinstance(loaded, PixelCNN) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.log_prob(x)), keras.ops.convert_to_numpy(model.log_prob(x))
    )
    np.testing.assert_array_equal(loaded.sample_uint8(2, 3).numpy(), model.sample_uint8(2, 3).numpy())
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    assert float(loaded.optimizer.learning_rate) == pytest.approx(3e-3)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) > 2
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_mixed_bfloat16_keeps_logits_and_likelihoods_float32():
    model = tiny((4, 4, 1), precision="mixed_bfloat16")
    model.compile()
    x = random_images((4, 4, 1), n=8)
    model.fit(x, batch_size=4, epochs=1, verbose=0)
    assert model(x).dtype == "float32"
    assert model.log_prob(x).dtype == tf.float32
    assert all(v.dtype == "float32" for v in model.trainable_variables)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 5, 5, 1), np.float32), "uint8"),
        (np.zeros((2, 6, 5, 1), np.uint8), "shape"),
        (np.zeros((5, 5, 1), np.uint8), "shape"),
    ],
)
def test_bad_images_are_a_clear_error(images, message):
    with pytest.raises(KerasGenError, match=message):
        tiny((5, 5, 1)).log_prob(images)


def test_rows_seen_above_bounds_the_receptive_field():
    """Sampling runs the network on the rows a pixel can see; no row above them matters."""
    model = tiny((9, 3, 1), num_layers=2, kernel_size=3, first_kernel_size=5)
    assert model.rows_seen_above == 2 + 2
    x = random_images(model.image_shape, n=1)
    base = flat_logits(model, x).reshape(9, 3, 256)
    changed = x.copy()
    changed[0, :4] = 255 - changed[0, :4]  # rows 0..3, more than 4 rows above row 8
    out = flat_logits(model, changed).reshape(9, 3, 256)
    np.testing.assert_allclose(out[8], base[8], atol=1e-5)
    assert np.abs(out[7] - base[7]).max() > 1e-4  # row 3 is within reach of row 7
    window = keras.ops.convert_to_numpy(model(x[:, 4:]))[0, -1]  # the network on rows 4..8 alone
    np.testing.assert_allclose(window.reshape(3, 256), base[8], atol=1e-5)


@pytest.mark.parametrize("seed", [-1, 2**31])
def test_seeds_out_of_range_are_a_clear_error(seed):
    with pytest.raises(KerasGenError, match="seed must be"):
        tiny((2, 2, 1)).sample_uint8(1, seed=seed)


# -- the Bernoulli head: binarised images ---------------------------------------------------------
def test_bernoulli_log_prob_is_the_bernoulli_likelihood_of_the_binarised_images():
    """log p = Σ log σ(±l) of the images binarised at 128, a grey image scoring as its
    binarisation; each sub-pixel's two values, 0 and 255, have probabilities that sum to one
    and every other level none."""
    model = tiny((4, 5, 3), head="bernoulli")
    x = random_images((4, 5, 3), n=3)
    binary = np.where(x >= 128, 255, 0).astype(np.uint8)
    log_odds = keras.ops.convert_to_numpy(model(x))
    assert log_odds.shape == (3, 4, 5, 3, 1)
    np.testing.assert_array_equal(log_odds, keras.ops.convert_to_numpy(model(binary)))
    l = log_odds[..., 0].astype(np.float64)
    expected = np.where(binary == 255, -np.log1p(np.exp(-l)), -np.log1p(np.exp(l)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.pixel_log_prob(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.log_prob(x)), expected.sum(axis=(1, 2, 3)),
                               rtol=1e-6)
    levels = keras.ops.convert_to_numpy(model.subpixel_logits(model(x)[:, 1, 2], None, 2))  # [3, 256]
    assert np.isfinite(levels[:, [0, 255]]).all() and np.isneginf(levels[:, 1:255]).all()
    np.testing.assert_allclose(np.exp(levels[:, [0, 255]].astype(np.float64)).sum(axis=1), 1.0, rtol=1e-6)
    model.compile()
    bits = model.evaluate(x, verbose=0, return_dict=True)["bits_per_dim"]
    assert bits == pytest.approx(-expected.sum() / 3 / (4 * 5 * 3 * math.log(2)), rel=1e-5)


def test_bernoulli_samples_and_completions_are_binary_and_drawn_from_the_conditionals():
    model = tiny((4, 4, 1), head="bernoulli")
    s = model.sample_uint8(3, seed=5).numpy()
    assert set(np.unique(s)) <= {0, 255}
    logits = np.stack([keras.ops.convert_to_numpy(model.subpixel_logits(model(s)[:, i, j], None, 0))
                       for i in range(4) for j in range(4)], axis=1)  # [3, 16, 256]
    for k in range(16):  # each sub-pixel is the draw from its conditional given the sample before it
        redraw = tf.random.stateless_categorical(logits[:, k], 1, seed=[5, k], dtype=tf.int32)[:, 0]
        np.testing.assert_array_equal(redraw.numpy(), s.reshape(3, -1)[:, k])
    x = random_images((4, 4, 1), n=3)
    known = np.arange(16).reshape(4, 4, 1) < 7
    completed = model.complete(x, known, seed=1).numpy()
    assert set(np.unique(completed)) <= {0, 255}
    np.testing.assert_array_equal(completed[:, known], np.where(x >= 128, 255, 0)[:, known])


def test_bernoulli_model_trains_saves_and_exports(tmp_path):
    from conftest import call_in_serving_process

    from keras_gen import export

    model = tiny((8, 8, 1), head="bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = digits8()
    before = float(np.mean(keras.ops.convert_to_numpy(model.log_prob(x))))
    model.fit(x, batch_size=32, epochs=3, verbose=0)
    assert float(np.mean(keras.ops.convert_to_numpy(model.log_prob(x)))) > before + 5  # nats per image
    model.save(tmp_path / "b.keras")
    loaded = keras.models.load_model(tmp_path / "b.keras")
    assert loaded.get_config()["head"] == "bernoulli" and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.log_prob(x[:4])),
                                  keras.ops.convert_to_numpy(model.log_prob(x[:4])))
    path = export.export(model, tmp_path / "serving", "binary")
    out, _ = call_in_serving_process(path, [("log_prob", {"images": x[:4]}),
                                          ("sample", {"batch_size": np.int32(2), "seed": np.int32(3)})], tmp_path)
    np.testing.assert_allclose(out["0/log_prob"], keras.ops.convert_to_numpy(model.log_prob(x[:4])), rtol=1e-5)
    np.testing.assert_array_equal(out["1/images"], model.sample_uint8(2, 3).numpy())


def test_an_unknown_head_is_a_one_line_error():
    with pytest.raises(KerasGenError, match="head must be one of categorical, bernoulli"):
        tiny(head="gaussian")


def test_the_likelihoods_of_several_models_do_not_warn_of_retracing(caplog):
    """Each model traces each likelihood once, but TensorFlow counts traces per source line of
    the traced Python function: the models' lambdas, one line for all, drew "5 out of the last
    11 calls ... triggered tf.function retracing" once a few models were used."""
    import logging

    models = [PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=1, first_kernel_size=3) for _ in range(4)]
    images = np.zeros((2, 4, 4, 1), np.uint8)
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for model in models:
            model.log_prob(images)
            model.pixel_log_prob(images)
    assert "retracing" not in caplog.text
