"""ConcatELU: the nonlinearity of PixelCNN++ (Salimans et al., 2017)."""
import keras
from keras import ops


def concat_elu(x):
    """[elu(x), elu(−x)] along the last axis, of a tensor (what `ConcatELU` computes)."""
    return ops.elu(ops.concatenate([x, -x], axis=-1))


@keras.saving.register_keras_serializable(package="keras_gen")
class ConcatELU(keras.layers.Layer):
    """concat_elu(x) = [elu(x), elu(−x)] along the channels.

    An ELU keeps only a bounded trace of negative inputs; concatenating the ELU of x and of
    −x passes both signs on undamped, at the price of doubling the channels (the next
    convolution reads 2C features). Used before every convolution of PixelCNN++'s gated
    ResNet blocks.

    Shapes: `[..., C]` -> `[..., 2C]`.
    """

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"ConcatELU needs a known number of channels, got shape {input_shape}")

    def call(self, inputs):
        return concat_elu(inputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])

    def get_config(self):
        return super().get_config()
