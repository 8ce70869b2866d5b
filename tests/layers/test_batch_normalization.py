"""BatchNormalization: Keras' batch norm with a fused training kernel; the same numbers, weights and names."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers import BatchNormalization


def pair(shape, dtype="float32", **kwargs):
    """Keras' layer and ours, built alike, with the same non-trivial gamma and beta."""
    rng = np.random.default_rng(1)
    gamma = rng.normal(1.0, 0.3, size=shape[-1]).astype("float32")
    beta = rng.normal(size=shape[-1]).astype("float32")
    layers = [keras.layers.BatchNormalization(dtype=dtype, **kwargs), BatchNormalization(dtype=dtype, **kwargs)]
    for layer in layers:
        layer.build(shape)
        if layer.scale:
            layer.gamma.assign(gamma)
        if layer.center:
            layer.beta.assign(beta)
    return layers


def training_step(layer, x, upstream):
    """Outputs, gradients (input, then each trainable weight) and moving statistics after one
    training call, traced as `fit` traces it."""
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        return y, tape.gradient(loss, [x, *layer.trainable_weights])

    y, grads = step(x)
    return [np.asarray(y, np.float32), *(g.numpy() for g in grads), layer.moving_mean.numpy(),
            layer.moving_variance.numpy()]


def ops_of(layer, x, training=True, mask=None):
    graph = tf.function(lambda x: layer(x, training=training, mask=mask)).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("shape", [(16, 7, 7, 8), (32, 50), (1, 6)])
@pytest.mark.parametrize("kwargs", [{}, {"center": False, "scale": False, "momentum": 0.8, "epsilon": 1e-4}])
def test_training_equals_keras_to_float32_rounding(shape, kwargs):
    """Outputs, the input's and weights' gradients and both moving statistics (a batch of one
    included, whose variance is 0) equal `keras.layers.BatchNormalization`'s."""
    x = tf.random.stateless_normal(shape, [1, 2]) * 2.0 + 3.0
    upstream = tf.random.stateless_normal(shape, [3, 4])
    theirs, ours = pair(shape, **kwargs)
    assert "FusedBatchNormV3" in ops_of(ours, x) and "FusedBatchNormV3" not in ops_of(theirs, x)
    for expected, got in zip(training_step(theirs, x, upstream), training_step(ours, x, upstream)):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(expected).max()))


def test_mixed_bfloat16_gives_bfloat16_outputs_equal_to_keras():
    """Under mixed_bfloat16 the input is bfloat16 and the statistics float32 in both layers:
    outputs equal to the bfloat16 rounding, gradients and statistics to float32 rounding."""
    shape = (16, 7, 7, 8)
    x = tf.cast(tf.random.stateless_normal(shape, [1, 2]) * 2.0 + 3.0, tf.bfloat16)
    upstream = tf.random.stateless_normal(shape, [3, 4])
    theirs, ours = pair(shape, dtype="mixed_bfloat16")
    expected, got = training_step(theirs, x, upstream), training_step(ours, x, upstream)
    assert ours(x, training=True).dtype == tf.bfloat16
    bf16_step = 2.0 ** -7 * np.abs(expected[0]).max()
    np.testing.assert_allclose(got[0], expected[0], atol=bf16_step)
    for e, g in zip(expected[1:], got[1:]):
        np.testing.assert_allclose(g, e, rtol=1e-2, atol=1e-2 * np.abs(e).max())


def test_inference_and_uncovered_cases_take_keras_path():
    """Inference uses the moving statistics (Keras' path, equal outputs); a mask, synchronized
    statistics, another axis or rank, float16 and a tiny epsilon fall back to Keras' ops."""
    x = tf.random.stateless_normal((4, 5, 6, 3), [1, 2])
    theirs, ours = pair(x.shape)
    theirs.moving_mean.assign([0.5, -1.0, 2.0])
    ours.moving_mean.assign([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(ours(x, training=False).numpy(), theirs(x, training=False).numpy())
    assert "FusedBatchNormV3" not in ops_of(ours, x, training=False)

    rank3 = tf.random.stateless_normal((4, 5, 3), [1, 2])
    fallbacks = [
        (BatchNormalization(synchronized=True), x, None),
        (BatchNormalization(axis=1), x, None),
        (BatchNormalization(), rank3, None),
        (BatchNormalization(), rank3, tf.ones((4, 5), bool)),
        (BatchNormalization(dtype="float16"), tf.cast(x, tf.float16), None),
        (BatchNormalization(epsilon=1e-6), x, None),
    ]
    for layer, inputs, mask in fallbacks:
        assert "FusedBatchNormV3" not in ops_of(layer, inputs, mask=mask), layer.get_config()


def test_second_derivatives_equal_keras():
    """A penalty on a gradient (WGAN-GP, DRAGAN) differentiates the layer twice."""
    shape = (8, 4, 4, 3)
    x = tf.random.stateless_normal(shape, [5, 6])
    upstream = tf.random.stateless_normal(shape, [7, 8])
    results = []
    for layer in pair(shape):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(layer(x, training=True) ** 3 * upstream)
            penalty = tf.reduce_sum(inner.gradient(loss, x) ** 2)
        results.append(outer.gradient(penalty, [x, layer.gamma]))
    for expected, got in zip(*results):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_weights_of_keras_layer_load_and_keras_file_round_trips(tmp_path):
    """The same auto-generated names and weights as Keras' layer: a model saved with Keras'
    layer loads into one built with ours; ours survives a `.keras` round trip."""
    def model(norm):
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), norm()])

    x = np.random.default_rng(0).normal(size=(10, 6)).astype("float32")
    theirs = model(keras.layers.BatchNormalization)
    theirs(x, training=True)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    ours = model(BatchNormalization)
    assert ours.layers[-1].name.startswith("batch_normalization")
    ours.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())

    ours.save(tmp_path / "ours.keras")
    loaded = keras.models.load_model(tmp_path / "ours.keras")
    assert type(loaded.layers[-1]) is BatchNormalization
    np.testing.assert_array_equal(loaded(x).numpy(), ours(x).numpy())
