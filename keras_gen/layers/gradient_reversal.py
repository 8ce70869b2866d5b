"""GradientReversal: identity forward, -lambda times the gradient backward (Ganin & Lempitsky, 2015)."""
import math
import numbers

import keras
import tensorflow as tf

from keras_gen.errors import KerasGenError


@keras.saving.register_keras_serializable(package="keras_gen")
class GradientReversal(keras.layers.Layer):
    """The gradient reversal layer of domain-adversarial training (DANN).

    Ganin & Lempitsky (2015), "Unsupervised Domain Adaptation by Backpropagation", sec. 3.2:
    R(x) = x in the forward pass, dR/dx = -lambda I in the backward pass. Placed between the
    feature extractor and the domain classifier, one minimisation trains the domain
    classifier to tell the domains apart while the features are pushed to confuse it.

    lambda is a non-trainable float32 weight, not a Python constant: assigning `layer.lambda_
    = value` (or `layer.lambda_variable.assign(value)`) between steps changes the gradient of
    an already traced `tf.function` or `train_step` without retracing it, so a callback can
    ramp it (the paper's schedule: lambda_p = 2 / (1 + exp(-10 p)) - 1 over training progress
    p). It is saved with the weights and, as its value at saving time, in the config.

    The output is the input cast to the compute dtype (bfloat16 under `mixed_bfloat16`); the
    gradient is computed in that dtype too, with lambda cast to it.

    Args:
      lambda_: the initial lambda, a finite number (0 passes no gradient back; negative values
        make the layer a plain scaled identity in the backward pass).

    Shapes: any -> the same.
    """

    def __init__(self, lambda_=1.0, **kwargs):
        super().__init__(**kwargs)
        self._initial_lambda = _check_lambda(lambda_)
        self.lambda_variable = self.add_weight(
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(self._initial_lambda),
            trainable=False,
            # Read as float32 whatever the policy; call() casts it where it is used.
            autocast=False,
            name="lambda",
        )

    @property
    def lambda_(self) -> float:
        return float(keras.ops.convert_to_numpy(self.lambda_variable))

    @lambda_.setter
    def lambda_(self, value):
        self.lambda_variable.assign(_check_lambda(value))

    def build(self, input_shape):
        pass  # lambda is created in __init__, so it can be set before the first call

    def call(self, inputs):
        # Read once per call: the traced graph reads the variable, so new values reach it.
        scale = -tf.cast(tf.convert_to_tensor(self.lambda_variable), inputs.dtype)

        @tf.custom_gradient
        def reverse(x):
            def grad(upstream):
                return scale * upstream

            return tf.identity(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(lambda_=self.lambda_)
        return config


def _check_lambda(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise KerasGenError(f"GradientReversal's lambda_ must be a finite number, got {value!r}")
    return float(value)
