"""Image grids: float images in [0, 1] -> one uint8 mosaic -> PNG or JPEG (written atomically).

Grids meant for people (`sample_grid`, and `make_grid(..., scale=readable_scale(shape))`)
enlarge every image with nearest-neighbour pixels so that a 28-px digit is drawn at 56 px
or more: 64 digits at their own size fill only 240 x 240 px.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from keras_gen.errors import KerasGenError
from keras_gen.files import atomic_path


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


# The smallest side, in pixels, an image is drawn at in a grid meant for people.
READABLE_SIZE = 56


def readable_scale(image_shape) -> int:
    """The smallest whole scale that draws `(H, W, ...)` images at >= 56 px a side (28 px: 2)."""
    return max(1, math.ceil(READABLE_SIZE / min(int(image_shape[0]), int(image_shape[1]))))


def _check_scale(scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise KerasGenError(f"scale must be a whole number of at least 1, got {scale!r}")
    return int(scale)


def make_grid(images, columns: int | None = None, padding: int = 2, scale: int = 1, row_labels=None) -> np.ndarray:
    """Tile `[N, H, W, C]` images into one uint8 `[rows*(s*H+p)+p, cols*(s*W+p)+p, C]` mosaic.

    uint8 images are tiled as they are; float images (arrays or tensors) in [0, 1] are
    converted with `to_uint8` first. `scale` enlarges each image `s` times with
    nearest-neighbour pixels (each pixel becomes an s x s block; the padding stays `p` px);
    `readable_scale(image_shape)` is the one for people. `row_labels`, one text per row
    (e.g. a conditional grid's classes), are written in a white margin on the left.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    scale = _check_scale(scale)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = image
    if row_labels is not None:
        grid = _label_rows(grid, [str(label) for label in row_labels], rows, h, padding)
    return grid


def _label_rows(grid, labels, rows, h, padding):
    """`grid` with a white margin on the left holding `labels[r]` beside row r, centred."""
    from PIL import Image, ImageDraw, ImageFont

    if len(labels) != rows:
        raise KerasGenError(f"row_labels has {len(labels)} labels for a grid of {rows} rows")
    if grid.shape[-1] not in (1, 3):
        raise KerasGenError(f"row labels need grey or RGB images, got {grid.shape[-1]} channels")
    font = ImageFont.load_default(size=max(8, min(24, (h * 3) // 5)))
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = max(draw.textbbox((0, 0), label, font=font)[2] for label in labels) + 2 * padding
    margin = Image.new("L", (width, grid.shape[0]), 255)
    draw = ImageDraw.Draw(margin)
    for r, label in enumerate(labels):  # right-aligned, centred on the row
        x0, y0, x1, y1 = draw.textbbox((0, 0), label, font=font)
        middle = padding + r * (h + padding) + h / 2
        draw.text((width - padding - x1, middle - (y0 + y1) / 2), label, fill=0, font=font)
    margin = np.repeat(np.asarray(margin)[..., None], grid.shape[-1], axis=-1)
    return np.concatenate([margin, grid], axis=1)


def save_png(path, grid: np.ndarray) -> None:
    """Write a uint8 `[H, W, C]` image (C = 1 or 3) as PNG, atomically."""
    _save(path, grid, "PNG")


# Picture formats keras-gen writes, by file name suffix, and the bytes their files start with.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}


def image_format(path) -> str:
    """"PNG" or "JPEG", from `path`'s suffix (any case); a one-line error for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise KerasGenError(
            f"{str(path)!r}: pictures are written as PNG or JPEG; give a name ending in .png, .jpg or .jpeg"
        )
    return IMAGE_FORMATS[suffix]


def save_image(path, grid: np.ndarray) -> None:
    """Write a uint8 `[H, W, C]` image as PNG or JPEG, as `path`'s suffix says, atomically.

    Any other suffix is refused, and so is an existing file that is not a PNG or JPEG picture
    (a model or notes under a picture's name): nothing but a picture is ever written over.
    JPEG is lossy (quality 95, no chroma subsampling); PNG keeps every pixel.
    """
    fmt = image_format(path)
    path = Path(path)
    if path.is_dir():
        raise KerasGenError(f"{str(path)!r} is a folder; give a picture's file name")
    if path.exists():
        with open(path, "rb") as f:
            head = f.read(8)
        if not any(head.startswith(magic) for magic in IMAGE_MAGIC.values()):
            raise KerasGenError(f"{str(path)!r} exists and is not a PNG or JPEG picture; refusing to overwrite it")
    _save(path, grid, fmt)


def _save(path, grid, fmt):
    from PIL import Image

    grid = np.asarray(grid)
    if grid.ndim != 3 or grid.shape[-1] not in (1, 3, 4) or grid.dtype != np.uint8:
        raise KerasGenError(f"expected a uint8 [H, W, C] picture with 1, 3 or 4 channels, got {grid.dtype} "
                            f"{list(grid.shape)}")
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    options = {}
    if fmt == "JPEG":
        image = image.convert("RGB") if image.mode == "RGBA" else image
        options = {"quality": 95, "subsampling": 0}
    with atomic_path(path, suffix=".png" if fmt == "PNG" else ".jpg") as tmp:
        image.save(tmp, format=fmt, **options)


def sample_grid(model, n: int = 64, seed: int = 0, scale: int | None = None, label_rows: bool = False,
                temperature: float | None = None) -> np.ndarray:
    """A uint8 mosaic of `n` seeded samples of `model`, drawn for people to look at.

    A conditional model draws one row per class (classes in order, `n // num_classes`
    samples each, at least one), so a grid shows what every label gives; with `label_rows`
    each row is headed by its class number. `scale` (default `readable_scale`, 2 for 28 px
    digits) enlarges the samples with nearest-neighbour pixels; `scale=1` draws them at
    their own size. `temperature`, if given, goes to `model.sample` (likelihood models).
    """
    scale = readable_scale(model.image_shape) if scale is None else _check_scale(scale)
    options = {} if temperature is None else {"temperature": temperature}
    classes = getattr(model, "num_classes", None)
    if classes:
        per_class = max(1, n // classes)
        labels = np.repeat(np.arange(classes), per_class)
        return make_grid(model.sample(len(labels), seed, labels=labels, **options), columns=per_class, scale=scale,
                         row_labels=range(classes) if label_rows else None)
    return make_grid(model.sample(n, seed, **options), scale=scale)
