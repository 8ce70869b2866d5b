"""ReplayBuffer: it stores and returns earlier fakes, ring order, gradients, graph mode, saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.layers import ReplayBuffer

EXAMPLE = (2, 2, 1)


def constant_fakes(*values):
    """One constant image per value, so every example says which batch it came from."""
    return np.stack([np.full(EXAMPLE, v, "float32") for v in values])


def ids(images):
    """The value of each constant image (checking it really is constant)."""
    images = np.asarray(images)
    flat = images.reshape(len(images), -1)
    assert np.all(flat == flat[:, :1])
    return flat[:, 0].tolist()


def new_buffer(capacity=8, replay_fraction=0.5, **kwargs):
    buffer = ReplayBuffer(capacity, replay_fraction, **kwargs)
    buffer.build((None, *EXAMPLE))
    return buffer


def test_empty_buffer_returns_the_fakes_unchanged():
    buffer = new_buffer()
    fakes = np.random.default_rng(0).normal(size=(4, *EXAMPLE)).astype("float32")
    np.testing.assert_array_equal(buffer(fakes, seed=keras.random.SeedGenerator(0)).numpy(), fakes)
    assert int(buffer.count.numpy()) == 4
    np.testing.assert_array_equal(buffer.images.numpy()[:4], fakes)


def test_replays_earlier_fakes_and_forgets_the_oldest():
    buffer = new_buffer(capacity=8, replay_fraction=0.5)
    seed = keras.random.SeedGenerator(1)
    history = []  # the ids the buffer should hold, oldest first
    for step in range(1, 8):
        fresh = [10 * step + i for i in range(4)]
        out = ids(buffer(constant_fakes(*fresh), seed=seed))
        replayed = [(i, v) for i, v in enumerate(out) if v != fresh[i]]
        if not history:
            assert replayed == []
        else:
            assert len(replayed) == 2  # round(0.5 · 4) examples replaced
            assert all(v in history for _, v in replayed)  # by fakes still in the ring
        history = (history + fresh)[-8:]
        count = int(buffer.count.numpy())
        assert count == min(4 * step, 8)  # saturates at capacity
        assert sorted(ids(buffer.images.numpy()[:count])) == sorted(history)
    # The ring: slots filled in order, the oldest overwritten first.
    assert ids(buffer.images.numpy()) == [70, 71, 72, 73, 60, 61, 62, 63]


def test_positions_and_slots_are_random():
    buffer = new_buffer(capacity=16, replay_fraction=0.5)
    seed = keras.random.SeedGenerator(2)
    positions, replayed = set(), set()
    for step in range(30):
        fresh = [100 * step + i for i in range(8)]
        out = ids(buffer(constant_fakes(*fresh), seed=seed))
        positions |= {i for i, v in enumerate(out) if v != fresh[i]}
        replayed |= {v for i, v in enumerate(out) if v != fresh[i]}
    assert positions == set(range(8))  # any example may be replaced
    assert len(replayed) > 50  # of 29 · 4 replays, most are different stored fakes


@pytest.mark.parametrize("fraction, replaced", [(0.0, 0), (0.25, 1), (1.0, 4)])
def test_replay_fraction(fraction, replaced):
    buffer = new_buffer(capacity=8, replay_fraction=fraction)
    buffer(constant_fakes(1, 2, 3, 4), seed=0)
    out = ids(buffer(constant_fakes(11, 12, 13, 14), seed=1))
    assert sum(v < 10 for v in out) == replaced


def test_a_batch_larger_than_the_buffer_keeps_its_last_fakes():
    buffer = new_buffer(capacity=3)
    buffer(constant_fakes(1, 2, 3, 4, 5), seed=0)
    assert int(buffer.count.numpy()) == 3
    assert sorted(ids(buffer.images.numpy())) == [3, 4, 5]


def test_gradients_flow_only_through_kept_fresh_fakes():
    buffer = new_buffer()
    buffer(constant_fakes(1, 2, 3, 4), seed=0)
    fakes = tf.constant(constant_fakes(11, 12, 13, 14))
    with tf.GradientTape() as tape:
        tape.watch(fakes)
        out = buffer(fakes, seed=3)
        total = tf.reduce_sum(out)
    gradient = tape.gradient(total, fakes).numpy()
    kept = np.array([v > 10 for v in ids(out)], "float32")[:, None, None, None]
    np.testing.assert_array_equal(gradient, np.broadcast_to(kept, gradient.shape))
    assert 0 < kept.sum() < 4


def test_same_seed_state_same_replay():
    def run(seed):
        buffer = new_buffer()
        buffer(constant_fakes(1, 2, 3, 4), seed=0)
        return ids(buffer(constant_fakes(11, 12, 13, 14), seed=seed))

    assert run(keras.random.SeedGenerator(5)) == run(keras.random.SeedGenerator(5))
    assert len({tuple(run(keras.random.SeedGenerator(s))) for s in range(8)}) > 1


def test_graph_mode():
    buffer = new_buffer(capacity=8)
    seed = keras.random.SeedGenerator(6)
    step = tf.function(lambda x: buffer(x, seed=seed), input_signature=[tf.TensorSpec((None, *EXAMPLE), tf.float32)])
    assert ids(step(constant_fakes(1, 2, 3))) == [1, 2, 3]  # empty: unchanged
    seen = set()
    for i in range(2, 7):
        fresh = [10 * i, 10 * i + 1]
        out = ids(step(constant_fakes(*fresh)))
        assert sum(v not in fresh for v in out) == 1
        seen |= set(out) - set(fresh)
    assert int(buffer.count.numpy()) == 8 and seen <= {1, 2, 3, 20, 21, 30, 31, 40, 41, 50, 51}
    assert sorted(ids(buffer.images.numpy())) == [30, 31, 40, 41, 50, 51, 60, 61]


def test_mixed_bfloat16_fakes_under_a_mixed_global_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        buffer = new_buffer()
        first = buffer(tf.cast(constant_fakes(1.5, 2.5, 3.5, 4.5), tf.bfloat16), seed=0)
        second = buffer(tf.cast(constant_fakes(11, 12, 13, 14), tf.bfloat16), seed=1)
    finally:
        keras.config.set_dtype_policy(previous)
    assert first.dtype == second.dtype == tf.bfloat16
    assert buffer.images.dtype == "float32"
    assert sum(v < 10 for v in ids(tf.cast(second, tf.float32))) == 2


def test_keras_file_round_trip_keeps_the_history(tmp_path):
    model = keras.Sequential([keras.Input(EXAMPLE), ReplayBuffer(8, 0.5, seed=7)])
    for step in range(3):
        model(constant_fakes(*(10 * step + i for i in range(4))))
    path = tmp_path / "buffer.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    original, restored = model.layers[0], loaded.layers[0]
    assert (restored.capacity, restored.replay_fraction) == (8, 0.5)
    for name in ("images", "count", "next_slot"):
        np.testing.assert_array_equal(getattr(restored, name).numpy(), getattr(original, name).numpy())
    # The same seed state replays the same fakes from the restored history. (Keras does not
    # save a SeedGenerator's state, so the layer's own stream restarts from `seed`.)
    nxt = constant_fakes(90, 91, 92, 93)
    replayed = [ids(layer(nxt, seed=keras.random.SeedGenerator(3))) for layer in (restored, original)]
    assert replayed[0] == replayed[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="replay_fraction"):
        ReplayBuffer(4, 1.5)
    with pytest.raises(ValueError, match="mixed"):
        ReplayBuffer(4, dtype="mixed_bfloat16")
