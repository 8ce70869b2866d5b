"""MinibatchStdDev: the added channel against numpy, grouping rules, graph mode, saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers import MinibatchStdDev


def numpy_minibatch_stddev(x, group_size):
    """The documented computation: contiguous groups, or the whole batch when they do not fit."""
    batch = len(x)
    group = group_size if batch % group_size == 0 else batch
    feature = np.empty(batch)
    for start in range(0, batch, group):
        members = x[start:start + group].astype("float64")
        feature[start:start + group] = np.sqrt(members.var(axis=0) + 1e-8).mean()
    channel = np.broadcast_to(feature[:, None, None, None], (*x.shape[:3], 1))
    return np.concatenate([x, channel], axis=-1)


def _images(batch, seed=0, shape=(3, 4, 2)):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


@pytest.mark.parametrize(
    "batch, group_size",
    [(8, 4), (8, 2), (6, 4), (3, 4), (5, 1)],  # divisible, smaller groups, not divisible, small batch, groups of one
)
def test_added_channel_matches_numpy(batch, group_size):
    x = _images(batch)
    out = MinibatchStdDev(group_size)(x).numpy()
    assert out.shape == (batch, 3, 4, 3)
    np.testing.assert_array_equal(out[..., :2], x)
    np.testing.assert_allclose(out, numpy_minibatch_stddev(x, group_size), rtol=1e-5, atol=1e-6)


def test_each_group_sees_only_its_own_members():
    x = _images(8)
    x[4:] = 10.0 * x[:4]  # the second group: the first, ten times as spread out
    feature = MinibatchStdDev(4)(x).numpy()[:, 0, 0, -1]
    assert np.all(feature[:4] == feature[0]) and np.all(feature[4:] == feature[4])
    np.testing.assert_allclose(feature[4], 10 * feature[0], rtol=1e-4)
    # Identical examples (a collapsed generator) give the floor sqrt(1e-8), not NaN.
    same = np.repeat(x[:1], 4, axis=0)
    np.testing.assert_allclose(MinibatchStdDev(4)(same).numpy()[..., -1], 1e-4, rtol=1e-3)


def test_graph_mode_with_a_dynamic_batch():
    layer = MinibatchStdDev(4)
    traced = tf.function(layer.call, input_signature=[tf.TensorSpec((None, 3, 4, 2), tf.float32)])
    for batch in (8, 6, 1):
        x = _images(batch, seed=batch)
        np.testing.assert_allclose(traced(x).numpy(), numpy_minibatch_stddev(x, 4), rtol=1e-5, atol=1e-6)


def test_bfloat16_compute():
    x = _images(8)
    out = MinibatchStdDev(4, dtype="mixed_bfloat16")(x)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), numpy_minibatch_stddev(x, 4), rtol=1e-2, atol=1e-2)


def test_config_round_trip():
    clone = MinibatchStdDev.from_config(MinibatchStdDev(2, name="mbstd").get_config())
    assert (clone.group_size, clone.name) == (2, "mbstd")
    assert MinibatchStdDev(4).compute_output_shape((None, 8, 8, 16)) == (None, 8, 8, 17)


def test_keras_file_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((3, 4, 2)),
            MinibatchStdDev(2),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    x = _images(6)
    path = tmp_path / "critic.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].group_size == 2
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_bad_arguments():
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(2.0)
    with pytest.raises(ValueError, match="height, width, channels"):
        MinibatchStdDev()(np.zeros((4, 3), "float32"))
