"""ReplayBuffer: show the discriminator some of the generator's past fakes (Shrivastava et al., 2017)."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_gen")
class ReplayBuffer(keras.layers.Layer):
    """A history of past fakes mixed into each batch of fresh ones.

    Shrivastava et al. (2017), "Learning from Simulated and Unsupervised Images through
    Adversarial Training", sec. 2.3 ("history of refined images"). A discriminator shown only
    the latest fakes forgets the earlier modes of the generator, which may then return to them;
    replaying old fakes keeps it penalising them, and damps the oscillation between modes.

    `call(fakes, seed)` on a batch `[B, H, W, C]`:

    1. Replay: once the buffer holds anything, n = round(replay_fraction · B) examples (halves
       round up), at positions chosen uniformly at random without repetition, are replaced by
       stored fakes, each from a slot drawn uniformly among the filled ones (with
       replacement). An empty buffer returns `fakes` unchanged.
    2. Store: the current fakes (the last `capacity` of them, if B > capacity) are written to a
       ring buffer, overwriting the oldest slots, so the history is the last `capacity` fakes
       and no image older than capacity / B steps is replayed. Replay happens before storing,
       so an example is never replaced by itself.

    Gradients flow only through the fresh fakes that were kept: replayed images are constants.
    The buffer is three non-trainable weights, so a saved model keeps its history: `images`
    `[capacity, H, W, C]` (float32 unless the layer is given another plain dtype), `count` (slots
    filled, saturating at `capacity`) and `next_slot` (where the next fake goes). Every update
    is a variable assign op, so the layer traces under `tf.function`; TensorFlow runs a graph's
    reads and writes of one variable in program order, so replay always sees the buffer as it
    was before this batch. The output keeps the fakes' dtype (the layer does not autocast).

    Args:
      capacity: how many past fakes to keep.
      replay_fraction: the fraction of each batch replaced by past fakes, in [0, 1].
      seed: seed of the layer's own `SeedGenerator`, used when `call` gets no `seed`. Keras
        does not save a SeedGenerator's state, so after loading that stream restarts from `seed`.

    Shapes: `[B, H, W, C]` -> `[B, H, W, C]`.
    """

    def __init__(self, capacity, replay_fraction=0.5, seed=None, **kwargs):
        # Float32 by default whatever the global policy: the buffer only stores and copies
        # images, and a mixed-precision layer would read its variable as a bfloat16 copy,
        # which cannot be scatter-updated.
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("autocast", False)
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if self.compute_dtype != self.variable_dtype:
            raise ValueError(f"ReplayBuffer's dtype must not be mixed, got {self.dtype_policy.name}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if not 0.0 <= replay_fraction <= 1.0:
            raise ValueError(f"replay_fraction must be in [0, 1], got {replay_fraction!r}")
        self.capacity = capacity
        self.replay_fraction = float(replay_fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) < 2 or None in tuple(input_shape[1:]):
            raise ValueError(f"ReplayBuffer needs inputs [batch, ...] of known example shape, got {input_shape}")
        self.images = self.add_weight(
            shape=(self.capacity, *input_shape[1:]), initializer="zeros", trainable=False, name="images"
        )
        self.count = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="count")
        self.next_slot = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="next_slot"
        )

    def call(self, fakes, seed=None):
        fakes = tf.convert_to_tensor(fakes)
        seed = self.seed_generator if seed is None else seed
        example_axes = [1] * (fakes.shape.rank - 1)
        batch = tf.shape(fakes)[0]
        count = tf.convert_to_tensor(self.count)
        draws = keras.random.uniform(tf.stack([batch, 2]), dtype="float32", seed=seed)

        # 1. Replay: the n examples ranked first by a random key are replaced.
        n_replay = tf.cast(tf.floor(self.replay_fraction * tf.cast(batch, tf.float32) + 0.5), tf.int32)
        n_replay = tf.where(count > 0, n_replay, 0)
        rank = tf.argsort(tf.argsort(draws[:, 0]))
        replaced = tf.reshape(rank < n_replay, [-1, *example_axes])
        slots = tf.minimum(
            tf.cast(tf.floor(draws[:, 1] * tf.cast(count, tf.float32)), tf.int32), tf.maximum(count - 1, 0)
        )
        # The tf.Variable itself (this layer never autocasts): gather reads only those slots.
        past = tf.stop_gradient(tf.cast(tf.gather(self.images.value, slots), fakes.dtype))
        mixed = tf.where(replaced, past, fakes)

        # 2. Store the current fakes in the ring, oldest slots first.
        n_store = tf.minimum(batch, self.capacity)
        newest = tf.cast(tf.stop_gradient(fakes[batch - n_store:]), self.images.dtype)
        write_slots = (tf.convert_to_tensor(self.next_slot) + tf.range(n_store)) % self.capacity
        # A scatter writes only the new slots; assigning the whole buffer would copy it.
        self.images.value.scatter_nd_update(write_slots[:, None], newest)
        self.next_slot.assign((self.next_slot + n_store) % self.capacity)
        self.count.assign(tf.minimum(count + n_store, self.capacity))
        return mixed

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(capacity=self.capacity, replay_fraction=self.replay_fraction, seed=self.seed)
        return config
