"""The benchmark scripts' own arithmetic: what they count and draw (their figures are runs)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parents[1] / "bench"


def bench_module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_name", ["pixelcnn", "gated-pixelcnn"])
def test_pixelcnn_bench_counts_the_models_convolutions(model_name):
    """FLOP per image = 2 x (3 x forward multiply-adds - the input gradient of the kernels that
    read the image), the count taken here from the model's own kernels at 28x28."""
    from keras_gen import registry

    bench = bench_module("pixelcnn_throughput")
    model = registry.model_class(model_name)(image_shape=(28, 28, 1), filters=64, num_layers=7, kernel_size=3,
                                             first_kernel_size=7, precision="float32")
    kernels = [w for w in model.weights if len(w.shape) == 4]
    forward = sum(28 * 28 * int(np.prod(w.shape)) for w in kernels)
    reads_image = sum(28 * 28 * int(np.prod(w.shape)) for w in kernels if w.shape[2] == 1)
    assert bench.flop_per_image(model_name) == 2 * (3 * forward - reads_image)


def test_low_shot_subsets_take_k_per_class_by_seed():
    bench = bench_module("gan_augmentation")
    labels = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]
    chosen = bench.labelled_subset(labels, 5, seed=1)
    assert np.bincount(labels[chosen], minlength=10).tolist() == [5] * 10 and len(set(chosen)) == 50
    assert np.array_equal(chosen, bench.labelled_subset(labels, 5, seed=1))
    assert not np.array_equal(chosen, bench.labelled_subset(labels, 5, seed=2))
