"""RowLSTM: the recurrence against numpy, its exact dependency set, any number of rows,
bfloat16, config round trip, bad arguments."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.layers import RowLSTM


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def paper_input_mask(k, features, units, colors):
    """The 1 x k type-B mask of K_is, per gate, from the paper's rule: columns left of the pixel
    are visible, the pixel itself only for input colour groups <= the unit's group."""
    mask = np.zeros((k, features, units))
    in_group = np.arange(features) * colors // features
    unit_group = np.arange(units) * colors // units
    mask[: k // 2] = 1.0
    mask[k // 2] = in_group[:, None] <= unit_group[None, :]
    return np.concatenate([mask] * 4, axis=-1)  # gates o, f, i, g share the mask


def row_conv(rows, kernel):
    """Zero-padded 1-D convolution along the width: rows [B, W, F], kernel [k, F, out]."""
    k = kernel.shape[0]
    padded = np.pad(rows, ((0, 0), (k // 2, k // 2), (0, 0)))
    width = rows.shape[1]
    return sum(padded[:, d:d + width] @ kernel[d] for d in range(k))


def numpy_row_lstm(x, input_kernel, state_kernel, bias, units, colors, gate_bias=None):
    """The paper's §3.1 recurrence, one row at a time, in float64."""
    x = x.astype(np.float64)
    batch, height, width, features = x.shape
    k_is = input_kernel[0].astype(np.float64) * paper_input_mask(input_kernel.shape[1], features, units, colors)
    h = np.zeros((batch, width, units))
    c = np.zeros((batch, width, units))
    outputs = []
    for i in range(height):
        z = row_conv(x[:, i], k_is) + row_conv(h, state_kernel.astype(np.float64)) + bias
        if gate_bias is not None:
            z = z + gate_bias[:, None, :]
        o, f, g_in, g = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(g_in) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize("features, units, colors, kernels", [(2, 3, 1, (3, 3)), (6, 6, 3, (3, 3)),
                                                               (3, 3, 1, (5, 1))])
def test_the_layer_computes_the_papers_recurrence(features, units, colors, kernels):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, features)).astype("float32")
    layer = RowLSTM(units, *kernels, color_channels=colors)
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=(4 * units,)).astype("float32"))  # every gate's bias matters
    gate_bias = rng.normal(size=(2, 4 * units)).astype("float32")
    weights = [numpy(w) for w in (layer.input_kernel, layer.state_kernel, layer.bias)]
    np.testing.assert_allclose(numpy(layer(x)), numpy_row_lstm(x, *weights, units, colors), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(layer(x, gate_bias=gate_bias)),
                               numpy_row_lstm(x, *weights, units, colors, gate_bias), rtol=1e-5, atol=1e-5)


def test_the_forget_gate_starts_open():
    layer = RowLSTM(4)
    layer.build((1, 2, 3, 2))
    np.testing.assert_array_equal(numpy(layer.bias), [0] * 4 + [1] * 4 + [0] * 8)  # o, f, i, g


def expected_dependency(height, width, features, units, colors, input_radius, state_radius):
    """`dep[out, in]` over (row, column, group) of units and input features, by the paper: the
    row's own inputs through the masked K_is, every row above within the triangle that K_ss
    widens by `state_radius` columns per row (and K_is by `input_radius` to the left)."""
    in_group = np.arange(features) * colors // features
    unit_group = np.arange(units) * colors // units
    dep = np.zeros((height, width, units, height, width, features), bool)
    for i in range(height):
        for j in range(width):
            dep[i, j, :, i, max(0, j - input_radius):j, :] = True
            dep[i, j, :, i, j, :] = in_group[None, :] <= unit_group[:, None]
            for above in range(i):
                d = i - above
                dep[i, j, :, above, max(0, j - d * state_radius - input_radius):j + d * state_radius + 1, :] = True
    return dep


@pytest.mark.parametrize("colors, kernels", [(1, (3, 3)), (3, (3, 3)), (1, (3, 5))])
def test_each_output_depends_on_exactly_the_papers_triangle(colors, kernels):
    height, width, features, units = 4, 7, 2 * colors, 2 * colors
    layer = RowLSTM(units, *kernels, color_channels=colors)
    # Two inputs (a gradient can vanish by chance at one, never at both) in one batch, and one
    # `batch_jacobian` (the layer mixes no examples): one trace of the Jacobian's loop.
    x = tf.Variable(np.stack([np.random.default_rng(draw).normal(size=(height, width, features))
                              for draw in range(2)]).astype("float32"))
    with tf.GradientTape() as tape:
        out = tf.reshape(layer(x), [2, -1])
    jac = tape.batch_jacobian(out, x).numpy()
    found = (np.abs(jac.reshape(2, height * width * units, height * width * features)) > 0).any(axis=0)
    expected = expected_dependency(height, width, features, units, colors, kernels[0] // 2, kernels[1] // 2)
    np.testing.assert_array_equal(found, expected.reshape(found.shape))


def test_any_number_of_rows_gives_the_same_rows():
    """The sampler runs the layer on rows 0..i only: those rows come out as on the whole image,
    also in a graph whose row count is unknown when traced."""
    layer = RowLSTM(4)
    x = np.random.default_rng(1).normal(size=(2, 6, 5, 3)).astype("float32")
    full = numpy(layer(x))
    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 5, 3], tf.float32)])
    for rows in range(1, 7):
        np.testing.assert_allclose(numpy(layer(x[:, :rows])), full[:, :rows], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(numpy(traced(x[:, :rows])), full[:, :rows], rtol=1e-6, atol=1e-6)


def test_mixed_bfloat16_keeps_float32_weights_and_stays_close_to_float32():
    x = np.random.default_rng(2).normal(size=(2, 12, 6, 4)).astype("float32")
    exact = RowLSTM(8)
    mixed = RowLSTM(8, dtype="mixed_bfloat16")
    exact.build(x.shape)
    mixed.build(x.shape)
    mixed.set_weights(exact.get_weights())
    out = mixed(x)
    assert out.dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in mixed.weights)
    # bfloat16 convolutions (3 significant digits), a float32 cell over 12 rows: no drift.
    np.testing.assert_allclose(numpy(tf.cast(out, tf.float32)), numpy(exact(x)), atol=3e-2)


def test_config_round_trip_gives_identical_outputs():
    layer = RowLSTM(6, input_kernel_size=5, state_kernel_size=1, color_channels=3, unit_forget_bias=False)
    x = np.random.default_rng(3).normal(size=(1, 3, 4, 3)).astype("float32")
    out = numpy(layer(x))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is RowLSTM and clone.get_config() == layer.get_config() and clone.built
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(numpy(clone(x)), out)


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 4, "color_channels": 3}, "multiple of color_channels"),
    ({"units": 4, "input_kernel_size": 2}, "input_kernel_size must be a positive odd"),
    ({"units": 4, "state_kernel_size": 0}, "state_kernel_size must be a positive odd"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(KerasGenError, match=message):
        RowLSTM(**kwargs)


def test_input_features_must_split_into_the_colour_groups():
    with pytest.raises(KerasGenError, match="input features 4 are not a multiple"):
        RowLSTM(3, color_channels=3)(np.zeros((1, 2, 2, 4), "float32"))
