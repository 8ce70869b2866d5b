"""Score a trained model on a dataset: `evaluate(model, data, n, seed)`.

Sample-quality figures for every model that samples (FID, KID, precision/recall,
density/coverage, class coverage, memorisation; see `evaluate_samples`), the accuracy of
conditional samples for class-conditional models, and the test split's bits/dim for
likelihood models. Everything is computed offline in the feature space of the network that
ships for the dataset (`network_for`).
"""
from __future__ import annotations

import math

import numpy as np

from keras_gen.errors import KerasGenError

# Which shipped network scores images of a dataset, by (dataset, image side).
FEATURE_NETWORKS = {("mnist5k", 28): "mnist28", ("digits", 28): "digits28"}


def network_name_for(data: str, image_shape) -> str:
    """The name of the feature network for `data` images of `image_shape`, or a one-line error.

    A dataset without one (any `tfds:` name, `digits` at a size other than 28) cannot be
    scored by FID and friends until a network is trained for it.
    """
    shape = None if image_shape is None else tuple(int(d) for d in image_shape)
    name = None
    if shape is not None and len(shape) == 3 and shape[0] == shape[1] and shape[2] == 1:
        name = FEATURE_NETWORKS.get((data, shape[0]))
    if name is None:
        known = "; ".join(f"{d} at {s}x{s} ({n})" for (d, s), n in FEATURE_NETWORKS.items())
        of_shape = "" if shape is None else f" of shape {list(shape)}"
        raise KerasGenError(
            f"no feature network scores {data} images{of_shape}; feature networks exist for {known}. "
            "To score another grey 10-class dataset, train one: keras-gen metrics build-features NAME "
            "--data DATA --image-size SIZE --out DIR, then pass --features DIR/NAME"
        )
    return name


def network_for(data: str, image_shape):
    """The shipped `FeatureNetwork` for `data` images of `image_shape` (see `network_name_for`)."""
    from keras_gen.metrics.features import load_feature_network

    return load_feature_network(network_name_for(data, image_shape))


def check_network_fits(network, image_shape) -> None:
    if tuple(network.image_shape) != tuple(int(d) for d in image_shape):
        raise KerasGenError(
            f"feature network {network.name!r} reads images of shape {list(network.image_shape)}; "
            f"the model makes {list(image_shape)}"
        )


def _splits(data, image_size):
    """`(train, test)` uint8 images of a dataset (cached, read-only)."""
    from keras_gen.metrics.features import dataset_images

    return dataset_images(data, "train", image_size)[0], dataset_images(data, "test", image_size)[0]


def _to_uint8(images):
    import keras

    from keras_gen.images import to_uint8

    return to_uint8(keras.ops.convert_to_numpy(images))


def test_bits_per_dim(model, images, labels=None, batch_size: int = 250) -> float:
    """Mean negative log-likelihood of `images` (uint8 `[N, H, W, C]`, with their labels for a
    conditional model) in bits per sub-pixel."""
    import keras

    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        log_prob = model.log_prob(images[batch], None if labels is None else labels[batch])
        total += float(np.sum(keras.ops.convert_to_numpy(log_prob)))
    return -total / (len(images) * int(np.prod(images.shape[1:])) * math.log(2.0))


def bayes_accuracy(model, images, labels, batch_size: int = 250) -> float:
    """The accuracy of a conditional likelihood model used as a classifier by Bayes' rule
    (argmax_y log p(x | y), uniform prior) on `images` with their true `labels`."""
    import keras

    predicted = [keras.ops.convert_to_numpy(model.classify(images[start:start + batch_size])[1])
                 for start in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate(predicted) == np.asarray(labels)))


def label_accuracy(model, network, n: int, seed: int) -> float:
    """The fraction of `sample(n, seed, labels=k)` that `network` classifies as k (k = i mod classes)."""
    labels = np.arange(n) % int(model.num_classes)
    predicted = network.predict_classes(_to_uint8(model.sample(n, seed, labels=labels))).argmax(axis=1)
    return float(np.mean(predicted == labels))


def evaluate(model, data: str = "mnist5k", n: int = 1000, seed: int = 0, *, image_size=None, network=None,
             samples: bool = True) -> dict:
    """Every offline figure of `model` on the dataset `data`; a dict of numbers.

    Args:
      model: a keras-gen model (anything with `sample(n, seed)` and/or `log_prob(images)`).
      data: the dataset the model learned; its test split is the held-out reference and its
        train split the memorisation check (mnist5k: 1,000 and 4,000 images).
      n: samples to draw and score (at least 4). FID is biased by sample size: compare
        models at one `n` (the zoo uses 1,000) and beside `reference_floors(network, n)`.
      seed: the samples' seed (`model.sample(n, seed)`, the same draw as a zoo grid's).
      image_size: the side `data` is resized to; default the model's image side (mnist5k
        is 28x28 only).
      network: a loaded `FeatureNetwork` (e.g. one built by `build_feature_network`);
        default the shipped one for `data` (`network_for`). Without one, a likelihood model
        gets its likelihood figures only, any other model a one-line error.
      samples: False skips the sample figures (an autoregressive model draws 1,000 28x28
        samples in minutes on a CPU; its likelihood takes seconds).

    Returns, where the model offers them:
      sampling models: `evaluate_samples`' figures (fid, kid_mean, kid_std, precision,
        recall, density, coverage, classes_covered, class_kl, near_copy_fraction);
      class-conditional models: label_accuracy (the network's argmax of sample(labels=k) is k);
      likelihood models: test_bits_per_dim over the whole test split (conditional ones given
        the true labels, and bayes_accuracy: argmax_y log p(x | y) against the true labels);
        test_bits_per_binary_dim instead for a Bernoulli head (of the binarised images);
      classifiers that do neither (domain adaptation): test_accuracy of `classify` on the
        whole test split (`data` is then the target domain).
    """
    from keras_gen.metrics import check_sample_count, evaluate_samples

    n = check_sample_count(n)
    if image_size is None and data != "mnist5k":
        image_size = int(model.image_shape[0])
    figures = {}
    samples = samples and model.offers("sample")
    if samples and network is None:
        try:
            network = network_for(data, model.image_shape)
        except KerasGenError:
            if not model.offers("log_prob"):
                raise
            samples = False  # a likelihood model is still scored by its likelihood
    if samples:
        check_network_fits(network, model.image_shape)
        train, test = _splits(data, image_size)
        figures.update(evaluate_samples(_to_uint8(model.sample(n, seed)), network, real_train=train,
                                        real_test=test, n=n, seed=seed))
        if getattr(model, "num_classes", None):
            figures["label_accuracy"] = label_accuracy(model, network, n, seed)
    if model.offers("log_prob"):
        from keras_gen.metrics.features import dataset_images

        test, test_labels = dataset_images(data, "test", image_size)
        conditional = bool(getattr(model, "num_classes", None))
        # A Bernoulli head's likelihood is of the binarised images: bits per binary dimension,
        # under its own name, never beside 256-level figures as if it were one of them.
        key = "test_bits_per_binary_dim" if getattr(model, "head", None) == "bernoulli" else "test_bits_per_dim"
        figures[key] = test_bits_per_dim(model, test, test_labels if conditional else None)
        if conditional:
            figures["bayes_accuracy"] = bayes_accuracy(model, test, test_labels)
    if not figures and model.offers("classify"):  # a classifier (domain adaptation): of the data's test split
        figures["test_accuracy"], _ = test_accuracy(model, data, image_size)
    if not figures:
        raise KerasGenError(f"{type(model).__name__} neither samples, nor has a likelihood, nor classifies: "
                            "nothing to evaluate")
    return figures


def test_accuracy(model, data: str, image_size=None) -> tuple[float, int]:
    """`(accuracy, images)`: the share of the `data` test split that `model.classify` labels
    right (at `image_size`, default the model's side), the one place a domain-adaptation
    model's target labels are read."""
    from keras_gen.data import load_arrays

    images, labels = load_arrays(data, "test", image_size=image_size or int(model.image_shape[0]))
    channels = getattr(model, "accepted_channels", model.image_shape[2:])  # a DA model: grey or RGB
    if images.shape[1:3] != tuple(model.image_shape[:2]) or images.shape[3] not in channels:
        raise KerasGenError(f"{data} test images are {'x'.join(map(str, images.shape[1:]))}, the model classifies "
                            f"{'x'.join(map(str, model.image_shape))} images; give data of that shape")
    predicted = np.asarray(model.classify(images)[1])
    return float(np.mean(predicted == labels)), len(labels)
