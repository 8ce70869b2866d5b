"""keras_gen.likelihoods: each head is a distribution over the 256 levels, equal to an
independent numpy computation, finite with finite gradients at the edges."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_gen import likelihoods as L

K = 3


def numpy_mixture_log_prob(params, image, k):
    """log p(pixel) of one pixel `[C]` under a discretised logistic mixture, in float64,
    written from the paper's definition (Salimans et al. 2017, eq. 2 and section 2.2)."""
    c = len(image)
    params = np.asarray(params, np.float64)
    logits, rest = params[:k], params[k:]
    means = rest[: c * k].reshape(c, k)
    log_scales = np.maximum(rest[c * k: 2 * c * k].reshape(c, k), L.MIN_LOG_SCALE)
    coeffs = np.tanh(rest[2 * c * k:].reshape(-1, k))
    x = np.asarray(image, np.float64) / 127.5 - 1.0
    mu = means.copy()
    pair = 0
    for ch in range(1, c):
        for earlier in range(ch):
            mu[ch] += coeffs[pair] * x[earlier]
            pair += 1

    def log_bin(value, mean, s):
        """log P(bin of `value`) of a logistic, by CDFs below the mean and survival
        functions above it, so that neither side subtracts two numbers near 1."""
        lower = -np.inf if value == 0 else (x_of(value) - 1 / 255 - mean) / s
        upper = np.inf if value == 255 else (x_of(value) + 1 / 255 - mean) / s
        if lower + upper > 0:  # upper tail: P = sf(lower) - sf(upper)
            big, small = -np.logaddexp(0.0, lower), -np.logaddexp(0.0, upper)
        else:  # P = cdf(upper) - cdf(lower)
            big, small = -np.logaddexp(0.0, -upper), -np.logaddexp(0.0, -lower)
        return big + np.log1p(-np.exp(small - big))

    def x_of(value):
        return value / 127.5 - 1.0

    log_weights = logits - np.logaddexp.reduce(logits)
    per_component = [
        log_weights[comp] + sum(log_bin(image[ch], mu[ch, comp], np.exp(log_scales[ch, comp])) for ch in range(c))
        for comp in range(k)
    ]
    return np.logaddexp.reduce(per_component)


@pytest.mark.parametrize("channels", [1, 3])
def test_logistic_mixture_equals_numpy_and_pixel_conditionals_sum_to_the_pixel(channels):
    rng = np.random.default_rng(channels)
    size = L.logistic_mixture_size(channels, K)
    assert size == K * (1 + 2 * channels + channels * (channels - 1) // 2)  # 10·K for RGB, as PixelCNN++
    params = rng.normal(size=(4, 3, 3, size)).astype(np.float32)
    params[..., K + channels * K: K + 2 * channels * K] -= 2.0  # scales around e^-2: peaked, as trained
    images = rng.integers(0, 256, size=(4, 3, 3, channels))
    images[0, 0, 0] = 0
    images[0, 0, 1] = 255
    ours = L.logistic_mixture_pixel_log_prob(params, images, K).numpy()
    for b, i, j in itertools.product(range(4), range(3), range(3)):
        expected = numpy_mixture_log_prob(params[b, i, j], images[b, i, j], K)
        assert ours[b, i, j].sum() == pytest.approx(expected, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mean, log_scale", [(0.0, 0.0), (0.3, L.MIN_LOG_SCALE), (0.3, -12.0), (-40.0, -3.0),
                                             (40.0, -3.0), (1.0, 5.0), (-1.0, -7.0)])
def test_every_subpixel_is_a_distribution_over_256_levels_even_at_extremes(channels, mean, log_scale):
    size = L.logistic_mixture_size(channels, K)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(5, size)).astype(np.float32)
    params[:, K: K + channels * K] = mean
    params[:, K + channels * K: K + 2 * channels * K] = log_scale
    earlier = rng.integers(0, 256, size=(5, channels))
    for channel in range(channels):
        log_probs = L.logistic_mixture_subpixel_log_probs(params, earlier, channel, K, channels).numpy()
        assert log_probs.shape == (5, 256) and not np.isnan(log_probs).any()
        np.testing.assert_allclose(np.exp(log_probs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
        # The sampler's 256-way table and the training likelihood agree on the observed value
        # (to float32's precision for a difference of two CDFs: with a scale of e^5, 150 times
        # the data range, each bin holds 1e-5 of the mass between CDF values near 0.5).
        observed = L.logistic_mixture_pixel_log_prob(params[:, None, None], earlier[:, None, None], K).numpy()
        np.testing.assert_allclose(log_probs[np.arange(5), earlier[:, channel]], observed[:, 0, 0, channel],
                                   rtol=1e-3 if log_scale > 0 else 1e-5, atol=1e-4)


@pytest.mark.parametrize("value", [0, 1, 127, 254, 255])
@pytest.mark.parametrize("mean, log_scale", [(0.0, 0.0), (0.9, L.MIN_LOG_SCALE), (-30.0, -5.0), (30.0, -5.0),
                                             (0.3, 15.0), (-2.0, 50.0)])
def test_log_probs_and_gradients_are_finite_at_the_edges(value, mean, log_scale):
    """Also at huge scales (log scale 15 and 50, where TFP's general log_prob differences
    two CDFs that round to one float32 and gave -inf, with NaN gradients)."""
    params = np.zeros((1, 1, 1, L.logistic_mixture_size(1, K)), np.float32)
    params[..., K: 2 * K] = mean
    params[..., 2 * K:] = log_scale
    params = tf.Variable(params)
    with tf.GradientTape() as tape:
        lp = L.logistic_mixture_pixel_log_prob(params, np.full((1, 1, 1, 1), value), K)
    grad = tape.gradient(lp, params).numpy()
    assert np.isfinite(lp.numpy()).all() and np.isfinite(grad).all(), (lp.numpy(), grad)


def test_the_edge_bins_take_the_tails():
    # A logistic centred far below 0 puts (almost) all its mass in bin 0, far above in bin 255.
    dist = L.discretised_logistic(tf.constant([-3.0, 3.0]), tf.constant([-2.0, -2.0]))
    probs = np.exp(dist.log_prob(tf.constant([[0.0], [255.0]])).numpy())
    np.testing.assert_allclose(probs, [[1.0, 0.0], [0.0, 1.0]], atol=1e-6)


def test_categorical_and_bernoulli_heads_equal_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 2, 2, 1, 256)).astype(np.float32) * 3
    images = rng.integers(0, 256, size=(2, 2, 2, 1))
    log_softmax = logits - np.log(np.exp(logits.astype(np.float64)).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax, images[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(L.categorical_pixel_log_prob(logits, images).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(log_softmax).sum(-1), 1.0, atol=1e-6)

    odds = rng.normal(size=(2, 3, 3, 1)).astype(np.float32) * 4
    binary = rng.integers(0, 2, size=(2, 3, 3, 1))
    p_one = 1.0 / (1.0 + np.exp(-odds.astype(np.float64)))
    expected = np.where(binary == 1, np.log(p_one), np.log1p(-p_one))
    np.testing.assert_allclose(L.bernoulli_pixel_log_prob(odds, binary).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(L.bernoulli_pixel_log_prob(odds, binary * 255).numpy(),
                                  L.bernoulli_pixel_log_prob(odds, binary).numpy())


@pytest.mark.parametrize("mean, log_scale", [(0.0, 0.0), (0.3, L.MIN_LOG_SCALE), (0.3, -12.0), (-40.0, -3.0),
                                             (40.0, -3.0), (1.0, 5.0), (0.3, 30.0), (-1.0, -7.0), (0.999, -6.0)])
def test_the_closed_form_table_of_256_levels_is_tfps_discretised_logistic(mean, log_scale):
    """The samplers' table (`discretised_logistic_levels_log_prob`) against
    `tfd.QuantizedDistribution(tfd.Logistic)`'s log_prob at every level, tails included."""
    means = tf.constant([[mean, -mean, 0.5 * mean]], tf.float32)  # [1, K = 3]
    log_scales = tf.constant([[log_scale, log_scale, -2.0]], tf.float32)
    table = L.discretised_logistic_levels_log_prob(means, log_scales).numpy()  # [1, 256, 3]
    levels = tf.range(L.NUM_LEVELS, dtype=tf.float32)[None, :, None]
    expected = L.discretised_logistic(means[:, None], log_scales[:, None]).log_prob(levels).numpy()
    assert table.shape == expected.shape == (1, 256, 3) and np.isfinite(table).all()
    mass = expected > -80.0  # where float32 holds the probability; below, both are far under any draw
    np.testing.assert_allclose(table[mass], expected[mass], rtol=1e-3 if log_scale > 0 else 1e-5, atol=1e-4)
    np.testing.assert_allclose(np.exp(table.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
    # At given values (the samplers' posterior over components reads the pixel's earlier
    # sub-pixels so): the table's entries and TFP's, edges included (the same formula; the
    # last bit may differ with the shape's vectorisation).
    values = tf.constant([[0.0, 128.0, 255.0], [1.0, 254.0, 77.0]])  # [2, K]
    at_values = L.discretised_logistic_log_prob(values, means, log_scales).numpy()
    np.testing.assert_allclose(at_values, np.take_along_axis(table[0], values.numpy().astype(int), axis=0),
                               rtol=1e-6, atol=1e-6)
    expected = L.discretised_logistic(means, log_scales).log_prob(values).numpy()
    mass = expected > -80.0
    np.testing.assert_allclose(at_values[mass], expected[mass], rtol=1e-3 if log_scale > 0 else 1e-5, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_direct_draw_follows_the_256_level_conditionals(channels):
    """`logistic_mixture_subpixel_sample` (a component, then a binned logistic) draws from the
    same distribution as the 256-value table: 40,000 draws per setting, total variation from
    the table under 0.03. Three separated components (levels 51, 127 and 204, scales of 2.3
    levels) make mistakes show: drawing the component from the prior instead of the posterior
    given the earlier sub-pixels, the wrong coupling or a bin edge off by one level."""
    rng = np.random.default_rng(channels)
    size = L.logistic_mixture_size(channels, K)
    params = np.zeros((3, size), np.float32)
    params[:, K: K + channels * K] = np.tile([-0.6, 0.0, 0.6], channels)  # component k's mean, every channel
    params[:, K + channels * K: K + 2 * channels * K] = -4.0
    params[:, K + 2 * channels * K:] = 0.2  # coupling: a shift of up to 0.2 x the earlier values
    params[2] = rng.normal(size=size)  # and one arbitrary setting, peaked as trained
    params[2, K + channels * K: K + 2 * channels * K] -= 2.5
    earlier = np.array([[204] * channels, [51] * channels, rng.integers(0, 256, size=channels)])
    draws = 40_000
    for channel in range(channels):
        table = np.exp(L.logistic_mixture_subpixel_log_probs(params, earlier, channel, K, channels).numpy())
        values = L.logistic_mixture_subpixel_sample(np.repeat(params, draws, 0), np.repeat(earlier, draws, 0),
                                                    channel, K, channels, seed=tf.constant([3, channel])).numpy()
        assert values.dtype == np.int32 and values.min() >= 0 and values.max() <= 255
        for row in range(3):
            empirical = np.bincount(values[row * draws:(row + 1) * draws], minlength=256) / draws
            distance = 0.5 * np.abs(empirical - table[row]).sum()
            assert distance < 0.03, (channel, row, distance)


@pytest.mark.parametrize("level, expected", [(100.0, 100), (100.9, 101), (0.0, 0), (254.9, 255), (-40.0, 0),
                                             (300.0, 255)])
def test_the_direct_draw_bins_a_narrow_logistic_at_its_level(level, expected):
    """At the narrowest scale (0.12 levels) 96% or more of the mass lies in the bin holding
    the mean, (v − ½, v + ½] (the edge bins unbounded): a wrong rounding rule (floor, or no
    half-level shift) sends most draws of 100.9 to 100."""
    params = np.zeros((1000, L.logistic_mixture_size(1, 1)), np.float32)
    params[:, 1] = level / 127.5 - 1.0
    params[:, 2] = L.MIN_LOG_SCALE
    values = L.logistic_mixture_subpixel_sample(params, np.zeros((1000, 1)), 0, 1, 1, seed=tf.constant([0, 0]))
    assert np.mean(values.numpy() == expected) > 0.95
