"""LeakyReLU: Keras' LeakyReLU whose gradient reads its output, so that TensorFlow can fuse it."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_gen")
class LeakyReLU(keras.layers.LeakyReLU):
    """`keras.layers.LeakyReLU`, y = x for x > 0 and y = α·x otherwise, with a gradient that
    TensorFlow's graph optimizer can keep.

    Why: on a CPU, TensorFlow's graph rewrites fuse convolution -> bias -> LeakyReLU into one
    oneDNN kernel, which drops the pre-activation tensor. The stock gradient of LeakyReLU reads
    that tensor (`LeakyReluGrad(dy, x)`), so on a training graph the rewrite fails ("remapper
    failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '.../LeakyReluGrad' exist for
    missing node '.../BiasAdd'" in TensorFlow's log) and that pass's rewrites are thrown away.
    Keras requires α >= 0, so the output has the input's sign and `LeakyReluGrad(dy, y)` is
    the same gradient, dy where x > 0 and α·dy elsewhere, read from the fused kernel's output.
    Its own gradient is TensorFlow's (a penalty on D's input gradient differentiates it again).
    Outputs and gradients equal Keras' (`tests/layers/test_leaky_relu.py`); another backend
    takes Keras' path.
    """

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        alpha = float(self.negative_slope)

        @tf.custom_gradient
        def leaky_relu(x):
            y = tf.nn.leaky_relu(x, alpha)

            def gradient(dy):
                return tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=alpha)

            return y, gradient

        return leaky_relu(inputs)
