"""GlobalBatchDropout: dropout whose masks do not repeat across `tf.distribute` replicas."""
import keras
import tensorflow as tf

from keras_gen import distribute


@keras.saving.register_keras_serializable(package="keras_gen")
class GlobalBatchDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose mask is drawn for the global batch.

    Keras' Dropout draws each replica's mask from the layer's `SeedGenerator`, whose state
    is the same on every replica, so under `MirroredStrategy` replica r's example b gets the
    mask of every other replica's example b. Here the mask is drawn for the whole global
    batch and each replica keeps its own rows (`keras_gen.distribute.global_batch_draw`):
    the masks differ between replicas, and example b gets the mask the single-device step
    gives it. With one replica it is `keras.layers.Dropout` exactly (the same draws).

    Args: as `keras.layers.Dropout` (`noise_shape` must leave the batch axis as None or the
    batch size).
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or distribute.replicas() == 1:
            return super().call(inputs, training=training)
        inputs = tf.convert_to_tensor(inputs)
        local_shape = tf.shape(inputs)
        if self.noise_shape is not None:
            local_shape = tf.stack([local_shape[0], *[
                local_shape[i] if d is None else d for i, d in enumerate(self.noise_shape) if i > 0]])

        def draw(n):
            # What Keras' dropout keeps and how it scales, as a mask for n examples.
            ones = tf.ones(tf.concat([[n], local_shape[1:]], 0), inputs.dtype)
            return keras.random.dropout(ones, self.rate, seed=self.seed_generator)

        return inputs * distribute.global_batch_draw(draw, local_shape[0])
