"""MaskedConv2D: the masks by hand, causality of the layer, config round trip."""
import keras
import numpy as np
import pytest

from keras_gen.layers import MaskedConv2D, causal_mask


def test_grey_masks_by_hand():
    a = causal_mask((3, 3), 1, 1, "A", 1)[:, :, 0, 0]
    b = causal_mask((3, 3), 1, 1, "B", 1)[:, :, 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


def test_rgb_centre_masks_by_hand():
    # 3 colour groups, one feature each: type A lets G see R, B see R and G; type B adds self.
    a = causal_mask((3, 3), 3, 3, "A", 3)[1, 1]
    b = causal_mask((3, 3), 3, 3, "B", 3)[1, 1]
    np.testing.assert_array_equal(a, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])  # [in, out]
    np.testing.assert_array_equal(b, [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
    # Off-centre positions do not depend on colour: every earlier pixel is visible.
    assert causal_mask((3, 3), 3, 6, "A", 3)[0].all() and not causal_mask((3, 3), 3, 6, "A", 3)[2].any()


def test_groups_are_contiguous_blocks():
    m = causal_mask((1, 1), 6, 9, "A", 3)[0, 0]  # in groups [0,0,1,1,2,2], out [0,0,0,1,1,1,2,2,2]
    assert not m[:, :3].any()
    assert m[:2, 3:6].all() and not m[2:, 3:6].any()
    assert m[:4, 6:].all() and not m[4:, 6:].any()


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_output_ignores_future_pixels(mask_type):
    layer = MaskedConv2D(4, 5, mask_type=mask_type)
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 1)).astype("float32")
    base = keras.ops.convert_to_numpy(layer(x))
    i, j = 2, 3
    changed = x.copy()
    changed[0, i, j, 0] += 5.0
    out = keras.ops.convert_to_numpy(layer(changed))
    diff = np.abs(out - base)[0, :, :, 0]
    flat = diff.reshape(-1)
    k = i * 6 + j
    assert flat[:k].max() == 0.0  # no earlier position sees pixel k
    assert (flat[k] > 0) == (mask_type == "B")  # only type B sees its own position
    assert flat[k + 1:].max() > 0  # later positions do


def test_mask_is_applied_after_the_kernel_changes():
    layer = MaskedConv2D(1, 3, mask_type="A", use_bias=False)
    layer.build((None, 4, 4, 1))
    layer.kernel.assign(np.ones((3, 3, 1, 1), "float32"))  # an optimizer could do this
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 3, 3, 0] = 1.0  # the last pixel
    out = keras.ops.convert_to_numpy(layer(x))
    assert out[0, 3, 3, 0] == 0.0 and out[0, :3].max() == 0.0


def test_config_round_trip():
    layer = MaskedConv2D(6, 3, mask_type="A", color_channels=3, name="m")
    clone = MaskedConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.mask_type, clone.color_channels, clone.padding) == (6, "A", 3, "same")


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2D(4, 3, mask_type="C")
    with pytest.raises(ValueError, match="multiple"):
        MaskedConv2D(4, 3, color_channels=3)
    for even in (2, 4, (2, 2), (3, 4)):  # "same" padding would centre them off the mask's centre: not causal
        with pytest.raises(ValueError, match="kernel_size must be odd"):
            MaskedConv2D(4, even)
