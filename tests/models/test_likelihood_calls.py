"""The autoregressive likelihoods as users call them: in chunks of bounded memory, eagerly,
inside a `tf.function` or `Dataset.map` with the batch size unknown, and in mixed bfloat16
with the same figure everywhere (eager, traced, exported)."""
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.models import GatedPixelCNN, PixelCNN, autoregressive
from keras_gen.models.base import in_chunks
from keras_gen.seeds import MIN_TEMPERATURE


def images(n, shape=(6, 6, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def test_in_chunks_equals_one_call_for_any_batch_size_known_or_not():
    def fn(x, y):
        return tf.reduce_sum(x, axis=1) * y, tf.cast(tf.argmax(x, axis=1), tf.int32)

    x = tf.random.stateless_normal([23, 4], seed=[1, 2])
    y = tf.range(23, dtype=tf.float32)
    whole = fn(x, y)
    for chunk in (1, 5, 23, 50):
        parts = in_chunks(fn, (x, y), chunk, [(tf.float32, []), (tf.int32, [])])
        for a, b in zip(parts, whole):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    traced = tf.function(lambda x: in_chunks(lambda x: x * 2.0, (x,), 5, [(tf.float32, [4])]),
                         input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    np.testing.assert_array_equal(traced(x).numpy(), x.numpy() * 2.0)


def test_log_prob_in_chunks_equals_the_networks_sum_and_bounds_each_pass(monkeypatch):
    """250 images run as passes of at most LIKELIHOOD_CHUNK (a pass of 10,000 zoo-size images
    would need 67 GB); each image's figure is its own."""
    model = PixelCNN(image_shape=(6, 6, 1), filters=6, num_layers=1, first_kernel_size=3)
    x = images(250)
    passes = []
    network_call = type(model)._image_log_prob

    def counted(self, batch, labels=None, training=False):
        passes.append(batch.shape[0])
        return network_call(self, batch, labels, training)

    monkeypatch.setattr(type(model), "_image_log_prob", counted)
    lp = model.log_prob(x).numpy()
    assert passes and all(p is None or p <= autoregressive.LIKELIHOOD_CHUNK for p in passes)
    direct = tf.reduce_sum(model.pixel_log_prob_from(model(x[:7]), x[:7]), axis=[1, 2, 3]).numpy()
    np.testing.assert_allclose(lp[:7], direct, rtol=1e-5)
    np.testing.assert_allclose(model.pixel_log_prob(x).numpy().sum(axis=(1, 2, 3)), lp, rtol=1e-5)


def test_likelihoods_run_in_a_tf_function_and_dataset_map_with_the_batch_unknown():
    """They took `int(images.shape[0])`: a TypeError wherever the batch size was unknown."""
    model = PixelCNN(image_shape=(6, 6, 1), filters=6, num_layers=1, first_kernel_size=3)
    x = images(10)
    expected = model.log_prob(x).numpy()
    mapped = tf.data.Dataset.from_tensor_slices(x).batch(4).map(model.log_prob)
    np.testing.assert_allclose(np.concatenate(list(mapped.as_numpy_iterator())), expected, rtol=1e-6)
    spec = [tf.TensorSpec([None, 6, 6, 1], tf.uint8)]
    pixel = tf.function(model.pixel_log_prob, input_signature=spec)(x).numpy()
    np.testing.assert_allclose(pixel.sum(axis=(1, 2, 3)), expected, rtol=1e-5)

    conditional = GatedPixelCNN(image_shape=(6, 6, 1), filters=4, num_layers=1, num_classes=3)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    given = conditional.log_prob(x, labels).numpy()
    every = conditional.class_log_likelihoods(x).numpy()
    np.testing.assert_allclose(every[np.arange(10), labels], given, rtol=1e-5)
    traced = tf.function(conditional.class_log_likelihoods, input_signature=spec)(x).numpy()
    np.testing.assert_allclose(traced, every, rtol=1e-6)
    one_label = tf.function(lambda b: conditional.log_prob(b, 2), input_signature=spec)(x).numpy()
    np.testing.assert_allclose(one_label, every[:, 2], rtol=1e-5)
    probabilities, classified = tf.function(conditional.classify, input_signature=spec)(x)
    np.testing.assert_array_equal(classified.numpy(), every.argmax(axis=1))
    # Labels as [batch, 1], as fit takes them; a wrong count is still refused.
    np.testing.assert_allclose(conditional.log_prob(x, labels[:, None]).numpy(), given, rtol=1e-6)
    with pytest.raises(KerasGenError, match="labels must be an int or 10 ints"):
        conditional.log_prob(x, labels[:9])


def test_mixed_bfloat16_log_prob_is_the_same_eager_and_traced():
    """Eager execution rounds bfloat16 otherwise than the traced graph an export runs: the
    zoo's PixelCNN++ gave figures 4.4 nats per image apart. Python's figure is now the graph's."""
    model = GatedPixelCNN(image_shape=(8, 8, 1), filters=8, num_layers=2, precision="mixed_bfloat16")
    x = images(6, (8, 8, 1))
    eager = model.log_prob(x).numpy()
    traced = tf.function(model.log_prob, input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.uint8)])(x).numpy()
    np.testing.assert_array_equal(eager, traced)


@pytest.mark.parametrize("temperature", [1e-38, 1e-31, 0.0, -1.0, 1e31, float("nan"), True, "1"])
def test_temperatures_outside_the_float32_safe_range_are_refused(temperature):
    """T = 1e-38 overflowed the logits and drew level 256 (an InvalidArgumentError deep in a loop),
    1e-37 a wrong level without a word."""
    model = PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=1, first_kernel_size=3)
    with pytest.raises(KerasGenError, match="temperature must be a positive number from 1e-30 to 1e\\+30"):
        model.sample_uint8(2, 0, temperature=temperature)
    with pytest.raises(KerasGenError, match="temperature must be a positive number from 1e-30 to 1e\\+30"):
        model.complete(images(2, (4, 4, 1)), np.ones((4, 4, 1), bool), temperature=temperature)


def test_the_smallest_temperature_draws_the_most_likely_level():
    model = PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=1, first_kernel_size=3)
    logits_layer = model.network.get_layer("logits")  # levels far apart: an untrained net's are near-equal
    kernel, bias = logits_layer.get_weights()
    rng = np.random.default_rng(0)
    logits_layer.set_weights([rng.normal(size=kernel.shape).astype("float32"), 5 * rng.normal(size=bias.shape).astype("float32")])
    known = np.zeros((4, 4, 1), bool)
    known[:, :, 0] = True
    known[3, 3, 0] = False  # only the last pixel drawn, given all the others
    x = images(8, (4, 4, 1))
    drawn = model.complete(x, known, seed=3, temperature=MIN_TEMPERATURE).numpy()[:, 3, 3, 0]
    logits = model(x).numpy()[:, 3, 3, 0]
    np.testing.assert_array_equal(drawn, logits.argmax(axis=-1))


@pytest.mark.parametrize("mask", [None, "False", np.full((4, 4, 1), 0.3, np.float32), np.ones((4, 4, 1), np.int64),
                                  [[1]]])
def test_a_mask_that_is_not_bool_is_refused(mask):
    """`np.asarray(mask, bool)` took None as all unknown, 0.3 and any string as known."""
    model = PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=1, first_kernel_size=3)
    with pytest.raises(KerasGenError, match="mask must be bool"):
        model.complete(images(2, (4, 4, 1)), mask)
    model.complete(images(2, (4, 4, 1)), tf.ones([4, 4, 1], tf.bool))  # a bool tensor is a mask
