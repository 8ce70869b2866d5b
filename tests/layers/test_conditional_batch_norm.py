"""ConditionalBatchNormalization: plain batch norm at initialisation, then per-condition gain and bias."""
import keras
import numpy as np

from keras_gen.layers import ConditionalBatchNormalization


def test_starts_as_batch_norm_then_applies_each_examples_gain_and_bias(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4, 4, 3)).astype("float32") * 3 + 1
    c = np.eye(2, dtype="float32")[[0, 1, 0, 1, 0, 1]]
    layer = ConditionalBatchNormalization(epsilon=1e-5)
    out = keras.ops.convert_to_numpy(layer([x, c], training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), atol=1e-4)

    gain = np.array([[0.5, 0.0, -1.0], [2.0, 1.0, 0.0]], "float32")  # condition -> gain per feature
    bias = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]], "float32")
    layer.gain.kernel.assign(gain)
    layer.bias.kernel.assign(bias)
    out = keras.ops.convert_to_numpy(layer([x, c], training=True))
    normalised = (x - mean) / np.sqrt(var + 1e-5)
    expected = normalised * (1 + (c @ gain)[:, None, None, :]) + (c @ bias)[:, None, None, :]
    np.testing.assert_allclose(out, expected, atol=1e-4)

    # In a model, saved and loaded: identical outputs in inference mode.
    xi, ci = keras.Input((4, 4, 3)), keras.Input((2,))
    model = keras.Model([xi, ci], ConditionalBatchNormalization()([xi, ci]))
    model([x, c], training=True)
    model.layers[-1].gain.kernel.assign(gain)
    model.save(tmp_path / "cbn.keras")
    loaded = keras.models.load_model(tmp_path / "cbn.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded([x, c])), keras.ops.convert_to_numpy(model([x, c])))
