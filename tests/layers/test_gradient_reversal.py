"""GradientReversal: identity forward, -lambda times the upstream gradient backward, a lambda
that changes without retracing, bfloat16 compute and a .keras round trip."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.layers import GradientReversal


def _inputs(seed=0, shape=(4, 3, 5)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_forward_is_the_identity():
    x = _inputs()
    layer = GradientReversal(0.7)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    assert layer(x).dtype == tf.float32 and layer.compute_output_shape((None, 3, 5)) == (None, 3, 5)


def test_gradient_is_minus_lambda_times_upstream_and_lambda_changes_without_retracing():
    layer = GradientReversal(1.0)
    x = tf.constant(_inputs(1))
    upstream = tf.constant(_inputs(2))  # the gradient arriving from above: d(sum(out * upstream))/d out
    traces = []

    @tf.function
    def input_gradient(x, upstream):
        traces.append(1)  # Python side effect: runs once per trace, not per call
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
        return tape.gradient(out, x, output_gradients=upstream)

    for lambda_ in (1.0, 0.25, -2.0, 0.0):
        layer.lambda_ = lambda_
        grad = input_gradient(x, upstream).numpy()
        np.testing.assert_allclose(grad, -lambda_ * upstream.numpy(), rtol=1e-6, atol=0)
    assert len(traces) == 1
    assert layer.lambda_ == 0.0 and not layer.trainable_weights and len(layer.non_trainable_weights) == 1


def test_gradient_reaches_the_layers_below_reversed_in_a_model():
    # A dense layer below the reversal gets -lambda times the gradient it would get without it.
    dense = keras.layers.Dense(2, kernel_initializer="ones")
    reversal = GradientReversal(0.5)
    x = tf.constant(_inputs(3, (6, 3)))
    with tf.GradientTape(persistent=True) as tape:
        plain = tf.reduce_sum(tf.square(dense(x)))
        reversed_ = tf.reduce_sum(tf.square(reversal(dense(x))))
    np.testing.assert_allclose(tape.gradient(reversed_, dense.kernel), -0.5 * tape.gradient(plain, dense.kernel),
                               rtol=1e-6)


def test_mixed_bfloat16_computes_in_bfloat16_with_lambda_kept_in_float32():
    layer = GradientReversal(0.5, dtype="mixed_bfloat16")
    # Values exactly representable in bfloat16 (8 significant bits), so the checks are exact.
    x = tf.constant([[1.0, -2.5, 0.375], [4.0, 0.0, -1.25]])
    upstream = tf.constant([[2.0, -1.0, 0.5], [3.0, 6.0, -8.0]], tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
    assert out.dtype == tf.bfloat16 and layer.lambda_variable.dtype == "float32"
    np.testing.assert_array_equal(tf.cast(out, tf.float32).numpy(), x.numpy())
    grad = tape.gradient(out, x, output_gradients=upstream)
    assert grad.dtype == tf.float32  # the gradient of the cast back to the float32 input
    np.testing.assert_array_equal(grad.numpy(), -0.5 * tf.cast(upstream, tf.float32).numpy())


def test_keras_round_trip_keeps_lambda(tmp_path):
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4)(inputs)
    outputs = keras.layers.Dense(1)(GradientReversal(1.0, name="reversal")(hidden))
    model = keras.Model(inputs, outputs)
    model.get_layer("reversal").lambda_ = 0.375  # set after construction, as a ramp would
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("reversal")
    assert isinstance(layer, GradientReversal) and layer.lambda_ == 0.375
    assert layer.get_config()["lambda_"] == 0.375
    x = tf.constant(_inputs(4, (5, 3)))
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    # The loaded layer's gradient uses the saved lambda.
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
    np.testing.assert_allclose(tape.gradient(out, x).numpy(), -0.375 * np.ones((5, 3)), rtol=1e-6)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1", True, None])
def test_bad_lambda_is_a_clear_error(value):
    with pytest.raises(KerasGenError, match="finite number"):
        GradientReversal(value)
    layer = GradientReversal(1.0)
    with pytest.raises(KerasGenError, match="finite number"):
        layer.lambda_ = value
    assert layer.lambda_ == 1.0
