"""MinibatchStdDev: a feature map of batch statistics for the discriminator (Karras et al., 2018)."""
import keras
from keras import ops

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
        batch = ops.shape(x)[0]
        group = ops.where(ops.equal(batch % self.group_size, 0), self.group_size, batch)
        grouped = ops.reshape(x, (-1, group, height, width, channels))  # [B/G, G, H, W, C]
        deviations = grouped - ops.mean(grouped, axis=1, keepdims=True)
        stddev = ops.sqrt(ops.mean(ops.square(deviations), axis=1) + _VARIANCE_EPSILON)  # [B/G, H, W, C]
        per_group = ops.mean(stddev, axis=(1, 2, 3))  # [B/G]
        per_example = ops.repeat(per_group, group, axis=0)  # [B], groups are contiguous
        feature = ops.zeros_like(x[..., :1]) + ops.reshape(per_example, (-1, 1, 1, 1))  # [B, H, W, 1]
        return ops.concatenate([inputs, ops.cast(feature, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size)
        return config
