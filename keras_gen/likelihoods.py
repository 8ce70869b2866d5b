"""Exact discrete likelihoods of images, from tensorflow-probability distributions.

An image x of shape [H, W, C] with integer sub-pixels in {0, ..., 255} has
log p(x) = sum_{i, c} log p(x_{i,c} | context), each factor a 256-way categorical whose
logits a model predicts. Bits per dimension = -log p(x) / (H * W * C * ln 2). The other heads:
PixelCNN++'s discretised logistic mixture over the same 256 levels, and a Bernoulli per
sub-pixel for binarised images (levels 0 and 255 only; bits per dimension then count binary
dimensions).
"""
import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

NUM_LEVELS = 256
BINARY_THRESHOLD = 128  # binarised images: levels >= 128 are 1 (255), the others 0


def categorical_pixel_log_prob(logits, images):
    """log p(x_{i,c} | context) for every sub-pixel.

    Args:
      logits: float `[B, H, W, C, 256]` (cast to float32).
      images: integer `[B, H, W, C]` values in [0, 255].
    Returns:
      float32 `[B, H, W, C]`, in nats.
    """
    dist = tfd.Categorical(logits=tf.cast(logits, tf.float32))
    return dist.log_prob(tf.cast(images, tf.int32))


def bits_per_dim(log_prob_nats, num_dims):
    """-log p / (num_dims * ln 2): nats per image -> bits per sub-pixel."""
    return -log_prob_nats / (float(num_dims) * math.log(2.0))


# -- discretised logistic mixture (PixelCNN++) --------------------------------------------------

MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on log s (scale in [-1, 1] units): s >= 9e-4, 0.12 levels


def logistic_mixture_size(channels: int, num_mixtures: int) -> int:
    """Outputs per pixel of a K-component mixture over C sub-pixels: K (mixture logits) +
    K·C (means) + K·C (log scales) + K·C(C−1)/2 (linear coupling coefficients)."""
    return num_mixtures * (1 + 2 * channels + channels * (channels - 1) // 2)


def split_logistic_mixture(params, channels: int, num_mixtures: int):
    """`[..., logistic_mixture_size]` -> `(logits [..., K], means [..., C, K], log_scales
    [..., C, K], coeffs [..., C(C−1)/2, K])`, all float32; coefficients squashed by tanh,
    log scales floored at `MIN_LOG_SCALE`."""
    params = tf.cast(params, tf.float32)
    k, c = num_mixtures, channels
    pairs = c * (c - 1) // 2
    batch = tf.shape(params)[:-1]
    # One split, not a slice per block: the samplers build this once per sub-pixel, and each
    # slice is several graph nodes to trace and run.
    logits, means, log_scales, coeffs = tf.split(params, [k, c * k, c * k, pairs * k], axis=-1)

    def blocks(x, rows):
        return tf.reshape(x, tf.concat([batch, [rows, k]], 0))

    means = blocks(means, c)
    log_scales = tf.maximum(blocks(log_scales, c), MIN_LOG_SCALE)
    coeffs = tf.tanh(blocks(coeffs, pairs)) if pairs else tf.zeros(tf.concat([batch, [0, k]], 0))
    return logits, means, log_scales, coeffs


def _coupled_means(means, coeffs, scaled):
    """μ_c + Σ_{c'<c} a_{c,c'} x_{c'} per component (PixelCNN++'s linear RGB coupling: G on R,
    B on R and G), with `scaled` the observed sub-pixels in [-1, 1], `[..., C]`."""
    channels = means.shape[-2]
    if channels == 1:
        return means
    means = tf.unstack(means, axis=-2)
    coeffs = tf.unstack(coeffs, axis=-2)
    scaled = tf.unstack(scaled[..., None], axis=-2)  # each [..., 1]
    out, pair = [means[0]], 0
    for c in range(1, channels):
        m = means[c]
        for earlier in range(c):
            m = m + coeffs[pair] * scaled[earlier]
            pair += 1
        out.append(m)
    return tf.stack(out, axis=-2)


def discretised_logistic(mean, log_scale):
    """The distribution over {0, ..., 255} of a logistic with `mean` and log `log_scale` in
    [-1, 1] units, binned at the 256 levels: bin v holds (v − ½, v + ½] in pixel units, and
    the edge bins 0 and 255 take the tails (`tfd.QuantizedDistribution` of a `tfd.Logistic`).
    """
    scale = tf.exp(log_scale) * HALF_RANGE
    # QuantizedDistribution puts (j − 1, j] in bin j: shift by ½ to centre bin v on v.
    return tfd.QuantizedDistribution(
        tfd.Logistic(loc=(mean + 1.0) * HALF_RANGE - 0.5, scale=scale), low=0.0, high=float(NUM_LEVELS - 1)
    )


HALF_RANGE = (NUM_LEVELS - 1) / 2.0  # 127.5: [-1, 1] units -> pixel levels


def discretised_logistic_log_prob(values, mean, log_scale):
    """`discretised_logistic(mean, log_scale).log_prob(values)` in closed form, float32, the
    arguments broadcast together (`values` float levels in [0, 255]).

    With a = (v − ½ − m)/s and b = (v + ½ − m)/s (m, s the logistic's location and scale in
    pixel units), bin v holds σ(b) − σ(a) = σ(b) σ(−a) (1 − e^(a−b)), so

        log p(v) = −softplus(−b) − softplus(a) + log(−expm1(−1/s))     (0 < v < 255)
        log p(0) = −softplus(−b),    log p(255) = −softplus(a)           (the tails),

    every term finite and accurate at any location and scale. The samplers use it (the tests
    hold it equal to TFP's): a few operations, where `tfd.QuantizedDistribution`'s general
    log_prob builds about ten times the graph, which made most of the time of tracing and
    running PixelCNN++'s colour samplers.
    """
    scale = tf.exp(log_scale) * HALF_RANGE
    location = (mean + 1.0) * HALF_RANGE
    inverse = 1.0 / scale
    centre = (values - location) * inverse
    a, b = centre - 0.5 * inverse, centre + 0.5 * inverse
    upper, lower = -tf.nn.softplus(-b), -tf.nn.softplus(a)  # log σ(b), log σ(−a)
    inner = upper + lower + tf.math.log(-tf.math.expm1(-inverse))
    first = tf.equal(values, 0.0)
    last = tf.equal(values, float(NUM_LEVELS - 1))
    return tf.where(first, upper, tf.where(last, lower, inner))


def discretised_logistic_levels_log_prob(mean, log_scale):
    """`discretised_logistic_log_prob` at all 256 levels v at once: float32 `[..., 256, K]`
    from `mean`, `log_scale` `[..., K]` (the samplers' 256-way tables)."""
    levels = tf.range(NUM_LEVELS, dtype=tf.float32)[:, None]  # [256, 1]
    return discretised_logistic_log_prob(levels, mean[..., None, :], log_scale[..., None, :])


def logistic_mixture_pixel_log_prob(params, images, num_mixtures: int):
    """log p(x_{i,c} | x_{<i}, x_{i,<c}) of every sub-pixel under a discretised logistic mixture.

    Per pixel, p(x) = Σ_k π_k Π_c Logistic_d(x_c; μ_{c,k}(x_{<c}), s_{c,k}) (Salimans et al.
    2017): one mixture over the whole pixel, so a sub-pixel's conditional is the ratio
    p(x_{≤c}) / p(x_{<c}) of the mixture's marginals, and the C conditionals of a pixel sum
    (in log space) to its log-probability.

    Args:
      params: float `[B, H, W, logistic_mixture_size(C, K)]`.
      images: integer `[B, H, W, C]` in [0, 255].
    Returns:
      float32 `[B, H, W, C]`, nats.
    """
    values = tf.cast(images, tf.float32)
    channels = images.shape[-1]
    logits, means, log_scales, coeffs = split_logistic_mixture(params, channels, num_mixtures)
    scaled = values / HALF_RANGE - 1.0
    mu = _coupled_means(means, coeffs, scaled)
    # The closed form of TFP's QuantizedDistribution(Logistic) (tests hold the two equal), as
    # TFP's own PixelCNN writes it: the general log_prob differences two CDFs, which round to
    # the same float32 at log scales above about 14 and gave -inf and NaN gradients there.
    component = discretised_logistic_log_prob(values[..., None], mu, log_scales)  # [B, H, W, C, K]
    log_weights = tf.nn.log_softmax(logits, axis=-1)[..., None, :]  # [B, H, W, 1, K]
    joint = tf.reduce_logsumexp(log_weights + tf.cumsum(component, axis=-2), axis=-1)  # log p(x_{<=c})
    return joint - tf.concat([tf.zeros_like(joint[..., :1]), joint[..., :-1]], axis=-1)


def _subpixel_mixture(params, earlier, channel: int, num_mixtures: int, channels: int):
    """Sub-pixel `channel`'s mixture given the pixel's earlier sub-pixels: `(log_weights [B, K],
    means [B, K], log_scales [B, K])`, the weights the posterior over components given
    x_{<c} and the means coupled to x_{<c} (see `logistic_mixture_subpixel_log_probs`)."""
    logits, means, log_scales, coeffs = split_logistic_mixture(params, channels, num_mixtures)
    values = tf.cast(earlier, tf.float32)
    scaled = values / HALF_RANGE - 1.0
    mu = _coupled_means(means, coeffs, scaled)  # [B, C, K]; channel c reads x_{<c} only
    log_weights = tf.nn.log_softmax(logits, axis=-1)
    if channel:
        seen = discretised_logistic_log_prob(values[:, :channel, None], mu[:, :channel], log_scales[:, :channel])
        log_weights = tf.nn.log_softmax(log_weights + tf.reduce_sum(seen, axis=1), axis=-1)  # posterior over k
    return log_weights, mu[:, channel], log_scales[:, channel]


def logistic_mixture_subpixel_log_probs(params, earlier, channel: int, num_mixtures: int, channels: int):
    """log p(x_c = v | x_{<c}) for all 256 values v of sub-pixel `channel` of one pixel.

    Args:
      params: float `[B, logistic_mixture_size(C, K)]`, the pixel's parameters.
      earlier: integer `[B, C]`, the pixel's sub-pixels (only those before `channel` are read).
      channel: which sub-pixel (a Python int).
    Returns:
      float32 `[B, 256]` log-probabilities that sum (in probability) to 1.
    """
    log_weights, means, log_scales = _subpixel_mixture(params, earlier, channel, num_mixtures, channels)
    component = discretised_logistic_levels_log_prob(means, log_scales)  # [B, 256, K]
    return tf.reduce_logsumexp(log_weights[:, None, :] + component, axis=-1)


def logistic_mixture_subpixel_sample(params, earlier, channel: int, num_mixtures: int, channels: int, seed):
    """One draw of sub-pixel `channel` from p(x_c | x_{<c}), int32 `[B]`, as PixelCNN++ draws:
    a component k from the posterior weights, then y from the continuous logistic
    (m_k, s_k) by its inverse CDF, y = m + s·(log u − log(1 − u)) with u uniform, and the
    level whose bin holds y, v = ⌈y − ½⌉ clipped to [0, 255] (the edge levels take the tails).

    That is an exact draw from the same distribution as `logistic_mixture_subpixel_log_probs`
    (bin v's mass is the logistic's over (v − ½, v + ½]) at O(K) work per sub-pixel instead
    of the 256 × K table. float32 u lies in [2^-24, 1 − 2^-23], so y reaches 16 scales either
    side of m; the logistic has 1e-7 of its mass beyond. `seed` is a stateless `[2]` seed,
    split into the component's and the logistic's.

    Args: as `logistic_mixture_subpixel_log_probs`, and `seed`.
    """
    log_weights, means, log_scales = _subpixel_mixture(params, earlier, channel, num_mixtures, channels)
    component_seed, logistic_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    k = tf.random.stateless_categorical(log_weights, 1, seed=component_seed, dtype=tf.int32)  # [B, 1]
    mean = tf.gather(means, k, batch_dims=1)[:, 0]
    scale = tf.exp(tf.gather(log_scales, k, batch_dims=1)[:, 0]) * HALF_RANGE
    u = tf.random.stateless_uniform(tf.shape(mean), seed=logistic_seed, minval=2.0 ** -24, maxval=1.0)
    y = (mean + 1.0) * HALF_RANGE + scale * (tf.math.log(u) - tf.math.log1p(-u))
    return tf.cast(tf.clip_by_value(tf.math.ceil(y - 0.5), 0.0, NUM_LEVELS - 1.0), tf.int32)


# -- Bernoulli (binarised images) ---------------------------------------------------------------

def binarised(images, threshold: int = BINARY_THRESHOLD):
    """Integer images with every value >= `threshold` set to 255 and the others to 0 (the
    levels a Bernoulli head models), in the images' dtype."""
    images = tf.convert_to_tensor(images)
    return tf.where(images >= tf.cast(threshold, images.dtype), tf.cast(255, images.dtype),
                    tf.zeros_like(images))


def bernoulli_levels_log_prob(logits):
    """The 256 levels' log-probabilities of a Bernoulli sub-pixel drawn as 0 or 255: float32
    `[..., 256]` from log-odds `[...]` of a 255 (a 1): log σ(−l) at level 0, log σ(l) at 255,
    −inf at every other level, so a categorical draw over them gives 0 or 255."""
    logits = tf.cast(logits, tf.float32)[..., None]
    levels = tf.range(NUM_LEVELS)
    return tf.where(levels == 0, tf.math.log_sigmoid(-logits),
                    tf.where(levels == NUM_LEVELS - 1, tf.math.log_sigmoid(logits), -math.inf))


def bernoulli_pixel_log_prob(logits, images):
    """log p(x_{i,c}) of binarised sub-pixels (0 or 1; uint8 255 also reads as 1).

    Args:
      logits: float `[B, H, W, C]`, log-odds of a 1.
      images: integer `[B, H, W, C]`, values 0 or 1 (or 0 / 255).
    Returns:
      float32 `[B, H, W, C]`, nats.
    """
    ones = tf.cast(tf.cast(images, tf.int32) > 0, tf.int32)
    return tfd.Bernoulli(logits=tf.cast(logits, tf.float32)).log_prob(ones)
