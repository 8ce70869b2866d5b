"""DiffAugment: determinism, the documented geometry of each transform, and its gradients."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import augment
from keras_gen.augment import POLICIES, cutout_size, diff_augment, max_translation
from keras_gen.errors import KerasGenError


def _unique_images(batch, height, width):
    """Every pixel of an example a different value >= 1, so a 0 can only be padding."""
    values = np.arange(1, height * width + 1, dtype="float32").reshape(1, height, width, 1)
    return np.repeat(values, batch, axis=0) + np.arange(batch, dtype="float32")[:, None, None, None] * 1000


def _shift(image, dy, dx):
    """out[i, j] = image[i − dy, j − dx], zero outside: the documented translation, in numpy."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[i, j] = image[i - dy, j - dx]
    return out


def _offset(source, shifted):
    """(dy, dx) of a translated unique-valued image, read off one surviving pixel."""
    i, j = np.argwhere(shifted != 0)[0]
    r, c = np.argwhere(source == shifted[i, j])[0]
    return i - r, j - c


def test_sizes_round_the_papers_ratios():
    assert [max_translation(s) for s in (4, 8, 28, 32, 64)] == [1, 1, 4, 4, 8]
    assert [cutout_size(s) for s in (8, 9, 28, 32)] == [4, 5, 14, 16]


@pytest.mark.parametrize("height, width", [(16, 16), (16, 8)])
def test_translation_shifts_each_example_by_an_integer_offset(height, width):
    batch = 300
    unique = _unique_images(batch, height, width)
    bright = np.zeros_like(unique)
    bright[:, 0, 0, 0] = 1.0  # in a corner: falls off for any upward or leftward shift
    images = np.concatenate([unique, bright], axis=3)  # one draw moves both channels alike
    out = diff_augment(images, ["translation"], seed=keras.random.SeedGenerator(0)).numpy()
    max_dy, max_dx = max_translation(height), max_translation(width)
    offsets = set()
    for b in range(batch):
        dy, dx = _offset(unique[b, :, :, 0], out[b, :, :, 0])
        assert abs(dy) <= max_dy and abs(dx) <= max_dx
        np.testing.assert_array_equal(out[b], _shift(images[b], dy, dx))
        moved = out[b, :, :, 1]
        if dy >= 0 and dx >= 0:
            assert moved[dy, dx] == 1.0 and moved.sum() == 1.0
        else:
            assert moved.sum() == 0.0
        offsets.add((dy, dx))
    assert len(offsets) == (2 * max_dy + 1) * (2 * max_dx + 1)  # every offset occurs


def test_translation_gradient_is_the_transposed_shift():
    batch, height, width = 16, 8, 8
    images = tf.constant(_unique_images(batch, height, width))
    upstream = np.random.default_rng(0).normal(size=images.shape).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = diff_augment(images, "translation", seed=keras.random.SeedGenerator(1))
        total = tf.reduce_sum(out * upstream)
    gradient = tape.gradient(total, images).numpy()
    for b in range(batch):
        dy, dx = _offset(images[b, :, :, 0].numpy(), out[b, :, :, 0].numpy())
        # d out[i, j] / d x[i − dy, j − dx] = 1: each input pixel gets the upstream gradient of
        # where it moved to, or 0 if it fell off.
        np.testing.assert_array_equal(gradient[b], _shift(upstream[b], -dy, -dx))


@pytest.mark.parametrize("height, width", [(10, 10), (9, 9), (12, 6)])
def test_cutout_zeroes_exactly_one_patch_inside_the_image(height, width):
    batch = 200
    images = np.random.default_rng(2).uniform(0.1, 1.0, size=(batch, height, width, 3)).astype("float32")
    out = diff_augment(images, ["cutout"], seed=keras.random.SeedGenerator(3)).numpy()
    patch = (cutout_size(height), cutout_size(width))
    corners = set()
    for b in range(batch):
        cut = (out[b] == 0).all(axis=2)
        rows, cols = np.nonzero(cut)
        top, left = rows.min(), cols.min()
        assert cut.sum() == patch[0] * patch[1]
        assert cut[top:top + patch[0], left:left + patch[1]].all()  # one patch of that size
        np.testing.assert_array_equal(out[b][~cut], images[b][~cut])  # the rest untouched
        corners.add((top, left))
    # Every placement wholly inside the image occurs, and none outside it.
    assert corners == {(t, l) for t in range(height - patch[0] + 1) for l in range(width - patch[1] + 1)}


def test_cutout_gradient_is_the_keep_mask():
    images = tf.constant(np.random.default_rng(4).uniform(0.1, 1.0, size=(8, 8, 8, 2)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = diff_augment(images, ["cutout"], seed=5)
    gradient = tape.gradient(out, images).numpy()
    keep = (out.numpy() != 0).astype("float32")
    np.testing.assert_array_equal(gradient, keep)
    assert 0 < keep.mean() < 1


def test_colour_transforms_by_hand():
    x = np.random.default_rng(6).uniform(-1, 1, size=(2, 3, 3, 3)).astype("float32")
    unit = tf.constant([0.75, 0.0])
    grey = x.mean(axis=3, keepdims=True)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    shift = np.array([0.25, -0.5])[:, None, None, None]
    np.testing.assert_allclose(augment._adjust_brightness(x, unit), x + shift, atol=1e-6)
    saturation = augment._adjust_saturation(x, tf.constant([0.5, 0.0])).numpy()
    np.testing.assert_allclose(saturation[0], x[0], atol=1e-6)  # 2r = 1: unchanged
    np.testing.assert_allclose(saturation[1], np.broadcast_to(grey[1], x[1].shape), atol=1e-6)  # 2r = 0: grey
    contrast = augment._adjust_contrast(x, tf.constant([0.5, 0.0])).numpy()
    np.testing.assert_allclose(contrast[0], x[0], atol=1e-6)  # r + 1/2 = 1: unchanged
    np.testing.assert_allclose(contrast[1], mean[1] + 0.5 * (x[1] - mean[1]), atol=1e-6)


def test_colour_policy_shifts_a_flat_grey_image_by_at_most_half():
    # Saturation and contrast fix a flat grey image; brightness shifts it by r − 1/2.
    levels = np.linspace(-0.9, 0.9, 64, dtype="float32")
    images = np.broadcast_to(levels[:, None, None, None], (64, 4, 4, 3)).copy()
    out = diff_augment(images, ["color"], seed=keras.random.SeedGenerator(7)).numpy()
    shift = out - images
    np.testing.assert_allclose(shift, shift[:, :1, :1, :1] * np.ones_like(shift), atol=1e-6)
    assert shift.min() >= -0.5 - 1e-6 and shift.max() < 0.5
    assert shift.std() > 0.1


def test_same_seed_state_same_augmentation():
    images = np.random.default_rng(8).uniform(-1, 1, size=(16, 8, 8, 3)).astype("float32")

    def run(seed):
        return diff_augment(images, POLICIES, seed=seed).numpy()

    np.testing.assert_array_equal(run(keras.random.SeedGenerator(1)), run(keras.random.SeedGenerator(1)))
    np.testing.assert_array_equal(run(11), run(11))
    assert not np.array_equal(run(keras.random.SeedGenerator(1)), run(keras.random.SeedGenerator(2)))
    generator = keras.random.SeedGenerator(1)
    assert not np.array_equal(run(generator), run(generator))  # the stream moves on


def test_gradient_reaches_a_generator_through_every_policy():
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8 * 8 * 3), keras.layers.Reshape((8, 8, 3))])
    z = np.random.default_rng(9).normal(size=(4, 4)).astype("float32")
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(tf.square(diff_augment(generator(z), POLICIES, seed=12)))
    gradients = tape.gradient(score, generator.trainable_variables)
    assert all(np.abs(g.numpy()).max() > 0 for g in gradients)


def test_tf_function_dynamic_batch_and_bfloat16():
    seed = keras.random.SeedGenerator(0)
    traced = tf.function(
        lambda x: diff_augment(x, POLICIES, seed=seed),
        input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.bfloat16)],
    )
    for batch in (5, 2):
        images = tf.cast(np.random.default_rng(batch).uniform(-1, 1, size=(batch, 8, 8, 3)), tf.bfloat16)
        out = traced(images)
        assert out.dtype == tf.bfloat16 and out.shape == (batch, 8, 8, 3)


def test_policy_names():
    images = np.ones((2, 8, 8, 1), "float32")
    with pytest.raises(KerasGenError, match="unknown DiffAugment policy 'colour'"):
        diff_augment(images, ["translation", "colour"], seed=0)
    assert augment.parse_policy("color, translation") == ("color", "translation")
    np.testing.assert_array_equal(diff_augment(images, (), seed=0), images)
    with pytest.raises(KerasGenError, match="height, width"):
        diff_augment(np.ones((8, 8, 1), "float32"), seed=0)
