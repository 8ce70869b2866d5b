"""MinibatchStdDev: a feature map of batch statistics for the discriminator (Karras et al., 2018)."""
import keras
import tensorflow as tf
from keras import ops

from keras_gen import distribute

# Added to the variance before the square root, as in the paper's code: keeps the gradient
# finite where every example of a group is identical (the collapse this layer exposes).
_VARIANCE_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="keras_gen")
class MinibatchStdDev(keras.layers.Layer):
    """Append one feature map: how much the examples of a group differ from each other.

    Karras et al. (2018), "Progressive Growing of GANs for Improved Quality, Stability, and
    Variation", sec. 3. The batch is split into groups of G examples; for each group

        s = mean over (h, w, c) of sqrt(Var_g[x_{g,h,w,c}] + 1e-8),

    the population (1/G) variance across the group's examples, averaged over every pixel and
    feature. s is written, as a constant map, into a new last channel of each of the group's
    examples. A generator that collapses to a few modes makes s small on its fakes, which the
    discriminator can then see.

    Groups are contiguous: examples [0, G), [G, 2G), .... G is `group_size` when it divides the
    batch; otherwise (a smaller batch, e.g. the last one of an epoch, or fewer than
    `group_size` examples) the whole batch is one group. A gcd rule instead would make a prime
    batch size groups of one, whose stddev is identically 0. Statistics are computed in float32
    and the new channel is cast to the compute dtype.

    Under a `tf.distribute` strategy the groups are those of the global batch, whichever
    replica holds their examples: a replica's share of an uneven last batch (4 + 3 of 7), or a
    share that `group_size` does not divide, would otherwise regroup the examples and change
    what the discriminator sees. The groups' sums are then added across replicas.

    Args:
      group_size: examples per group (4 in the paper).

    Shapes: `[B, H, W, C]` -> `[B, H, W, C + 1]`.
    """

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
            raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
        self.group_size = group_size

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:]):
            raise ValueError(
                f"MinibatchStdDev needs inputs [batch, height, width, channels] of known size, got {input_shape}"
            )

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        x = ops.cast(inputs, "float32")
        if distribute.replicas() > 1:
            # Segment sums serve any split of the global batch, but on one device they took
            # 5.3 ms for a forward and backward pass of [128, 7, 7, 128] where the reshape
            # below takes 3.5 ms (Xeon, 2026-11-27), and a discriminator step calls it thrice.
            return self._call_on_the_global_batch(inputs, x)
        batch = ops.shape(x)[0]
        group = ops.where(ops.equal(batch % self.group_size, 0), self.group_size, batch)
        grouped = ops.reshape(x, (-1, group, height, width, channels))  # [B/G, G, H, W, C]
        deviations = grouped - ops.mean(grouped, axis=1, keepdims=True)
        stddev = ops.sqrt(ops.mean(ops.square(deviations), axis=1) + _VARIANCE_EPSILON)  # [B/G, H, W, C]
        per_group = ops.mean(stddev, axis=(1, 2, 3))  # [B/G]
        per_example = ops.repeat(per_group, group, axis=0)  # [B], groups are contiguous
        return self._appended(inputs, x, per_example)

    def _call_on_the_global_batch(self, inputs, x):
        """`call` on a replica's rows of the global batch: each example's group is the one its
        global row falls in, and each group's sums (mean, then squared deviations: two passes,
        as above) are added over the replicas."""
        batch = tf.shape(x)[0]
        offset, total = distribute.batch_position(batch)
        group = tf.where(tf.equal(total % self.group_size, 0), self.group_size, total)
        ids = (offset + tf.range(batch)) // group  # each local example's global group
        num_groups = total // group
        size = tf.cast(group, tf.float32)

        def group_sums(values):
            return distribute.global_sum(tf.math.unsorted_segment_sum(values, ids, num_groups))

        means = group_sums(x) / size  # [B/G, H, W, C]
        deviations = x - tf.gather(means, ids)
        stddev = tf.sqrt(group_sums(tf.square(deviations)) / size + _VARIANCE_EPSILON)
        per_group = tf.reduce_mean(stddev, axis=(1, 2, 3))
        return self._appended(inputs, x, tf.gather(per_group, ids))

    @staticmethod
    def _appended(inputs, x, per_example):
        feature = ops.zeros_like(x[..., :1]) + ops.reshape(per_example, (-1, 1, 1, 1))  # [B, H, W, 1]
        return ops.concatenate([inputs, ops.cast(feature, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size)
        return config
