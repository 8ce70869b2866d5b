"""Cached sampling (keras_gen.networks.cached): the network a pixel at a time from cached
activations gives the network's outputs, and the sampler built on it draws exactly the images
of the naive sampler (the network run once per sub-pixel) for the same seeds."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.models import GatedPixelCNN, PixelCNN, PixelCNNPlusPlus, PixelRNN
from keras_gen.networks import cached
from keras_gen.networks import gated_pixelcnn as gated_networks

# Batch 3 and widths other than 3 (and heights other than widths): a transposed or wrongly
# broadcast axis cannot pass unnoticed.
CONFIGS = {
    "pixelcnn-grey": (PixelCNN, (8, 7, 1), {"filters": 8, "num_layers": 2, "first_kernel_size": 5}),
    "pixelcnn-rgb": (PixelCNN, (5, 6, 3), {"filters": 12, "num_layers": 2, "first_kernel_size": 5}),
    # 1x1 residual layers see no rows above; a 3x3 first layer one row.
    "pixelcnn-bernoulli-rgb": (PixelCNN, (5, 6, 3), {"filters": 12, "num_layers": 2, "first_kernel_size": 3,
                                                     "head": "bernoulli"}),
    "pixelcnn-1x1": (PixelCNN, (6, 5, 1), {"filters": 8, "num_layers": 1, "kernel_size": 1, "first_kernel_size": 3}),
    "gated-grey": (GatedPixelCNN, (8, 7, 1), {"filters": 8, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 5}),
    "gated-rgb": (GatedPixelCNN, (5, 6, 3), {"filters": 12, "num_layers": 2, "kernel_size": 3, "first_kernel_size": 3}),
    "gated-conditional-grey": (GatedPixelCNN, (8, 7, 1), {"filters": 8, "num_layers": 2, "kernel_size": 3,
                                                          "first_kernel_size": 3, "num_classes": 4}),
    "gated-conditional-rgb": (GatedPixelCNN, (5, 6, 3), {"filters": 12, "num_layers": 1, "kernel_size": 5,
                                                         "first_kernel_size": 3, "num_classes": 3}),
    # 1 x 1 vertical convolutions: a cache of no rows.
    "gated-kernel-1": (GatedPixelCNN, (6, 5, 1), {"filters": 8, "num_layers": 2, "kernel_size": 1,
                                                  "first_kernel_size": 3}),
    # Row LSTMs: states carried down the rows, K_is windows along them (of 1 and 2 columns).
    "pixelrnn-grey": (PixelRNN, (8, 7, 1), {"hidden_size": 6, "num_layers": 2, "first_kernel_size": 5}),
    "pixelrnn-rgb": (PixelRNN, (5, 6, 3), {"hidden_size": 6, "num_layers": 2, "first_kernel_size": 3,
                                           "input_kernel_size": 5, "state_kernel_size": 1}),
    "pixelrnn-conditional-grey": (PixelRNN, (6, 5, 1), {"hidden_size": 4, "num_layers": 2, "first_kernel_size": 3,
                                                        "num_classes": 4}),
    # Diagonal BiLSTMs: left to right along the row, right to left swept when a row ends.
    "diagonal-grey": (PixelRNN, (8, 7, 1), {"hidden_size": 6, "num_layers": 2, "first_kernel_size": 5,
                                            "rnn": "diagonal_bilstm"}),
    "diagonal-rgb": (PixelRNN, (5, 6, 3), {"hidden_size": 6, "num_layers": 2, "first_kernel_size": 3,
                                           "rnn": "diagonal_bilstm"}),
    "diagonal-conditional-grey": (PixelRNN, (6, 5, 1), {"hidden_size": 4, "num_layers": 2, "first_kernel_size": 3,
                                                        "num_classes": 4, "rnn": "diagonal_bilstm"}),
    # PixelCNN++: three resolutions (sizes divisible by 4), 0 to 2 blocks per resolution.
    "pixelcnnpp-grey": (PixelCNNPlusPlus, (8, 12, 1), {"filters": 6, "blocks_per_resolution": 1, "num_mixtures": 2}),
    "pixelcnnpp-rgb": (PixelCNNPlusPlus, (8, 8, 3), {"filters": 6, "blocks_per_resolution": 0, "num_mixtures": 2}),
    "pixelcnnpp-conditional-grey": (PixelCNNPlusPlus, (12, 8, 1), {"filters": 4, "blocks_per_resolution": 2,
                                                                   "num_mixtures": 3, "num_classes": 4}),
    # Sampled: the labels still enter, through the second pass's blocks (one per resolution
    # below the coarsest); the deep network above is checked pixel by pixel.
    "pixelcnnpp-conditional-small": (PixelCNNPlusPlus, (8, 8, 1), {"filters": 4, "blocks_per_resolution": 0,
                                                                   "num_mixtures": 3, "num_classes": 4}),
}
# How far the cached outputs may be from the traced network's, relative to the largest output.
# Float32 summation order only; but scrambled weights amplify rounding through the deep
# PixelCNN++ U-nets (2 passes x 3 resolutions), whose own eager and traced outputs differ by up
# to 1.6e-4 of the largest (a wrong tap or position gives errors of order 1).
TOLERANCE = {"pixelcnnpp-grey": 3e-4, "pixelcnnpp-conditional-grey": 3e-4}
LABELS = np.array([3, 0, 2], np.int32)
# The drivers (`_fill_graph`) are the same for every network: sampled on a few of them. The
# completion test below compares more of them with the naive sampler at temperature 1, among
# them PixelCNN++ in colour (its direct draw: a component, then a binned logistic), with one
# image of nothing known: a sample.
SAMPLED = ["pixelcnn-grey", "pixelcnn-rgb", "pixelcnn-bernoulli-rgb", "gated-conditional-grey", "gated-rgb",
           "gated-kernel-1", "pixelrnn-rgb", "pixelrnn-conditional-grey", "diagonal-rgb", "diagonal-conditional-grey",
           "pixelcnnpp-rgb", "pixelcnnpp-conditional-small"]
COMPLETED = ["pixelcnn-rgb", "pixelcnn-bernoulli-rgb", "gated-conditional-rgb", "pixelrnn-rgb", "diagonal-rgb",
             "pixelcnnpp-rgb"]

# (seed, temperature) of the draws compared; each temperature is a trace of the sampler. The
# completed networks' temperature 1 is compared there; PixelCNN++'s tempered draw from the
# 256-value table (shared with the other heads) here, in colour (the sub-pixels coupled) and
# with labels.
DRAWS = {**{name: [(1, 0.7), (2, 1.5)] for name in COMPLETED if name in SAMPLED},
         "pixelcnnpp-rgb": [(1, 0.7)], "pixelcnnpp-conditional-small": [(1, 0.7)]}
# Scrambled weights give the small conditional PixelCNN++ near-saturated mixtures: few distinct
# values among its 3 x 64 draws (9), where the other networks give dozens.
DISTINCT_VALUES = {"pixelcnnpp-conditional-small": 5}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def scrambled(model, seed=0, std=0.3):
    """Random weights far from the near-zero initial logits, so every layer matters."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, std, variable.shape).astype("float32"))
    return model


def build(name, precision="float32", std=0.3):
    cls, shape, kwargs = CONFIGS[name]
    return scrambled(cls(image_shape=shape, precision=precision, **kwargs), std=std)


def labels_for(model, n=3):
    return tf.constant(LABELS[:n] % model.num_classes) if model.conditional else None


def random_images(shape, n=3, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def network_outputs(model, images, labels):
    """The network on whole images, traced like every sampler (TensorFlow fuses differently
    when eager)."""
    return numpy(tf.function(lambda x: model._outputs(x, labels))(images))


def cached_outputs(model, images, labels):
    """The cached sampler over known images, as `_fill_graph` gives them to it (`observed`:
    binarised for a Bernoulli head)."""
    run = tf.function(lambda x: cached.raster_outputs(model.cached_sampler(labels),
                                                      model.images_to_float(model.observed(x))))
    return numpy(run(images))


def naive_sampler(model, n, labels=None):
    """`(seed, temperature) -> images` from the naive sampler, traced once."""
    fn = tf.function(lambda s, t: model._sample_graph(n, s, labels, t, cached=False), autograph=False)
    return lambda seed, temperature=1.0: numpy(fn(tf.constant(seed), tf.constant(temperature, tf.float32)))


def naive_sample(model, n, seed, labels=None, temperature=1.0):
    return naive_sampler(model, n, labels)(seed, temperature)


def naive_completer(model, labels=None):
    """`(images, known, seed) -> images` from the naive sampler, traced once."""
    fn = tf.function(lambda x, k, s: model._fill_graph(x, k, s, labels, 1.0, cached=False), autograph=False)
    return lambda images, known, seed: numpy(fn(tf.cast(np.where(known, images, 0), tf.int32), tf.constant(known),
                                                tf.constant(seed)))


@pytest.mark.parametrize("name", sorted(set(CONFIGS) - {"pixelcnnpp-conditional-small"}))  # compared deeper
def test_cached_outputs_equal_the_network_at_every_pixel(name):
    model = build(name)
    images = random_images(model.image_shape)
    labels = labels_for(model)
    expected = network_outputs(model, images, labels)
    got = cached_outputs(model, images, labels)
    assert got.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1.0  # the scrambled weights give far from uniform logits
    tolerance = TOLERANCE.get(name, 1e-5)
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("name", SAMPLED)
def test_cached_samples_are_the_naive_samples(name):
    model = build(name)
    labels = labels_for(model)
    naive = naive_sampler(model, 3, labels)
    first = None
    for seed, temperature in DRAWS.get(name, [(0, 1.0), (1, 0.7), (2, 1.5)]):
        got = numpy(model.sample_uint8(3, seed=seed, labels=None if labels is None else LABELS % model.num_classes,
                                       temperature=temperature))
        np.testing.assert_array_equal(got, naive(seed, temperature))
        first = got if first is None else first
    if getattr(model, "head", None) == "bernoulli":
        assert set(np.unique(first)) == {0, 255}  # both values drawn, no other
    else:
        assert len(np.unique(first)) > DISTINCT_VALUES.get(name, 10)  # draws, not one repeated value


@pytest.mark.parametrize("name", COMPLETED)
def test_cached_completion_is_the_naive_completion_and_keeps_known_subpixels(name):
    model = build(name)
    labels = labels_for(model)
    images = random_images(model.image_shape, seed=5)
    rng = np.random.default_rng(6)
    known = rng.random(images.shape) < 0.4  # scattered sub-pixels, some pixels partly known
    known[:, :2] = True  # and the top rows
    known[2] = False  # and one image with nothing known
    naive = naive_completer(model, labels)
    for seed in (0, 4):
        got = numpy(model.complete(images, known, seed=seed,
                                   labels=None if labels is None else LABELS % model.num_classes))
        np.testing.assert_array_equal(got, naive(images, known, seed))
        np.testing.assert_array_equal(got[known], numpy(model.observed(images))[known])  # binarised if Bernoulli
        assert (got[~known] != images[~known]).mean() > 0.9  # the others drawn


def test_sampling_goes_through_the_cache(monkeypatch):
    model = build("gated-conditional-grey")

    def fail(*args, **kwargs):
        raise AssertionError("the naive sampler ran")

    monkeypatch.setattr(model, "_fill_graph_naive", fail)
    images = numpy(model.sample_uint8(2, seed=1, labels=[0, 1]))  # `complete` shares `_fill_graph`
    assert images.shape == (2, 8, 7, 1)


def test_without_a_cached_sampler_the_naive_sampler_runs(monkeypatch):
    model = build("pixelcnn-grey")
    expected = naive_sample(model, 2, 5)
    monkeypatch.setattr(model, "cached_sampler", lambda labels=None: None)
    monkeypatch.setattr(model, "_fill_graph_cached", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
    np.testing.assert_array_equal(numpy(model.sample_uint8(2, seed=5)), expected)


def test_a_head_that_sees_no_subpixel_of_the_pixel():
    """`subpixel_causal=False` (a head that couples the sub-pixels itself): P parameters per
    pixel, none depending on any sub-pixel of that pixel."""
    shape = (5, 6, 3)
    network = gated_networks.network(shape, 6, 2, 3, 3, 10, "float32", subpixel_causal=False)
    scrambled(network)
    images = tf.constant(random_images(shape), tf.float32) / 127.5 - 1.0
    expected = numpy(tf.function(network)(images))
    sampler = gated_networks.CachedSampler(network, shape, 2, subpixel_causal=False)
    got = numpy(tf.function(lambda x: cached.raster_outputs(sampler, x))(images))
    assert got.shape == expected.shape == (3, 5, 6, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_mixed_bfloat16_pixelcnn_samples_are_the_naive_samples():
    """Under mixed_bfloat16 each layer sums in float32, adds its bias and rounds once, as the
    traced network's fused convolutions do: the same logits, so the same draws."""
    model = build("pixelcnn-rgb", precision="mixed_bfloat16")
    images = random_images(model.image_shape)
    np.testing.assert_array_equal(cached_outputs(model, images, None), network_outputs(model, images, None))
    naive = naive_sampler(model, 3)
    for seed in (0, 1):
        np.testing.assert_array_equal(numpy(model.sample_uint8(3, seed=seed)), naive(seed))


def test_mixed_bfloat16_gated_outputs_agree_to_bfloat16_precision():
    """The gated network's traced graph rounds a few intermediate values differently from the
    same layers evaluated a pixel at a time (TensorFlow's fusions depend on the graph), so here
    the logits agree to bfloat16 precision, not to the bit; the float32 logits are further."""
    model = build("gated-conditional-rgb", precision="mixed_bfloat16")
    images = random_images(model.image_shape)
    labels = labels_for(model)
    expected = network_outputs(model, images, labels)
    got = cached_outputs(model, images, labels)
    scale = np.abs(expected).max()
    error = np.abs(got - expected).max()
    assert error <= 2 ** -6 * scale
    as_float32 = build("gated-conditional-rgb")  # the same weights in float32
    assert np.abs(network_outputs(as_float32, images, labels) - expected).max() > error


@pytest.mark.parametrize("name", ["pixelrnn-conditional-grey", "diagonal-conditional-grey"])
def test_mixed_bfloat16_pixelrnn_outputs_agree_to_bfloat16_precision(name):
    """The Row LSTM's and the Diagonal BiLSTM's recurrences run in float32 under any policy;
    their K_is and the 1x1 convolutions round to bfloat16 where the traced network fuses
    differently: the logits agree to bfloat16 precision."""
    model = build(name, precision="mixed_bfloat16")
    images = random_images(model.image_shape)
    labels = labels_for(model)
    expected = network_outputs(model, images, labels)
    error = np.abs(cached_outputs(model, images, labels) - expected).max()
    assert error <= 2 ** -7 * np.abs(expected).max()  # about one bfloat16 rounding of the largest logit


def test_mixed_bfloat16_pixelcnnpp_outputs_agree_to_bfloat16_precision():
    """PixelCNN++'s stride-2 and transposed convolutions round where the traced network's
    fusions do not, and its deep U-net amplifies bfloat16's rounding (by far more with the
    other tests' larger weights): the parameters agree to bfloat16 precision, about as far as
    the traced network in bfloat16 is from the same weights in float32."""
    # No blocks but the second pass's, and no classes: the precision is the question here, and
    # each block is more graph to trace (the deeper networks are compared in float32).
    model = build("pixelcnnpp-rgb", precision="mixed_bfloat16", std=0.15)
    images = random_images(model.image_shape)
    labels = labels_for(model)
    expected = network_outputs(model, images, labels)
    scale = np.abs(expected).max()
    error = np.abs(cached_outputs(model, images, labels) - expected).max()
    assert error <= 2 ** -6 * scale
    as_float32 = build("pixelcnnpp-rgb", std=0.15)
    assert error <= 2 * np.abs(network_outputs(as_float32, images, labels) - expected).max()
