"""Gated PixelCNN: causal from initialisation, conditional on its labels, Bayes classifier,
sampling with temperature, completion, saving and export (the autoregressive base's
conditional paths)."""
import keras
import numpy as np
import pytest

from conftest import call_in_serving_process
from keras_gen import data
from keras_gen.errors import KerasGenError
from keras_gen.models import GatedPixelCNN


def tiny(shape=(6, 6, 1), **kwargs):
    kwargs.setdefault("filters", 8 * shape[-1])
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("kernel_size", 3)
    kwargs.setdefault("first_kernel_size", 3)
    return GatedPixelCNN(image_shape=shape, **kwargs)


def random_images(shape, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("shape, classes", [((5, 5, 1), None), ((3, 3, 3), None), ((5, 5, 1), 3)])
def test_changing_subpixel_k_never_changes_an_earlier_distribution(shape, classes):
    model = tiny(shape, num_classes=classes)
    x = random_images(shape, n=1, seed=1)
    labels = None if classes is None else [2]
    inputs = (lambda images: [images, np.array(labels, np.int32)]) if classes else (lambda images: images)
    base = numpy(model(inputs(x))).reshape(1, -1, 256)
    later_changed = False
    for k in range(int(np.prod(shape))):
        changed = x.copy().reshape(1, -1)
        changed[0, k] = (int(changed[0, k]) + 128) % 256
        diff = np.abs(numpy(model(inputs(changed.reshape(x.shape)))).reshape(1, -1, 256) - base).max(axis=-1)[0]
        assert diff[: k + 1].max() <= 1e-5, f"sub-pixel {k} leaks into {int(np.argmax(diff[:k + 1]))}"
        later_changed |= bool(diff[k + 1:].max(initial=0.0) > 1e-4)
    assert later_changed


@pytest.mark.parametrize("pixel", [(27, 27), (27, 0), (14, 13), (1, 0), (0, 27)])
def test_the_default_depth_sees_every_earlier_pixel_of_a_28x28_image_and_no_later_one(pixel):
    """The issue's test of the receptive field, at the default depth (7x7 first layer, 12
    gated layers of 5x5; fewer filters, which do not change the field): the logits at `pixel`
    have a non-zero gradient with respect to every earlier pixel in raster order (no blind
    spot, even 27 columns to the right in the row above), and zero for the pixel itself and
    every later one."""
    import tensorflow as tf

    model = GatedPixelCNN(filters=8)
    assert (model.num_layers, model.kernel_size, model.first_kernel_size) == (12, 5, 7)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, 28, 28, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model.network(x)[0, pixel[0], pixel[1]]
        # The sum of the logits and their squares: no value of the pixel's input cancels out.
        objective = tf.reduce_sum(logits) + tf.reduce_sum(tf.square(logits))
    reach = np.abs(numpy(tape.gradient(objective, x))).reshape(-1) > 0
    k = pixel[0] * 28 + pixel[1]
    assert reach[:k].all(), f"pixel {pixel} misses earlier pixels {np.flatnonzero(~reach[:k])[:10]}"
    assert not reach[k:].any()


def test_labels_condition_the_likelihood_and_classify_is_bayes_rule():
    model = tiny(num_classes=3)
    x = random_images((6, 6, 1), n=4)
    per_class = np.stack([numpy(model.log_prob(x, labels=k)) for k in range(3)], axis=1)
    assert np.abs(per_class[:, 0] - per_class[:, 1]).max() > 1e-3  # the label reaches the network
    np.testing.assert_allclose(numpy(model.class_log_likelihoods(x)), per_class, rtol=1e-6)
    probabilities, labels = model.classify(x)
    np.testing.assert_allclose(numpy(probabilities).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(numpy(labels), per_class.argmax(axis=1))
    with pytest.raises(KerasGenError, match="conditional: give labels"):
        model.log_prob(x)
    with pytest.raises(KerasGenError, match="labels must be in 0..2"):
        model.log_prob(x, labels=3)
    with pytest.raises(KerasGenError, match="unconditional"):
        tiny().log_prob(x, labels=1)


def test_sampling_is_seeded_labelled_and_tempered():
    model = tiny(num_classes=3)
    a = numpy(model.sample_uint8(4, seed=3, labels=[0, 1, 2, 0]))
    np.testing.assert_array_equal(a, numpy(model.sample_uint8(4, seed=3, labels=[0, 1, 2, 0])))
    assert a.dtype == np.uint8 and a.shape == (4, 6, 6, 1)
    assert not np.array_equal(a, numpy(model.sample_uint8(4, seed=3, labels=[1, 2, 0, 1])))
    # Near zero temperature every draw is the most probable value: the seed stops mattering.
    cold = [numpy(model.sample_uint8(2, seed=s, labels=1, temperature=1e-7)) for s in (0, 7)]
    np.testing.assert_array_equal(cold[0], cold[1])
    for bad in (0, -1.0, float("nan"), "hot", True):
        with pytest.raises(KerasGenError, match="temperature must be a positive number"):
            model.sample_uint8(1, temperature=bad)


def test_completion_keeps_known_subpixels_and_conditions_on_them():
    model = tiny()
    x = random_images((6, 6, 1), n=2, seed=4)
    top = np.zeros((6, 6, 1), bool)
    top[:3] = True  # the top half is known
    done = numpy(model.complete(x, top, seed=1))
    np.testing.assert_array_equal(done[:, :3], x[:, :3])
    # Nothing known: exactly the sampler's images for that seed.
    nothing = numpy(model.complete(x, np.zeros_like(top), seed=1))
    np.testing.assert_array_equal(nothing, numpy(model.sample_uint8(2, seed=1)))
    # Everything known: the images back.
    np.testing.assert_array_equal(numpy(model.complete(x, np.ones_like(top), seed=1)), x)
    # Another known top half, same seed: the drawn bottom half follows what it conditions on.
    other = x.copy()
    other[:, :3] = 255 - other[:, :3]
    assert not np.array_equal(numpy(model.complete(other, top, seed=1))[:, 3:], done[:, 3:])
    with pytest.raises(KerasGenError, match="does not broadcast"):
        model.complete(x, np.ones((5, 5, 1), bool))


def test_fit_on_labelled_digits_lowers_the_nll_and_needs_labels():
    x, y = data.load_arrays("digits", "train")
    model = tiny((8, 8, 1), num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x[:256], y[:256], batch_size=64, epochs=3, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["bits_per_dim"][-1] < history["bits_per_dim"][0]
    with pytest.raises(KerasGenError, match="train it on \\(images, labels\\)"):
        model.fit(x[:64], batch_size=32, epochs=1, verbose=0)


def test_save_load_and_export_give_identical_outputs(tmp_path):
    from keras_gen import export

    model = tiny(num_classes=3)
    model.compile()
    x = random_images((6, 6, 1), n=3)
    labels = np.array([0, 2, 1], np.int32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, GatedPixelCNN) and loaded.num_classes == 3
    np.testing.assert_array_equal(numpy(loaded.log_prob(x, labels)), numpy(model.log_prob(x, labels)))
    np.testing.assert_array_equal(numpy(loaded.sample_uint8(3, 5, labels)), numpy(model.sample_uint8(3, 5, labels)))

    path = export.export(model, tmp_path / "export", "gated")
    mask = np.zeros(x.shape, bool)
    mask[:, :2] = True
    out, _ = call_in_serving_process(path, [
        ("log_prob", {"images": x, "labels": labels}),
        ("sample", {"labels": labels, "seed": np.int32(5)}),
        ("complete", {"images": x, "mask": mask, "seed": np.int32(2), "labels": labels}),
        ("classify", {"images": x}),
    ], tmp_path)
    np.testing.assert_allclose(out["0/log_prob"], numpy(model.log_prob(x, labels)), rtol=1e-6)
    np.testing.assert_array_equal(out["1/images"], numpy(model.sample_uint8(3, 5, labels)))
    np.testing.assert_array_equal(out["2/images"], numpy(model.complete(x, mask, 2, labels)))
    np.testing.assert_array_equal(out["3/label"], numpy(model.classify(x)[1]))


def test_bad_constructor_arguments_are_one_line_errors():
    for kwargs, message in [({"kernel_size": 4}, "odd"), ({"num_classes": 1}, "num_classes"),
                            ({"filters": 0}, "filters"), ({"filters": 8}, "multiple")]:
        with pytest.raises(KerasGenError, match=message):
            tiny((5, 5, 3), **kwargs) if kwargs.get("filters") == 8 else tiny(**kwargs)
