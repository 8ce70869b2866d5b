"""SpectralNorm: a Dense or convolution whose kernel is divided by its largest singular value.

Miyato et al. (2018), "Spectral Normalization for Generative Adversarial Networks".

Why not `keras.layers.SpectralNormalization` (Keras 3.15): in training mode it *assigns* W/σ to
the wrapped layer's kernel instead of using it in the forward pass, and it computes W/σ from
the kernel as read inside the layer's call, which under `mixed_bfloat16` is the bfloat16 copy.
So every training step overwrites the float32 master weights with bfloat16-rounded values
(checked: after one call every kernel entry is exactly a bfloat16 number), and an optimizer
update smaller than half a bfloat16 step (~0.2% of a weight; Adam at lr 2e-4 on weights ~0.1)
is rounded away. It also passes no gradient through σ, which the paper's method has.
"""
import keras
from keras import ops

# Under the square root of a squared norm, so a zero kernel normalises to zero, not NaN.
_NORM_EPSILON = 1e-12

SUPPORTED_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _l2_normalize(x):
    return x / ops.sqrt(ops.sum(ops.square(x)) + _NORM_EPSILON)


@keras.saving.register_keras_serializable(package="keras_gen")
class SpectralNorm(keras.layers.Wrapper):
    """Wrap a Dense or Conv layer so that it computes with W_SN = W / σ(W).

    W is the wrapped layer's kernel reshaped to the matrix `[-1, out]` (Dense `[in, out]`,
    Conv2D `[kh·kw·in, out]`) and σ(W) its largest singular value, estimated by power
    iteration with a persistent unit vector u `[1, out]` (a non-trainable weight):

        v ← normalise(u Wᵀ),  u ← normalise(v W)  (`power_iterations` times, training only),
        σ = v W uᵀ,

    with u and v held constant for differentiation, so the gradient reaches W through σ as
    in the paper (eq. 12), and W_SN is invariant to rescaling W. Training-mode calls (the
    model must be called with `training=True`) advance u; inference uses the stored u
    (σ = ‖W uᵀ‖) and changes nothing. The kernel variable keeps the raw W: it is never
    overwritten, so the optimizer's float32 updates are kept whatever the compute dtype.

    Mixed precision: the wrapper's own dtype policy is float32, so the power iteration and σ
    are computed in float32 on the unrounded kernel (a mixed-precision layer would read its
    variables as bfloat16). The wrapped layer's matmul or convolution runs in that layer's
    compute dtype (bfloat16 under `mixed_bfloat16`), and the output has that dtype.

    Args:
      layer: a `keras.layers.Dense`, `Conv1D`, `Conv2D` or `Conv3D`; its `call` is replaced by
        the same computation on W_SN (a convolution through its `convolution_op`).
      power_iterations: power-iteration steps per training call (1 in the paper: u carries
        over between calls, so the estimate converges over training).

    Shapes: those of the wrapped layer.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(layer, **kwargs)
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise ValueError(f"SpectralNorm wraps Dense or Conv1D/2D/3D layers, got {type(layer).__name__}")
        if getattr(layer, "padding", None) == "causal":  # Conv1D pads itself in `call`, which the wrapper bypasses
            raise ValueError("SpectralNorm does not wrap a Conv1D with padding='causal'; pad the inputs and use 'valid'")
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or power_iterations < 1:
            raise ValueError(f"power_iterations must be a positive integer, got {power_iterations!r}")
        if self.compute_dtype != self.variable_dtype:
            raise ValueError(
                f"SpectralNorm's own dtype must not be mixed (got {self.dtype_policy.name}); the wrapped layer's "
                "dtype sets the compute precision"
            )
        self.power_iterations = power_iterations

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.layer.kernel.shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            autocast=False,
            name="vector_u",
        )
        # A unit vector, as power iteration keeps it: σ = v W uᵀ scales with |u|, so a raw
        # N(0, 1) draw (|u| ≈ √out) made an untrained layer's inference-mode σ that much too
        # large, and its kernel that much too small.
        self.vector_u.assign(_l2_normalize(ops.convert_to_tensor(self.vector_u)))

    def normalized_kernel(self, training=False):
        """W / σ(W) in float32, in the kernel's shape; in training mode u is advanced first."""
        kernel = ops.convert_to_tensor(self.layer.kernel)
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        u = ops.convert_to_tensor(self.vector_u)
        if training:
            for _ in range(self.power_iterations):
                v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))
                u = _l2_normalize(ops.matmul(v, matrix))
            u = ops.stop_gradient(u)
            self.vector_u.assign(u)
        v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(matrix))))
        sigma = ops.matmul(ops.matmul(v, matrix), ops.transpose(u))[0, 0]
        return kernel / ops.maximum(sigma, _NORM_EPSILON)

    def call(self, inputs, training=None):
        layer = self.layer
        dtype = layer.compute_dtype
        inputs = ops.cast(inputs, dtype)
        kernel = ops.cast(self.normalized_kernel(training=bool(training)), dtype)
        if isinstance(layer, keras.layers.Dense):
            outputs = ops.matmul(inputs, kernel)
        else:
            outputs = layer.convolution_op(inputs, kernel)
        if layer.bias is not None:
            bias = ops.cast(layer.bias, dtype)
            if not isinstance(layer, keras.layers.Dense) and layer.data_format == "channels_first":
                bias = ops.reshape(bias, (1, -1) + (1,) * layer.rank)
            outputs = outputs + bias
        if layer.activation is not None:
            outputs = layer.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.layer.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(power_iterations=self.power_iterations)
        return config
