"""The GAN lecture's tools: walks through latent space, training-set neighbours, probes.

- Interpolation (`lerp`, `slerp`, `interpolation_latents`, `interpolation_grid`): a smooth
  walk from one latent to another should give a smooth walk through images. For z ~ N(0, I)
  in D dimensions almost all the mass lies near the sphere of radius sqrt(D), and the midpoint
  of a straight line between two draws has norm about sqrt(D / 2), where the generator saw no
  training latents; `slerp` follows the great circle instead (White, 2016, "Sampling
  Generative Networks").
- Nearest neighbours (`nearest_neighbours`, `neighbour_grid`): a sample that is a copy of a
  training image shows memorisation rather than generation. Distances are Euclidean in pixel
  space or in a feature space.
- Discriminator features as a representation (`linear_probe`, `discriminator_probe`, as in
  Radford et al., 2016): a logistic regression on frozen penultimate discriminator activations.
- Completion of occluded images (`occlusion_mask`, `completion_grid`) and per-pixel negative
  log-likelihood heatmaps (`nll_heatmap`, `heatmap_grid`) for likelihood models.

They work on any model with this interface (duck-typed):
  `model.latent_dim: int`; `model.latents(n, seed) -> float32 [n, latent_dim]` (stateless);
  `model.generate(z, labels=None) -> float32 images [n, H, W, C] in [0, 1]`;
  `model.num_classes: int | None` (None: unconditional; absent counts as None);
  `model.discriminator_features(images_uint8) -> float32 [n, F]`;
  `model.complete(images_uint8, mask, seed, labels=None) -> uint8 [n, H, W, C]`;
  `model.pixel_log_prob(images_uint8, labels=None) -> float32 [n, H, W, C]` (nats).

Arrays go in and come out as numpy; TensorFlow tensors are accepted wherever an array is.
"""
from __future__ import annotations

import numpy as np

from keras_gen.errors import KerasGenError
from keras_gen.images import make_grid, readable_scale, to_uint8
from keras_gen.seeds import MAX_SEED, check_seed

METHODS = ("linear", "slerp")


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise KerasGenError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


# -- interpolation -----------------------------------------------------------------------
def _interpolation_inputs(z0, z1, t):
    """`(z0, z1, t)` as float64 arrays that broadcast to the result, and the result's dtype.

    A scalar `t` gives results `[..., D]`; a `[T]` vector of `t` gives `[..., T, D]`.
    """
    z0, z1 = np.asarray(z0), np.asarray(z1)
    if z0.ndim == 0 or z1.ndim == 0 or z0.shape[-1] != z1.shape[-1]:
        raise KerasGenError(f"z0 and z1 must be vectors [..., D] of one size D, got shapes {z0.shape} and {z1.shape}")
    dtype = np.result_type(z0.dtype, z1.dtype, np.float32)
    try:
        z0, z1 = np.broadcast_arrays(z0.astype(np.float64), z1.astype(np.float64))
    except ValueError:
        raise KerasGenError(f"z0 {z0.shape} and z1 {z1.shape} do not broadcast") from None
    t = np.asarray(t, np.float64)
    if t.ndim > 1:
        raise KerasGenError(f"t must be a number or a vector [T], got shape {t.shape}")
    if t.ndim == 1:
        z0, z1, t = z0[..., None, :], z1[..., None, :], t[:, None]
    return z0, z1, t, dtype


def lerp(z0, z1, t):
    """Linear interpolation (1 - t) z0 + t z1.

    z0, z1: `[..., D]` (broadcast together); t: a number (result `[..., D]`) or a vector `[T]`
    (result `[..., T, D]`). t = 0 gives z0 and t = 1 gives z1 exactly.
    """
    z0, z1, t, dtype = _interpolation_inputs(z0, z1, t)
    return ((1.0 - t) * z0 + t * z1).astype(dtype)


def slerp(z0, z1, t, tolerance: float = 1e-6):
    """Spherical interpolation along the great circle from z0 to z1 (White, 2016).

        slerp(z0, z1; t) = sin((1 - t) W) / sin W * z0 + sin(t W) / sin W * z1,

    W the angle between z0 and z1. For vectors of equal norm every point keeps that norm;
    the angle to z0 is t W and the angle to z1 is (1 - t) W. Where sin W < `tolerance`
    (z0 and z1 parallel or anti-parallel, or one of them zero) the great circle is not defined
    and the result is `lerp`'s (through the origin for anti-parallel vectors).

    z0, z1: `[..., D]` (broadcast together); t: a number (result `[..., D]`) or a vector `[T]`
    (result `[..., T, D]`). t = 0 gives z0 and t = 1 gives z1 exactly.
    """
    z0, z1, t, dtype = _interpolation_inputs(z0, z1, t)
    norm0 = np.linalg.norm(z0, axis=-1, keepdims=True)
    norm1 = np.linalg.norm(z1, axis=-1, keepdims=True)
    unit0 = z0 / np.where(norm0 > 0, norm0, 1.0)
    unit1 = z1 / np.where(norm1 > 0, norm1, 1.0)
    # W = 2 atan2(|u0 - u1|, |u0 + u1|) rather than arccos(u0 . u1): the arccos of a cosine
    # near +-1 loses half its digits, exactly where the parallel test has to decide.
    angle = 2.0 * np.arctan2(
        np.linalg.norm(unit0 - unit1, axis=-1, keepdims=True),
        np.linalg.norm(unit0 + unit1, axis=-1, keepdims=True),
    )
    sin_angle = np.sin(angle)
    parallel = (sin_angle < tolerance) | (norm0 == 0) | (norm1 == 0)
    safe_sin = np.where(parallel, 1.0, sin_angle)
    weight0 = np.where(parallel, 1.0 - t, np.sin((1.0 - t) * angle) / safe_sin)
    weight1 = np.where(parallel, t, np.sin(t * angle) / safe_sin)
    return (weight0 * z0 + weight1 * z1).astype(dtype)


def interpolation_latents(z0, z1, steps: int, method: str = "slerp"):
    """`steps` latents evenly spaced in t from z0 (first) to z1 (last): `[steps, D]`.

    `method` is "slerp" (along the great circle) or "linear" (along the straight line);
    batched ends `[..., D]` give `[..., steps, D]`.
    """
    if method not in METHODS:
        raise KerasGenError(f"unknown interpolation method {method!r}; use one of {', '.join(METHODS)}")
    steps = _positive_int("steps", steps, minimum=2)
    interpolate = slerp if method == "slerp" else lerp
    return interpolate(z0, z1, np.linspace(0.0, 1.0, steps))


def _row_labels(model, labels, rows: int):
    """The class of each row `[rows]` int64, or None for an unconditional model."""
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        if labels is not None:
            raise KerasGenError("labels were given but the model is unconditional (num_classes is None)")
        return None
    if labels is None:
        return np.arange(rows, dtype=np.int64) % num_classes
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise KerasGenError(f"labels must be a class number or a list of class numbers, got {labels.dtype.name}")
    if labels.ndim == 0:
        labels = np.full(rows, labels, np.int64)
    elif labels.shape != (rows,):
        raise KerasGenError(f"labels must be one class or a list of {rows} (one per row), got shape {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise KerasGenError(f"labels must be classes 0..{num_classes - 1}, got {labels.tolist()}")
    return labels.astype(np.int64)


def interpolation_grid(model, rows: int = 8, steps: int = 10, seed: int = 0, method: str = "slerp", labels=None):
    """Images of `rows` latent walks, `steps` images each: float32 `[rows * steps, H, W, C]` in [0, 1].

    Row r walks from z[2r] to z[2r + 1] of `model.latents(2 * rows, seed)`, both ends
    included; the images are in row order, so `make_grid(images, columns=steps)` shows one
    walk per row. For a conditional model (`model.num_classes` not None) a row keeps its class
    fixed along the walk, so only the latent changes: `labels` is one class for every row, a
    list with one class per row, or None for class r % num_classes on row r. An unconditional
    model takes no labels.
    """
    rows = _positive_int("rows", rows)
    steps = _positive_int("steps", steps, minimum=2)
    row_labels = _row_labels(model, labels, rows)
    z = np.asarray(model.latents(2 * rows, seed), np.float32)
    walks = interpolation_latents(z[0::2], z[1::2], steps, method)  # [rows, steps, D]
    z_grid = walks.reshape(rows * steps, z.shape[-1]).astype(np.float32)
    if row_labels is None:
        images = model.generate(z_grid)
    else:
        images = model.generate(z_grid, np.repeat(row_labels, steps))
    return np.asarray(images, np.float32)


# -- nearest neighbours ------------------------------------------------------------------
def _embed(images, features, batch_size: int) -> np.ndarray:
    """Images `[n, ...]` -> float32 vectors `[n, F]`: `features` batch by batch, or the pixels.

    Pixels are scaled to [0, 1] (uint8 divided by 255; floats taken to be in [0, 1] already),
    so generated float images and uint8 training images are compared on one scale.
    """
    images = _uint8_or_float(np.asarray(images))
    if images.ndim < 2 or len(images) == 0:
        raise KerasGenError(f"expected a non-empty batch of images [n, ...], got shape {list(images.shape)}")
    if features is None:
        vectors = images.reshape(len(images), -1).astype(np.float32)
        return vectors / 255.0 if images.dtype == np.uint8 else vectors
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        chunk = np.asarray(features(batch), np.float32)
        if chunk.ndim < 1 or len(chunk) != len(batch):
            raise KerasGenError(
                f"features mapped {len(batch)} images to shape {list(chunk.shape)}; expected [{len(batch)}, F]"
            )
        chunks.append(chunk.reshape(len(batch), -1))
    return np.concatenate(chunks)


def nearest_neighbours(queries, references, k: int = 1, features=None, batch_size: int = 1024):
    """The k references nearest to each query: `(indices int64 [n, k], distances float32 [n, k])`.

    Distance is Euclidean, |q - r|, between flattened images scaled to [0, 1] (uint8 / 255,
    floats as they are) or, when `features` is a callable mapping a batch of images to `[b, F]`
    (e.g. `model.discriminator_features`), between their features; `features` sees at most
    `batch_size` images at a time. Each row is sorted by ascending distance, ties going to the
    lower reference index.

    Candidates come from |q|^2 + |r|^2 - 2 q.r in float64 on `batch_size` x `batch_size`
    blocks, keeping a running top k, so memory stays O(batch_size^2 + (n + m) F) (5,000 x 5,000
    MNIST images need tens of MB). The distances reported are recomputed directly from q - r,
    so an exact copy is at distance 0.
    """
    k = _positive_int("k", k)
    batch_size = _positive_int("batch_size", batch_size)
    query_vectors = _embed(queries, features, batch_size)
    reference_vectors = _embed(references, features, batch_size)
    n, m = len(query_vectors), len(reference_vectors)
    if query_vectors.shape[1] != reference_vectors.shape[1]:
        raise KerasGenError(
            f"queries and references differ in size: {query_vectors.shape[1]} and {reference_vectors.shape[1]} values each"
        )
    if k > m:
        raise KerasGenError(f"k = {k} neighbours asked for but there are only {m} references")

    reference_sq = np.einsum("ij,ij->i", reference_vectors, reference_vectors, dtype=np.float64)
    indices = np.empty((n, k), np.int64)
    distances = np.empty((n, k), np.float32)
    for q_start in range(0, n, batch_size):
        q = query_vectors[q_start:q_start + batch_size].astype(np.float64)
        q_sq = np.einsum("ij,ij->i", q, q)
        best_sq = np.empty((len(q), 0))
        best_index = np.empty((len(q), 0), np.int64)
        for r_start in range(0, m, batch_size):
            r = reference_vectors[r_start:r_start + batch_size].astype(np.float64)
            block_sq = q_sq[:, None] + reference_sq[None, r_start:r_start + len(r)] - 2.0 * (q @ r.T)
            block_index = np.broadcast_to(np.arange(r_start, r_start + len(r)), block_sq.shape)
            # The running best come first and hold lower indices, so a stable sort breaks ties
            # towards the lower index.
            candidate_sq = np.concatenate([best_sq, block_sq], axis=1)
            candidate_index = np.concatenate([best_index, block_index], axis=1)
            order = np.argsort(candidate_sq, axis=1, kind="stable")[:, :k]
            best_sq = np.take_along_axis(candidate_sq, order, axis=1)
            best_index = np.take_along_axis(candidate_index, order, axis=1)
        # The expansion cancels catastrophically for near neighbours (a copy of a 28x28 image
        # came out at ~1e-6, not 0); the k winners' distances are recomputed from differences.
        exact = np.empty((len(q), k))
        for j in range(k):
            difference = q - reference_vectors[best_index[:, j]]
            exact[:, j] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
        order = np.argsort(exact, axis=1, kind="stable")
        indices[q_start:q_start + len(q)] = np.take_along_axis(best_index, order, axis=1)
        distances[q_start:q_start + len(q)] = np.take_along_axis(exact, order, axis=1)
    return indices, distances


def _uint8_or_float(images, name="images"):
    """`images` if uint8 or floating point; other dtypes have no scale to assume (an int64 copy
    of uint8 images would have been read as floats in [0, 1])."""
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise KerasGenError(f"{name} must be uint8 (0..255) or floats in [0, 1], got {images.dtype.name}")
    return images


def _uint8_images(name: str, images) -> np.ndarray:
    images = _uint8_or_float(np.asarray(images), name)
    if images.ndim != 4:
        raise KerasGenError(f"{name} must be images [n, H, W, C], got shape {list(images.shape)}")
    return images if images.dtype == np.uint8 else to_uint8(images)


def neighbour_grid(samples, references, k: int = 3, features=None):
    """Each sample followed by its k nearest references: uint8 `[n * (k + 1), H, W, C]`.

    Row by row, ready for `keras_gen.images.make_grid(grid, columns=k + 1)`: image
    i * (k + 1) is sample i, then its neighbours nearest first. Float images are taken to be
    in [0, 1]; both sets are compared (and `features` is called) as uint8, as shown.
    """
    samples = _uint8_images("samples", samples)
    references = _uint8_images("references", references)
    if samples.shape[1:] != references.shape[1:]:
        raise KerasGenError(
            f"samples {list(samples.shape[1:])} and references {list(references.shape[1:])} differ in image shape"
        )
    indices, _ = nearest_neighbours(samples, references, k=k, features=features)
    rows = np.concatenate([samples[:, None], references[indices]], axis=1)  # [n, k + 1, H, W, C]
    return rows.reshape(-1, *samples.shape[1:])


# -- linear probes -----------------------------------------------------------------------
def _probe_inputs(name: str, features, labels):
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels) or len(labels) == 0:
        raise KerasGenError(
            f"{name}: expected features [n, F] and labels [n], got shapes {list(features.shape)} and {list(labels.shape)}"
        )
    return features.astype(np.float64), labels


def linear_probe(train_features, train_labels, test_features, test_labels, seed: int = 0) -> dict:
    """Test accuracy of a logistic regression on standardised features.

    Each feature is shifted and scaled to mean 0, variance 1 on the training set (so that
    one L2 penalty suits features of any scale); scikit-learn's `LogisticRegression` (softmax
    over the classes, L2 penalty C = 1) is fitted on the training set and scored on the test
    set. Returns `{"accuracy": test accuracy, "chance": accuracy on the test set of always
    answering the most frequent training class}`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, train_labels = _probe_inputs("train", train_features, train_labels)
    test_features, test_labels = _probe_inputs("test", test_features, test_labels)
    if train_features.shape[1] != test_features.shape[1]:
        raise KerasGenError(
            f"train and test features differ in size: {train_features.shape[1]} and {test_features.shape[1]}"
        )
    classes, counts = np.unique(train_labels, return_counts=True)
    if len(classes) < 2:
        raise KerasGenError(f"a probe needs at least two classes in the training labels, got {classes.tolist()}")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    probe.fit(train_features, train_labels)
    return {
        "accuracy": float(np.mean(probe.predict(test_features) == test_labels)),
        "chance": float(np.mean(test_labels == classes[np.argmax(counts)])),
    }


def _discriminator_features(model, images, batch_size: int) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise KerasGenError(f"discriminator features take uint8 images with values 0..255, got {images.dtype.name}")
    return _embed(images, model.discriminator_features, batch_size)


def discriminator_probe(
    model, train_images, train_labels, test_images, test_labels, batch_size: int = 256, seed: int = 0
) -> dict:
    """`linear_probe` on `model.discriminator_features` of uint8 images `[n, H, W, C]`.

    The features (penultimate discriminator activations, `[n, F]`) are computed `batch_size`
    images at a time; the discriminator stays frozen. Returns `{"accuracy", "chance"}`.
    """
    batch_size = _positive_int("batch_size", batch_size)
    return linear_probe(
        _discriminator_features(model, train_images, batch_size),
        train_labels,
        _discriminator_features(model, test_images, batch_size),
        test_labels,
        seed=seed,
    )


# -- completion of occluded images -------------------------------------------------------
# Kinds of occlusion an autoregressive model can complete: each leaves known pixels before the
# unknown ones in raster order (see `occlusion_mask`).
OCCLUSIONS = ("bottom-half", "right-half", "centre")

# The two grey levels of the checkerboard that stands for unknown sub-pixels in a picture: a
# pattern no smooth image region has, visible on dark and on light images alike.
UNKNOWN_CHECKER = (96, 160)


def _image_shape(image_shape) -> tuple[int, int, int]:
    try:
        h, w, c = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise KerasGenError(f"image_shape must be (H, W, C), got {image_shape!r}") from None
    if h < 2 or w < 2 or c < 1:
        raise KerasGenError(f"image_shape must be (H, W, C) with H, W >= 2 and C >= 1, got {image_shape!r}")
    return h, w, c


def occlusion_mask(kind: str, image_shape) -> np.ndarray:
    """Which sub-pixels of an `(H, W, C)` image stay known: bool `[H, W, C]`, True = known.

    - "bottom-half": rows H // 2 .. H - 1 unknown, the top H // 2 rows known;
    - "right-half": columns W // 2 .. W - 1 of every row unknown;
    - "centre": a centred square of side s = min(H, W) // 2 unknown, its top-left pixel at
      ((H - s) // 2, (W - s) // 2).
    Every channel of a pixel is known or unknown together.

    What a raster-order model conditions on: it draws unknown sub-pixel k from
    p(x_k | x_{<k}), every sub-pixel before k (rows above, then pixels to the left, then
    earlier channels), known or already drawn. Known sub-pixels *after* k are ignored. So
    "bottom-half" is an exact draw from p(bottom | top): every known pixel comes first.
    "right-half": a pixel of row i sees the left halves of rows 0..i, not those of the rows
    below it. "centre": a pixel of the square sees everything above it and to its left, not
    the known pixels to its right in its row nor the known band below the square, so a
    completion need not join up with them. Occlusions whose unknown pixels come first
    ("top-half", "left-half") are not offered: nothing known would come before the top half,
    and its "completion" would be a plain sample that ignores the rest of the image.
    """
    h, w, c = _image_shape(image_shape)
    known = np.ones((h, w, c), bool)
    if kind == "bottom-half":
        known[h // 2:] = False
    elif kind == "right-half":
        known[:, w // 2:] = False
    elif kind == "centre":
        side = min(h, w) // 2
        top, left = (h - side) // 2, (w - side) // 2
        known[top:top + side, left:left + side] = False
    else:
        raise KerasGenError(f"unknown occlusion {kind!r}; an autoregressive model can complete: "
                            f"{', '.join(OCCLUSIONS)}")
    return known


def _known_mask(mask, shape) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise KerasGenError(f"mask must be bool (True = known), got {mask.dtype.name}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise KerasGenError(f"mask of shape {list(mask.shape)} does not broadcast to the images' "
                            f"{list(shape)}") from None


def occluded(images, mask) -> np.ndarray:
    """uint8 images `[n, H, W, C]` with every unknown sub-pixel (mask False; `mask` broadcasts
    to the images, e.g. `[H, W, C]`) replaced by a grey checkerboard of `UNKNOWN_CHECKER`
    levels, alternating pixel by pixel; known sub-pixels are kept."""
    images = _uint8_images("images", images)
    known = _known_mask(mask, images.shape)
    _, h, w, _ = images.shape
    rows, columns = np.indices((h, w))
    checker = np.where((rows + columns) % 2 == 0, *UNKNOWN_CHECKER).astype(np.uint8)[None, :, :, None]
    return np.where(known, images, checker)


def completion_grid(model, images, mask, samples: int = 3, seed: int = 0, labels=None,
                    temperature: float | None = None) -> np.ndarray:
    """Each image, its occluded input and `samples` completions: uint8 `[n * (samples + 2), H, W, C]`.

    Row by row, ready for `keras_gen.images.make_grid(grid, columns=samples + 2)`: image i,
    then image i with its unknown sub-pixels drawn as a grey checkerboard (`occluded`), then
    completion k = `model.complete(images, mask, seed + k, labels)[i]` for k = 0 .. samples - 1.
    Every completion keeps the known sub-pixels (`mask` True, broadcast to `[n, H, W, C]`)
    and draws the others in raster order given those before them (`occlusion_mask` says
    what that can and cannot condition on). One `complete` call per seed, on all n images.

    images: uint8 `[n, H, W, C]` (floats in [0, 1] are rounded to uint8 first); labels: for a
    conditional model, one class for all or one per image (e.g. their true classes);
    temperature, if given, goes to `model.complete`.
    """
    samples = _positive_int("samples", samples)
    seed = check_seed(seed)
    if seed + samples - 1 > MAX_SEED:
        raise KerasGenError(f"seed + samples - 1 must be at most {MAX_SEED} (completion k uses seed + k), "
                            f"got {seed} + {samples} - 1")
    images = _uint8_images("images", images)
    known = _known_mask(mask, images.shape)
    options = {} if temperature is None else {"temperature": temperature}
    completions = []
    for k in range(samples):
        completed = np.asarray(model.complete(images, known, seed=seed + k, labels=labels, **options))
        if completed.shape != images.shape or completed.dtype != np.uint8:
            raise KerasGenError(f"model.complete returned {completed.dtype.name} {list(completed.shape)}, "
                                f"expected uint8 {list(images.shape)}")
        completions.append(completed)
    rows = np.stack([images, occluded(images, known), *completions], axis=1)  # [n, samples + 2, H, W, C]
    return rows.reshape(-1, *images.shape[1:])


# -- per-pixel likelihood heatmaps -------------------------------------------------------
# Images per `pixel_log_prob` call (which runs the network on smaller chunks itself): any
# number of images stays under the per-call cap (`seeds.MAX_SAMPLES`), and each call's
# [B, H, W, C] result small.
HEATMAP_BATCH = 256


def nll_heatmap(model, images, labels=None) -> np.ndarray:
    """Negative log-likelihood of each pixel in nats, float32 `[B, H, W]`:

        nll[b, i, j] = -sum_c log p(x_{ij,c} | x_{<(ij,c)}, y)

    from `model.pixel_log_prob` (summed over the channels of the pixel), so summed over i, j
    it is -log p(x_b | y) of the image. It shows where the model finds an image surprising:
    large where a pixel's value was hard to predict from the pixels before it (a stroke's
    first pixels, an unusual shape), near 0 where it was obvious (background).

    images: uint8 `[B, H, W, C]`; labels (conditional models): one class or one per image.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise KerasGenError(f"images must be a non-empty batch [B, H, W, C], got shape {list(images.shape)}")
    n = len(images)
    if labels is not None and np.ndim(labels) > 0:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise KerasGenError(f"labels must be one class or {n} (one per image), got shape {list(labels.shape)}")
    chunks = []
    for start in range(0, n, HEATMAP_BATCH):
        chunk_labels = labels[start:start + HEATMAP_BATCH] if labels is not None and np.ndim(labels) > 0 else labels
        log_p = np.asarray(model.pixel_log_prob(images[start:start + HEATMAP_BATCH], labels=chunk_labels), np.float32)
        chunks.append(-log_p.sum(axis=-1))
    return np.concatenate(chunks).astype(np.float32)


def uniform_pixel_nats(channels: int, levels: int = 256) -> float:
    """C ln L: the NLL in nats of a pixel of C channels under a uniform guess over L levels
    (8 bits per sub-pixel for 256; 1 for a head over binarised images); `heatmap_grid`'s
    default top of the colour scale is the 256 levels'."""
    return float(channels * np.log(float(levels)))


def model_heatmap(model, images, labels=None):
    """`(grid, nll, scale)` for a likelihood model: `images` as the model observes them
    (binarised for a Bernoulli head) above their `nll_heatmap` (`nll`), on a colour scale from 0
    to a uniform guess over the levels the model's head tells apart; `scale` says so in words."""
    levels = getattr(model, "num_levels", 256)
    top = uniform_pixel_nats(model.image_shape[-1], levels)
    observed = np.asarray(model.observed(np.asarray(images))).astype(np.uint8)
    nll = nll_heatmap(model, images, labels)
    bits = float(np.log2(levels))
    return (heatmap_grid(observed, nll, max_nats=top), nll,
            f"black 0 nats to white {top:.2f} nats = {bits:g} bit{'' if bits == 1 else 's'} per sub-pixel or more")


def nll_colours(nll, max_nats: float) -> np.ndarray:
    """Per-pixel NLL `[...]` -> uint8 RGB `[..., 3]` on a black-red-yellow-white ramp.

    With t = clip(nll / max_nats, 0, 1): R = clip(3t), G = clip(3t - 1), B = clip(3t - 2)
    (each clipped to [0, 1], times 255). R + G + B = 3t, so a more surprising pixel is always
    brighter: black at 0 nats, red at max/3, yellow at 2 max/3, white at `max_nats` or more.
    """
    if not np.isfinite(max_nats) or max_nats <= 0:
        raise KerasGenError(f"max_nats must be a positive number, got {max_nats!r}")
    t = np.clip(np.nan_to_num(np.asarray(nll, np.float64), nan=max_nats, posinf=max_nats) / max_nats, 0.0, 1.0)
    ramp = np.stack([np.clip(3 * t - offset, 0.0, 1.0) for offset in (0, 1, 2)], axis=-1)
    return np.round(ramp * 255).astype(np.uint8)


def heatmap_grid(images, nll, max_nats: float | None = None, columns: int = 8, scale: int | None = None) -> np.ndarray:
    """A uint8 RGB mosaic of images above their per-pixel NLL heatmaps (`nll_heatmap`).

    Bands of up to `columns` images: a row of images, and under each its heatmap
    (`nll_colours`). One colour scale for the whole grid: black 0 nats to white at
    `max_nats` or more; the default, `uniform_pixel_nats(C)` (8 bits per sub-pixel, what a
    uniform guess costs), is the same for every model and image, so grids compare. Grey
    images are drawn as RGB; `scale` defaults to `readable_scale`.

    images: uint8 `[n, H, W, C]` (C = 1 or 3; floats in [0, 1] are rounded to uint8);
    nll: `[n, H, W]` nats. Returns `[rows, cols, 3]`.
    """
    images = _uint8_images("images", images)
    nll = np.asarray(nll, np.float32)
    n, h, w, c = images.shape
    if nll.shape != (n, h, w):
        raise KerasGenError(f"nll must be [{n}, {h}, {w}] (one value per pixel of the images), got {list(nll.shape)}")
    if c not in (1, 3):
        raise KerasGenError(f"heatmaps draw grey or RGB images, got {c} channels")
    columns = min(_positive_int("columns", columns), n)
    max_nats = uniform_pixel_nats(c) if max_nats is None else float(max_nats)
    rgb = np.repeat(images, 3, axis=-1) if c == 1 else images
    heat = nll_colours(nll, max_nats)
    blank = np.full((columns - 1, h, w, 3), 255, np.uint8)  # fills a short last band's image row
    tiles = []
    for start in range(0, n, columns):
        band = slice(start, start + columns)
        tiles += [rgb[band], blank[:columns - len(rgb[band])], heat[band]]
    scale = readable_scale(images.shape[1:]) if scale is None else scale
    return make_grid(np.concatenate(tiles), columns=columns, scale=scale)
