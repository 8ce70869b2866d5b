"""DiagonalBiLSTM: skew and unskew, the two recurrences against numpy, its exact dependency
set (no blind spot, nothing later), any number of rows, bfloat16, config round trip, bad
arguments."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.errors import KerasGenError
from keras_gen.layers import DiagonalBiLSTM
from keras_gen.layers.diagonal_bilstm import skew, unskew


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def paper_input_mask(features, units, colors):
    """The 1x1 type-B mask, per gate: a unit of colour group g sees input groups <= g."""
    in_group = np.arange(features) * colors // features
    unit_group = np.arange(units) * colors // units
    mask = (in_group[:, None] <= unit_group[None, :]).astype(np.float64)
    return np.concatenate([mask] * 4, axis=-1)


def numpy_diagonal_lstm(x, input_kernel, state_kernel, bias, gate_bias=None):
    """§3.2's recurrence without the skew, in float64: the state at (i, j) from the states at
    (i - 1, j) (above, K_ss row 0) and (i, j - 1) (left, K_ss row 1), the cell carried from
    (i, j - 1). Both precede (i, j) in raster order, so a raster loop computes it."""
    batch, height, width, _ = x.shape
    units = state_kernel.shape[1]
    h = np.zeros((batch, height + 1, width + 1, units))  # a zero row above and column to the left
    c = np.zeros_like(h)
    for i in range(height):
        for j in range(width):
            z = x[:, i, j] @ input_kernel + bias + h[:, i, j + 1] @ state_kernel[0] + h[:, i + 1, j] @ state_kernel[1]
            if gate_bias is not None:
                z = z + gate_bias
            o, f, g_in, g = np.split(z, 4, axis=-1)
            c[:, i + 1, j + 1] = sigmoid(f) * c[:, i + 1, j] + sigmoid(g_in) * np.tanh(g)
            h[:, i + 1, j + 1] = sigmoid(o) * np.tanh(c[:, i + 1, j + 1])
    return h[:, 1:, 1:]


def numpy_layer(layer, x, colors, gate_bias=None):
    x = x.astype(np.float64)
    weights = {w.path.split("/")[-1]: numpy(w).astype(np.float64) for w in layer.weights}
    features, units = x.shape[-1], layer.units
    forward = numpy_diagonal_lstm(x, weights["forward_input_kernel"] * paper_input_mask(features, units, colors),
                                  weights["forward_state_kernel"], weights["forward_bias"], gate_bias)
    backward = numpy_diagonal_lstm(x[:, :, ::-1], weights["backward_input_kernel"], weights["backward_state_kernel"],
                                   weights["backward_bias"], gate_bias)[:, :, ::-1]
    shifted = np.concatenate([np.zeros_like(backward[:, :1]), backward[:, :-1]], axis=1)  # row i takes row i - 1
    return forward + shifted


def scrambled(layer, seed=0):
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
    return layer


def test_skew_shifts_row_i_right_by_i_and_unskew_inverts_it():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) + 1
    skewed = numpy(skew(tf.constant(x)))
    assert skewed.shape == (2, 3, 6, 2)
    inside = np.zeros((3, 6), bool)
    for i, j in np.ndindex(3, 4):
        np.testing.assert_array_equal(skewed[:, i, i + j], x[:, i, j])
        inside[i, i + j] = True
    np.testing.assert_array_equal(inside, [[1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
    assert (skewed[:, ~inside] == 0).all()  # every other position is zero
    np.testing.assert_array_equal(numpy(unskew(tf.constant(skewed), 4)), x)


@pytest.mark.parametrize("features, units, colors, shape", [(2, 3, 1, (4, 5)), (6, 6, 3, (3, 4)), (3, 2, 1, (5, 2))])
def test_the_layer_computes_the_papers_two_recurrences(features, units, colors, shape):
    layer = DiagonalBiLSTM(units, color_channels=colors)
    x = np.random.default_rng(1).normal(size=(2, *shape, features)).astype(np.float32)
    layer.build(x.shape)
    scrambled(layer)
    gate_bias = np.random.default_rng(2).normal(size=(2, 4 * units)).astype(np.float32)
    for bias in (None, gate_bias):
        got = numpy(layer(x, gate_bias=bias))
        np.testing.assert_allclose(got, numpy_layer(layer, x, colors, bias), rtol=1e-4, atol=1e-5)


def layer_dependency(layer, shape, features):
    """`dep[i, j, u, i2, j2, f]`: a nonzero gradient of output (i, j, unit u) w.r.t. input
    (i2, j2, feature f), the union over two random inputs."""
    found = np.zeros((*shape, layer.units, *shape, features), bool)
    for draw in range(2):
        x = tf.Variable(np.random.default_rng(draw).normal(size=(1, *shape, features)).astype(np.float32))
        with tf.GradientTape(persistent=True) as tape:
            y = layer(x)
            outputs = {index: y[(0, *index)] for index in np.ndindex(*shape, layer.units)}
        for index, output in outputs.items():  # (pfor's jacobian of a scan aborts the process)
            found[index] |= np.abs(tape.gradient(output, x).numpy()[0]) > 0
    return found


@pytest.mark.parametrize("colors, features, units", [(1, 2, 2), (3, 3, 3)])
def test_each_output_sees_every_pixel_before_it_and_nothing_after(colors, features, units):
    """Forward: (i', j') with i' <= i and j' <= j, at (i, j) itself only input groups <= the
    unit's; backward, shifted: every (i', j') with i' < i and j' >= j. Their union is every
    earlier pixel (rows above in full, the row to the left) and the pixel's own earlier
    colour groups: no blind spot, and nothing later."""
    shape = (4, 5)
    layer = scrambled(DiagonalBiLSTM(units, color_channels=colors))
    layer.build((1, *shape, features))
    scrambled(layer)
    found = layer_dependency(layer, shape, features)
    in_group = np.arange(features) * colors // features
    unit_group = np.arange(units) * colors // units
    expected = np.zeros_like(found)
    for i, j, i2, j2 in np.ndindex(*shape, *shape):
        if (i2, j2) < (i, j):
            expected[i, j, :, i2, j2, :] = True  # every earlier pixel, all its features
        elif (i2, j2) == (i, j):
            expected[i, j, :, i2, j2, :] = in_group[None, :] <= unit_group[:, None]
    np.testing.assert_array_equal(found, expected)


def test_any_number_of_rows_gives_the_rows_of_the_whole_map():
    layer = scrambled(DiagonalBiLSTM(4))
    x = np.random.default_rng(3).normal(size=(2, 6, 5, 2)).astype(np.float32)
    layer.build(x.shape)
    scrambled(layer)
    whole = numpy(layer(x))
    for rows in (1, 3):  # an output row never depends on rows below it
        np.testing.assert_allclose(numpy(layer(x[:, :rows])), whole[:, :rows], rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16_keeps_the_recurrence_in_float32_and_returns_the_compute_dtype():
    layer = DiagonalBiLSTM(4, dtype="mixed_bfloat16")
    x = np.random.default_rng(4).normal(size=(1, 3, 4, 2)).astype(np.float32)
    y = layer(x)
    assert y.dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in layer.weights)
    reference = DiagonalBiLSTM(4)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(numpy(tf.cast(y, tf.float32)), numpy(reference(x)), atol=3e-2)


def test_config_round_trip_and_saved_weights(tmp_path):
    layer = DiagonalBiLSTM(6, color_channels=3, unit_forget_bias=False, name="diag")
    x = np.random.default_rng(5).normal(size=(1, 3, 3, 6)).astype(np.float32)
    inputs = keras.Input((None, 3, 6))
    model = keras.Model(inputs, layer(inputs))
    scrambled(layer)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(model(x)))
    again = DiagonalBiLSTM.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_forget_gates_start_at_one():
    layer = DiagonalBiLSTM(3)
    layer.build((1, 2, 2, 2))
    for direction in DiagonalBiLSTM.DIRECTIONS:
        bias = numpy(layer.biases[direction])
        np.testing.assert_array_equal(bias[3:6], 1.0)
        assert not bias[:3].any() and not bias[6:].any()


@pytest.mark.parametrize("kwargs, match", [({"units": 0}, "positive multiple"),
                                           ({"units": 4, "color_channels": 3}, "positive multiple")])
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(KerasGenError, match=match):
        DiagonalBiLSTM(**kwargs)


def test_input_features_must_match_the_colour_groups():
    with pytest.raises(KerasGenError, match="not a multiple"):
        DiagonalBiLSTM(3, color_channels=3)(np.zeros((1, 2, 2, 4), np.float32))
