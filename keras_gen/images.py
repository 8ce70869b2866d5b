"""Image grids: float images in [0, 1] -> one uint8 mosaic -> PNG (written atomically)."""
from __future__ import annotations

import math

import numpy as np

from keras_gen.files import atomic_path


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def make_grid(images, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile `[N, H, W, C]` images into one uint8 `[rows*(H+p)+p, cols*(W+p)+p, C]` mosaic.

    uint8 images are tiled as they are; float images (arrays or tensors) in [0, 1] are
    converted with `to_uint8` first.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_png(path, grid: np.ndarray) -> None:
    """Write a uint8 `[H, W, C]` image (C = 1 or 3) as PNG, atomically."""
    from PIL import Image

    grid = np.asarray(grid)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def sample_grid(model, n: int = 64, seed: int = 0) -> np.ndarray:
    """A uint8 mosaic of `n` seeded samples of `model`.

    A conditional model draws one row per class (classes in order, `n // num_classes`
    samples each, at least one), so a grid shows what every label gives.
    """
    classes = getattr(model, "num_classes", None)
    if classes:
        per_class = max(1, n // classes)
        labels = np.repeat(np.arange(classes), per_class)
        return make_grid(model.sample(len(labels), seed, labels=labels), columns=per_class)
    return make_grid(model.sample(n, seed))
