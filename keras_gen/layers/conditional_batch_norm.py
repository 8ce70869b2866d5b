"""ConditionalBatchNormalization: batch norm whose scale and shift depend on a condition."""
import keras
from keras import ops

from keras_gen import distribute
from keras_gen.layers.batch_normalization import BatchNormalization


@keras.saving.register_keras_serializable(package="keras_gen")
class ConditionalBatchNormalization(keras.layers.Layer):
    """Batch norm with a per-example gain and bias computed from a conditioning vector.

        y = (1 + γ(c)) ⊙ (x − μ_B) / sqrt(σ²_B + ε) + β(c),   γ(c) = W_γ c,  β(c) = W_β c

    (de Vries et al. 2017; Miyato & Koyama 2018 for class-conditional GANs; BigGAN, Brock et
    al. 2019, conditions on the shared class embedding concatenated with a chunk of z). γ and β
    start at zero, so the layer starts as plain batch norm without scale and shift.

    Call with `[x, c]`: `x` `[B, ..., F]` (statistics over all axes but the last), `c`
    `[B, D]` (a one-hot label, a class embedding, or an embedding joined with a z chunk).
    Returns `[B, ..., F]`.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        x_shape, c_shape = input_shape
        features = x_shape[-1]
        self.norm = BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, dtype=self.dtype_policy,
            # Statistics over the global batch when built under a multi-replica strategy.
            synchronized=distribute.multi_replica(),
        )
        self.norm.build(x_shape)
        self.gain = keras.layers.Dense(features, kernel_initializer="zeros", dtype=self.dtype_policy, name="gain")
        self.gain.build(c_shape)
        self.bias = keras.layers.Dense(features, kernel_initializer="zeros", dtype=self.dtype_policy, name="bias")
        self.bias.build(c_shape)

    def call(self, inputs, training=None):
        x, c = inputs
        normalised = self.norm(x, training=training)
        # [B, F] -> [B, 1, ..., 1, F] so each example's gain and bias cover all its positions.
        shape = [-1] + [1] * (len(x.shape) - 2) + [x.shape[-1]]
        gain = ops.reshape(self.gain(c), shape)
        bias = ops.reshape(self.bias(c), shape)
        return normalised * (1.0 + gain) + bias

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon)
        return config
