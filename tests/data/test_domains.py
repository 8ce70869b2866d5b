"""The offline digit domains (mnistm5k, syndigits5k), their cards, and to_channels."""
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.data import domains
from keras_gen.errors import KerasGenError

NEW_DOMAINS = ("mnistm5k", "syndigits5k")


@pytest.mark.parametrize("name", NEW_DOMAINS)
def test_shapes_dtypes_labels_and_balanced_classes(name):
    x_train, y_train = data.load_arrays(name, "train")
    x_test, y_test = data.load_arrays(name, "test")
    assert x_train.shape == (4000, 28, 28, 3) and x_test.shape == (1000, 28, 28, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert data.image_shape(name) == (28, 28, 3)
    image_spec, label_spec = data.load(name, "test").element_spec
    assert image_spec.shape == (28, 28, 3) and image_spec.dtype == tf.uint8 and label_spec.dtype == tf.int64
    np.testing.assert_array_equal(data.load_arrays(name, "train", image_size=28)[0], x_train)


@pytest.mark.parametrize("name", NEW_DOMAINS)
def test_no_image_is_in_both_splits(name):
    x_train, _ = data.load_arrays(name, "train")
    x_test, _ = data.load_arrays(name, "test")
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)


def test_train_and_test_crops_come_from_disjoint_photo_regions():
    photos = domains._photos()
    owner = np.full(photos.shape[:3], -1)  # which split's crops may use each photo pixel
    for s, split in enumerate(("train", "test")):
        for photo, top, left in domains.photo_blocks(split):
            region = owner[photo, top:top + domains.PHOTO_BLOCK[0], left:left + domains.PHOTO_BLOCK[1]]
            assert np.all(region == -1)  # blocks never overlap, within or across splits
            region[...] = s
    test_share = (owner == 1).sum() / (owner >= 0).sum()
    assert test_share == pytest.approx(0.2)
    for s, split in enumerate(("train", "test")):
        positions = domains.crop_positions(1000, split)
        crops = domains.photo_crops(1000, split)
        for (photo, top, left), crop in zip(positions[:50], crops[:50]):
            np.testing.assert_array_equal(crop, photos[photo, top:top + 28, left:left + 28])
        for photo, top, left in positions:
            assert np.all(owner[photo, top:top + 28, left:left + 28] == s)
        assert len(np.unique(positions[:, 0])) == 2  # both photos are used


def test_blend_is_the_absolute_difference_per_channel():
    digit = np.array([0, 255, 100, 100, 37], np.uint8).reshape(1, 1, 5, 1)
    crop = np.array([[10, 200, 3], [10, 200, 3], [30, 100, 200], [0, 255, 100], [37, 36, 38]], np.uint8)
    out = domains.blend_mnistm(digit, crop.reshape(1, 1, 5, 3))[0, 0]
    expected = [[10, 200, 3], [245, 55, 252], [70, 0, 100], [100, 155, 0], [0, 1, 1]]
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    with pytest.raises(KerasGenError, match="uint8"):
        domains.blend_mnistm(digit.astype(np.float32), crop.reshape(1, 1, 5, 3))
    with pytest.raises(KerasGenError, match=r"\[N, H, W, 3\]"):
        domains.blend_mnistm(digit, crop.reshape(1, 1, 5, 3)[..., :2])


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnistm5k_is_mnist5k_blended_with_its_splits_crops(split):
    digits, labels = data.load_arrays("mnist5k", split)
    blended, blended_labels = data.load_arrays("mnistm5k", split)
    np.testing.assert_array_equal(blended_labels, labels)  # the same digits, in the same order
    crops = domains.photo_crops(len(digits), split).astype(np.int16)
    grey = np.broadcast_to(digits, blended.shape)
    # Where the digit is 0 the image is the crop, where it is 255 the crop's inverse.
    background, stroke = grey == 0, grey == 255
    assert background.mean() > 0.5 and stroke.mean() > 0.003  # MNIST strokes reach 255 in a few pixels
    np.testing.assert_array_equal(blended[background], crops[background])
    np.testing.assert_array_equal(blended[stroke], 255 - crops[stroke])
    np.testing.assert_array_equal(blended, np.abs(crops - grey.astype(np.int16)))


def test_render_digit_centres_scales_shifts_and_colours_the_ink():
    kwargs = dict(font_file="DejaVuSans.ttf", height=20.0, angle=0.0, ink=(255, 0, 0), paper=(0, 0, 255),
                  blur=0.0)
    centred = domains.render_digit(8, offset=(0.0, 0.0), **kwargs)
    assert centred.shape == (28, 28, 3) and centred.dtype == np.uint8
    # Every pixel is coverage * ink + (1 - coverage) * paper.
    red, green, blue = (centred[..., c].astype(int) for c in range(3))
    assert np.all(green == 0) and np.all(red + blue == 255)
    coverage = red / 255.0
    ink_rows = np.flatnonzero(coverage.max(axis=1) > 0.5)
    assert ink_rows[-1] - ink_rows[0] + 1 == pytest.approx(20, abs=1.5)
    ys, xs = np.mgrid[:28, :28]

    def centroid(c):
        return np.array([(c * xs).sum(), (c * ys).sum()]) / c.sum()

    np.testing.assert_allclose(centroid(coverage), [13.5, 13.5], atol=0.75)
    shifted = domains.render_digit(8, offset=(3.0, -2.0), **kwargs)[..., 0] / 255.0
    np.testing.assert_allclose(centroid(shifted) - centroid(coverage), [3.0, -2.0], atol=0.1)
    np.testing.assert_array_equal(domains.render_digit(8, offset=(0.0, 0.0), **kwargs), centred)
    blurred = domains.render_digit(8, offset=(0.0, 0.0), **{**kwargs, "blur": 1.0})
    assert np.abs(np.diff(blurred[..., 0].astype(int), axis=1)).max() < np.abs(np.diff(red, axis=1)).max()


def test_syndigits5k_images_are_legible_and_all_different():
    x, y, _ = domains.build_syndigits5k()
    flat = x.reshape(len(x), -1).astype(np.float32)
    assert flat.std(axis=1).min() > 5  # no blank image: ink and paper always differ
    luma = (x.astype(np.float32) * np.asarray(domains.LUMA_WEIGHTS, np.float32)).sum(-1)
    assert np.percentile(luma.max(axis=(1, 2)) - luma.min(axis=(1, 2)), 1) > 40
    assert len(np.unique(flat, axis=0)) == len(x)
    # Each class's mean image differs from the others' (the digit drawn matches the label's).
    means = np.stack([flat[y == k].mean(axis=0) for k in range(10)])
    assert all(np.abs(means[i] - means[j]).mean() > 1 for i in range(10) for j in range(i))


def test_every_name_is_byte_identical_in_a_fresh_process():
    def digest(name, split):
        x, y = data.load_arrays(name, split)
        return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()

    pairs = [(name, split) for name in NEW_DOMAINS for split in ("train", "test")]
    script = (
        "import hashlib\nfrom keras_gen import data\n"
        f"for name, split in {pairs!r}:\n"
        "    x, y = data.load_arrays(name, split)\n"
        "    print(hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest())\n"
    )
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert fresh.stdout.split() == [digest(name, split) for name, split in pairs]


def test_the_new_names_are_accepted_wherever_a_data_name_is():
    from keras_gen.cli import build_parser
    from keras_gen.recipe import check_data_name

    for name in NEW_DOMAINS:
        assert name in data.EMBEDDED and check_data_name(name) == name
        assert build_parser().parse_args(["train", "dcgan", "--data", name]).data == name
    with pytest.raises(KerasGenError, match="mnistm5k, syndigits5k"):
        data.load_arrays("mnist-m", "train")
    with pytest.raises(KerasGenError, match="28x28"):
        data.load("mnistm5k", "train", image_size=32)
    with pytest.raises(KerasGenError, match="split"):
        data.load_arrays("syndigits5k", "validation")


@pytest.mark.parametrize("name", data.EMBEDDED)
def test_every_embedded_dataset_has_a_card(name):
    text = data.card(name)
    assert text.startswith(f"# {name}\n") and "licen" in text.lower()
    with pytest.raises(KerasGenError, match="no card"):
        data.card("cifar")


def test_to_channels_repeats_grey_and_takes_the_luminance_of_rgb():
    grey = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    rgb = data.to_channels(grey, 3)
    assert rgb.shape == (1, 16, 16, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c:c + 1], grey) for c in range(3))
    np.testing.assert_array_equal(data.to_channels(rgb, 1), grey)  # grey -> RGB -> grey is exact
    assert data.to_channels(grey, 1) is grey
    primaries = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]]], np.uint8)
    # 0.299 * 255 = 76.2, 0.587 * 255 = 149.7, 0.114 * 255 = 29.1, 2.99 + 11.74 + 3.42 = 18.15
    np.testing.assert_array_equal(data.to_channels(primaries, 1).ravel(), [76, 150, 29, 18])
    floats = data.to_channels(primaries.astype(np.float32) / 255, 1)
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats.ravel(), [0.299, 0.587, 0.114, 18.15 / 255], rtol=1e-5)
    # Tensors, e.g. in a tf.data pipeline, stay tensors.
    ds = tf.data.Dataset.from_tensor_slices(grey).map(lambda x: data.to_channels(x, 3))
    assert ds.element_spec.shape == (16, 16, 3) and ds.element_spec.dtype == tf.uint8
    np.testing.assert_array_equal(next(iter(ds)).numpy(), rgb[0])
    np.testing.assert_array_equal(data.to_channels(tf.constant(primaries), 1).numpy().ravel(), [76, 150, 29, 18])
    with pytest.raises(KerasGenError, match="1 \\(grey\\) or 3"):
        data.to_channels(grey, 2)
    with pytest.raises(KerasGenError, match="1 or 3"):
        data.to_channels(np.zeros((2, 4, 4, 2), np.uint8), 3)
