"""SelfAttention2D: every position of a feature map attends to every other (SAGAN)."""
import keras
from keras import ops

from keras_gen.layers.spectral_norm import SpectralNorm


@keras.saving.register_keras_serializable(package="keras_gen")
class SelfAttention2D(keras.layers.Layer):
    """Self-attention over the positions of a feature map, added to it with a learned weight.

    Zhang et al. (2019), "Self-Attention Generative Adversarial Networks", sec. 3; used by
    BigGAN (Brock et al. 2019) in both players. For x `[B, H, W, C]` with N = H·W positions
    and 1x1 convolutions (no bias) f, g: C -> C/8, h: C -> C/2 and v: C/2 -> C,

        s_ji = f(x_j) · g(x_i)                       (query at j, key at i),
        β_ji = exp(s_ji) / Σ_i' exp(s_ji')            (softmax over all positions i),
        o_j  = v(Σ_i β_ji h(x_i)),
        y_j  = x_j + γ · o_j,

    with γ a scalar weight initialised to 0, so the layer starts as the identity and the
    network learns how much non-local evidence to mix in. C/8 and C/2 are rounded down, at
    least 1. With `pool=True` the keys g(x) and values h(x) are max-pooled 2x2 first (the
    SAGAN/BigGAN code's saving, N/4 keys; "same" padding, so odd sizes work); by default
    every position is a key, exactly as in the equations above. The logits and the softmax are
    computed in float32 whatever the compute dtype.

    Args:
      spectral_norm: wrap the four 1x1 convolutions in `SpectralNorm` (as SAGAN and BigGAN do,
        in both players).
      pool: max-pool keys and values 2x2.

    Shapes: `[B, H, W, C]` -> `[B, H, W, C]` (H, W and C known). Attention maps are
    `[B, N, N]` (`[B, N, N/4]` pooled): memory grows with N², keep it to small maps.
    """

    def __init__(self, spectral_norm=False, pool=False, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.pool = bool(pool)

    def _conv(self, filters, name):
        conv = keras.layers.Conv2D(filters, 1, use_bias=False, dtype=self.dtype_policy, name=name)
        return SpectralNorm(conv, name=f"{name}_sn") if self.spectral_norm else conv

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:]):
            raise ValueError(f"SelfAttention2D needs inputs [batch, height, width, channels] of known size, got {input_shape}")
        channels = int(input_shape[-1])
        self.key_channels = max(1, channels // 8)
        self.value_channels = max(1, channels // 2)
        self.query = self._conv(self.key_channels, "query")
        self.key = self._conv(self.key_channels, "key")
        self.value = self._conv(self.value_channels, "value")
        self.attention_output = self._conv(channels, "attention_output")
        for conv in (self.query, self.key, self.value):
            conv.build(input_shape)
        self.attention_output.build((*input_shape[:-1], self.value_channels))
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    def _positions(self, x):
        """`[B, h, w, c]` -> `[B, h·w, c]`, positions in row-major order."""
        _, height, width, channels = x.shape
        return ops.reshape(x, (-1, height * width, channels))

    def call(self, inputs, training=None):
        _, height, width, _ = inputs.shape
        queries = self.query(inputs, training=training)
        keys = self.key(inputs, training=training)
        values = self.value(inputs, training=training)
        if self.pool:
            keys = ops.max_pool(keys, 2, strides=2, padding="same")
            values = ops.max_pool(values, 2, strides=2, padding="same")
        logits = ops.matmul(
            ops.cast(self._positions(queries), "float32"),
            ops.transpose(ops.cast(self._positions(keys), "float32"), (0, 2, 1)),
        )  # [B, N, keys]
        attention = ops.cast(ops.softmax(logits, axis=-1), values.dtype)
        attended = ops.matmul(attention, self._positions(values))  # [B, N, C/2]
        attended = ops.reshape(attended, (-1, height, width, self.value_channels))
        outputs = self.attention_output(attended, training=training)
        return inputs + ops.cast(self.gamma, inputs.dtype) * ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(spectral_norm=self.spectral_norm, pool=self.pool)
        return config
