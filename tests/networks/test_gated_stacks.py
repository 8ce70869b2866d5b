"""The gated stacks see every earlier sub-pixel (no blind spot) and nothing later."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.networks import gated_pixelcnn, pixelcnn


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)  # the same initial weights every run


def dependency(net, shape, labels=None, draws=4):
    """`dep[k, m]`: does output sub-pixel k (raster order) depend on input sub-pixel m?

    The union over a few random images: at one image a ReLU can zero every path from an
    input (a zero gradient there), never at all of them. The images are one batch and one
    `batch_jacobian` (each of the networks' outputs reads its own image only): one trace of
    the Jacobian's loop instead of one per image.
    """
    h, w, c = shape
    readout = tf.constant(np.random.default_rng(1).normal(size=(256,)).astype(np.float32))
    images = tf.Variable(np.stack([np.random.default_rng(draw).uniform(-1, 1, size=(h, w, c))
                                   for draw in range(draws)]).astype(np.float32))
    with tf.GradientTape() as tape:
        out = net([images, tf.repeat(labels, draws)] if labels is not None else images, training=False)
        out = tf.reshape(out, [draws, h * w * c, -1])
        scalar_per_subpixel = tf.linalg.matvec(out, readout[: out.shape[-1]])  # [draws, H*W*C]
    jac = tape.batch_jacobian(scalar_per_subpixel, images)  # [draws, H*W*C, H, W, C]
    return (np.abs(jac.numpy().reshape(draws, h * w * c, h * w * c)) > 0).any(axis=0)


def earlier(n):
    return np.tril(np.ones((n, n), bool), k=-1)  # m < k


@pytest.mark.parametrize("channels", [1, 3])
def test_every_earlier_subpixel_and_nothing_later(channels):
    shape = (5, 5, channels)
    # Reach: rows 3//2 + 1 + 3 = 5 >= 4, columns 1 + 3 = 4 >= 4: the whole past of a 5x5 image.
    net = gated_pixelcnn.network(shape, 8 * channels, 3, 3, 3, channels * 256, "float32")
    assert gated_pixelcnn.vertical_reach(3, 3, 3) == 5
    np.testing.assert_array_equal(dependency(net, shape), earlier(5 * 5 * channels))


def test_conditional_network_is_causal_too():
    shape = (5, 5, 1)
    net = gated_pixelcnn.network(shape, 8, 3, 3, 3, 256, "float32", num_classes=3)
    np.testing.assert_array_equal(dependency(net, shape, labels=tf.constant([2])), earlier(25))


def test_a_pixel_causal_head_sees_no_part_of_its_own_pixel():
    shape = (5, 5, 3)
    net = gated_pixelcnn.network(shape, 8, 4, 3, 3, 30, "float32", subpixel_causal=False)
    h, w, c = shape
    images = tf.Variable(np.stack([np.random.default_rng(draw).uniform(-1, 1, size=(h, w, c))
                                   for draw in range(4)]).astype(np.float32))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(tf.reshape(net(images), [4, h * w, 30]) * np.linspace(-1, 1, 30, dtype=np.float32), -1)
    found = np.abs(tape.batch_jacobian(out, images).numpy().reshape(4, h * w, h * w, c)).sum(-1).any(axis=0)
    np.testing.assert_array_equal(found, earlier(h * w))  # every earlier pixel, none of its own


def test_the_plain_pixelcnn_has_the_blind_spot_that_the_gated_one_removes():
    shape = (5, 5, 1)
    plain = pixelcnn.network(shape, 8, 3, 3, 3, "float32")  # 3x3 masks, as deep as the gated net
    dep = dependency(plain, shape)
    assert not (dep & ~earlier(25)).any()  # causal
    k, blind = 3 * 5 + 1, 2 * 5 + 3  # pixel (3, 1) never sees (2, 3), up and to the right
    assert not dep[k, blind]
    assert dependency(gated_pixelcnn.network(shape, 8, 3, 3, 3, 256, "float32"), shape)[k, blind]
