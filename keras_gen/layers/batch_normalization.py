"""BatchNormalization: Keras' batch norm, with its training step in one fused TensorFlow kernel."""
import keras
import tensorflow as tf

# The smallest epsilon TensorFlow's fused kernels are specified for (cuDNN's bound, kept by
# `tf.compat.v1.nn.fused_batch_norm`); a smaller one takes Keras' path.
MIN_FUSED_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="keras_gen")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training-mode call is TensorFlow's fused kernel.

    In training, over the batch B of the statistics axes (all but the last),

        y = γ ⊙ (x − μ_B) / sqrt(σ²_B + ε) + β,   μ_B = mean_B(x),  σ²_B = mean_B((x − μ_B)²)

    and the moving statistics move by m ← momentum·m + (1 − momentum)·(μ_B, σ²_B) (the biased
    σ²_B, as Keras). Keras 3 computes this as a chain of ops over the whole tensor: a cast to
    float32, the two means, the normalisation and a cast back, and about twice as many for the
    gradient. `FusedBatchNormV3` computes the same in one kernel forward and one backward, in
    float32 whatever the input (float32 or bfloat16): outputs, gradients and moving statistics
    equal Keras' to float32 rounding (`tests/layers/test_batch_normalization.py`). With
    `LeakyReLU` it made bfloat16 DCGAN training about a fifth faster on an Intel Xeon with AMX
    (README, Performance).

    Everything else is Keras' layer: its arguments, weights, names (a model saved with
    `keras.layers.BatchNormalization` loads into one built with this), inference with the
    moving statistics, and the cases the fused kernel does not cover, which take Keras' path:
    a mask, `synchronized` statistics (a multi-replica strategy), `renorm`, an axis other than
    the last, inputs of rank other than 2 or 4, a dtype other than float32 or bfloat16, an
    epsilon below `MIN_FUSED_EPSILON`, or a backend other than TensorFlow.

    Input `[B, F]` or `[B, H, W, F]`; output the same shape, in the layer's compute dtype.
    """

    def _fused(self, inputs, training, mask):
        rank = len(inputs.shape)
        return (training is True and self.trainable and mask is None and not self.synchronized
                and not self.renorm and rank in (2, 4) and self.axis in (-1, rank - 1)
                and inputs.shape[-1] is not None and inputs.dtype in (tf.float32, tf.bfloat16)
                and self.epsilon >= MIN_FUSED_EPSILON and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        features = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, features])
        gamma = self.gamma if self.scale else tf.ones([features])
        beta = self.beta if self.center else tf.zeros([features])
        y, mean, corrected_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(gamma, tf.float32), offset=tf.cast(beta, tf.float32), mean=tf.zeros([0]),
            variance=tf.zeros([0]), epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        # The kernel returns the variance with Bessel's correction n / (n - 1); Keras' moving
        # variance follows the biased one (and a single value has variance 0).
        n = tf.cast(tf.size(x) // features, tf.float32)
        variance = tf.where(n > 1.0, corrected_variance * ((n - 1.0) / tf.maximum(n, 1.0)), 0.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        if len(inputs.shape) != 4:
            y = tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)
