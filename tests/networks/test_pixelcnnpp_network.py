"""PixelCNN++'s network: each shifted convolution reads the window its docstring says, the
inputs are padded as documented, and the two-stream U-net (strides included) sees only
pixels strictly before each output pixel."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers import ConcatELU
from keras_gen.networks import pixelcnnpp


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)  # the same initial weights every run


def numpy_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def test_concat_elu_is_elu_of_x_and_of_minus_x_and_round_trips():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32) * 3
    layer = ConcatELU()
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, np.concatenate([numpy_elu(x), numpy_elu(-x)], axis=-1), rtol=1e-6, atol=1e-6)
    assert layer.compute_output_shape((None, 3, 4, 5)) == (None, 3, 4, 10)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(again, ConcatELU)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), out)


def receptive_windows(build, in_shape):
    """`reads[i, j, r, c]`: does output (i, j) read input (r, c)? (All-ones kernels, no bias,
    a one-hot input per position: exact, no cancellation.)"""
    h, w = in_shape
    inputs = keras.Input((h, w, 1))
    net = keras.Model(inputs, build(inputs))
    for layer in net.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            layer.kernel.assign(np.ones(layer.kernel.shape, np.float32))
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    one_hot = np.eye(h * w, dtype=np.float32).reshape(h * w, h, w, 1)
    out = keras.ops.convert_to_numpy(net(one_hot))[..., 0]  # [r*w + c, i, j]
    return np.transpose(out.reshape(h, w, *out.shape[1:]), (2, 3, 0, 1)) > 0


def test_shifted_convolutions_read_exactly_their_windows():
    h, w = 8, 8
    cases = {
        # name: (builder, output (i, j) reads input rows and columns in these ranges)
        "down 2x3": (lambda x: pixelcnnpp.down_shifted_conv(x, 1, "float32", "a", (2, 3)),
                     lambda i, j: (range(i - 1, i + 1), range(j - 1, j + 2))),
        "down-right 2x2": (lambda x: pixelcnnpp.down_right_shifted_conv(x, 1, "float32", "b", (2, 2)),
                           lambda i, j: (range(i - 1, i + 1), range(j - 1, j + 1))),
        "down 2x3 stride 2": (lambda x: pixelcnnpp.down_shifted_conv(x, 1, "float32", "c", (2, 3), strides=2),
                              lambda i, j: (range(2 * i - 1, 2 * i + 1), range(2 * j - 1, 2 * j + 2))),
        "down-right 2x2 stride 2": (
            lambda x: pixelcnnpp.down_right_shifted_conv(x, 1, "float32", "d", (2, 2), strides=2),
            lambda i, j: (range(2 * i - 1, 2 * i + 1), range(2 * j - 1, 2 * j + 1))),
        "shift down": (lambda x: pixelcnnpp.shift_down(x, "float32", "e"), lambda i, j: ([i - 1], [j])),
        "shift right": (lambda x: pixelcnnpp.shift_right(x, "float32", "f"), lambda i, j: ([i], [j - 1])),
    }
    for name, (build, window) in cases.items():
        reads = receptive_windows(build, (h, w))
        expected = np.zeros_like(reads)
        for i, j in np.ndindex(reads.shape[:2]):
            rows, cols = window(i, j)
            for r in rows:
                for c in cols:
                    if 0 <= r < h and 0 <= c < w:
                        expected[i, j, r, c] = True
        np.testing.assert_array_equal(reads, expected, err_msg=name)


@pytest.mark.parametrize("name, fine_columns", [("down", lambda j: range(2 * j - 1, 2 * j + 2)),
                                               ("down-right", lambda j: range(2 * j, 2 * j + 2))])
def test_upsampling_hands_a_coarse_pixel_only_to_fine_pixels_at_or_after_its_block(name, fine_columns):
    upsample = pixelcnnpp.down_shifted_upsample if name == "down" else pixelcnnpp.down_right_shifted_upsample
    reads = receptive_windows(lambda x: upsample(x, 1, "float32", "up"), (4, 4))  # [8, 8] <- [4, 4]
    assert reads.shape == (8, 8, 4, 4)
    for i, j in np.ndindex(4, 4):
        expected = np.zeros((8, 8), bool)
        for r in (2 * i, 2 * i + 1):
            for c in fine_columns(j):
                if 0 <= c < 8:
                    expected[r, c] = True
        np.testing.assert_array_equal(reads[:, :, i, j], expected, err_msg=f"coarse ({i}, {j})")


def test_network_inputs_mark_the_image_and_pad_below_and_right():
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 6, 5, 3)).astype(np.float32)
    x = pixelcnnpp.network_inputs(tf.constant(images), 5).numpy()
    assert x.shape == (2, 8, 8, 4)
    np.testing.assert_array_equal(x[:, :6, :5, :3], images)
    np.testing.assert_array_equal(x[:, :6, :5, 3], 1.0)
    assert not x[:, 6:].any() and not x[:, :, 5:].any()
    assert pixelcnnpp.network_inputs(tf.constant(images[:, :4]), 5).shape == (2, 4, 8, 4)  # already a multiple
    assert [pixelcnnpp.padded_size(n) for n in (1, 4, 5, 28, 30)] == [4, 4, 8, 28, 32]


def pixel_dependency(net, shape, labels=None, draws=2):
    """`dep[p, q]`: does the output at pixel p (raster order) change when every sub-pixel of
    pixel q changes? One batch per draw: a random image, and that image with pixel q
    replaced by other random values, for every q."""
    h, w, c = shape
    found = np.zeros((h * w, h * w), bool)
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        image = rng.uniform(-1, 1, size=(h * w, c)).astype(np.float32)
        batch = np.repeat(image[None], h * w + 1, axis=0)
        batch[np.arange(h * w), np.arange(h * w)] = rng.uniform(-1, 1, size=(h * w, c))  # image q: pixel q changed
        x = pixelcnnpp.network_inputs(tf.constant(batch.reshape(-1, h, w, c)), w)
        y = None if labels is None else tf.fill([h * w + 1], labels)
        out = net([x, y] if labels is not None else x, training=False).numpy()[:, :h, :w].reshape(h * w + 1, h * w, -1)
        # Outputs that do not read pixel q are computed from the same numbers: exactly equal.
        found |= (np.abs(out[:-1] - out[-1]).max(axis=-1) > 0).T  # [p, q]
    return found


def strictly_earlier(n):
    return np.tril(np.ones((n, n), bool), k=-1)


def unit_gain_weights(net, seed=0):
    """Every kernel redrawn from N(0, 1 / fan_in): no path starts attenuated (the residual
    branches start at a tenth of their input's scale, and a long chain of them can fall
    below float32's resolution), and causality must hold for any weights anyway."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kernel = layer.kernel
            fan_in = np.prod(kernel.shape) / kernel.shape[-1 if isinstance(layer, keras.layers.Conv2D) else -2]
            kernel.assign(rng.normal(0, 1 / np.sqrt(fan_in), size=kernel.shape).astype(np.float32))


@pytest.mark.parametrize("shape, classes, blocks", [((8, 8, 1), None, 1), ((8, 8, 3), None, 1),
                                                    ((6, 5, 3), None, 1), ((8, 8, 1), 3, 1), ((8, 8, 1), None, 0)])
def test_every_output_sees_only_pixels_strictly_before_it(shape, classes, blocks):
    """8x8 runs through both stride-2 levels (8 -> 4 -> 2); 6x5 is padded to 8x8 first."""
    h, w, c = shape
    net = pixelcnnpp.network(w, c, 8, blocks, 30, 0.0, "float32", num_classes=classes)
    earlier = strictly_earlier(h * w)
    for weights in ("initial", "unit gain"):
        if weights == "unit gain":
            unit_gain_weights(net)
        dep = pixel_dependency(net, shape, None if classes is None else 2)
        assert not (dep & ~earlier).any(), (weights, np.argwhere(dep & ~earlier)[:5].tolist())
        # ...and it does see its past: the pixel to the left, the one above, and (through
        # the coarse levels, given a block at each) every pixel two or more rows above.
        for i, j in np.ndindex(h, w):
            p = i * w + j
            assert j == 0 or dep[p, p - 1], (weights, i, j)
            assert i == 0 or dep[p, p - w], (weights, i, j)
            if weights == "unit gain" and blocks:
                assert dep[p, :max(i - 1, 0) * w].all(), (i, j)
