"""DiffAugment: differentiable augmentation of every image a discriminator sees.

Zhao et al. (2020), "Differentiable Augmentation for Data-Efficient GAN Training". The same
family of random transforms T is applied to real and to generated images, D(T(x)) and
D(T(G(z))), in both players' steps. Because every T is differentiable in its input, the
generator's gradient flows through T(G(z)); D never sees an un-augmented image, so it cannot
memorise a small training set, and G is not taught to produce augmented-looking images.

Images are float `[B, H, W, C]` in [-1, 1], of static H, W, C and any float dtype (kept).
Every transform is drawn independently per example; all draws of one call come from a single
`keras.random.uniform` draw, so the same seed state gives the same augmentation. Policies:

- "translation": shift by integer offsets (dy, dx), each uniform in [−s, s] with
  s = round(H/8) (round(W/8) for dx); uncovered pixels are 0, the paper's zero padding
  (mid-grey in [-1, 1]).
- "cutout": multiply by 0 a patch of round(H/2) × round(W/2) pixels (a square for square
  images) placed uniformly at random wholly inside the image. The paper's code lets the patch
  hang over the border, so its cut area varies; here it is always exactly that patch.
- "color": brightness x + (r − 1/2), then saturation m_c + 2r·(x − m_c) with m_c the mean over
  channels, then contrast m + (r + 1/2)·(x − m) with m the mean over the whole image; each r
  ~ Uniform(0, 1) drawn separately per example (the paper's three colour transforms).

Each is a gather or a multiplication by a mask or an affine map, so its gradient is the
transposed gather (translation), the keep mask (cutout) or the affine map's slope (colour).
"""
import keras
import tensorflow as tf

from keras_gen import distribute
from keras_gen.errors import KerasGenError

POLICIES = ("translation", "cutout", "color")

# The paper's sizes: translate by up to 1/8 of the image, cut out half of each side.
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5

# Columns of the one per-example uniform draw a call makes.
_TRANSLATION_DY, _TRANSLATION_DX, _CUTOUT_TOP, _CUTOUT_LEFT, _BRIGHTNESS, _SATURATION, _CONTRAST = range(7)
_DRAWS_PER_EXAMPLE = 7


def _round_half_up(x):
    return int(x + 0.5)


def max_translation(size):
    """The largest shift (pixels) along an axis of `size` pixels: round(size / 8)."""
    return _round_half_up(size * TRANSLATION_RATIO)


def cutout_size(size):
    """The cut-out patch's extent (pixels) along an axis of `size` pixels: round(size / 2)."""
    return _round_half_up(size * CUTOUT_RATIO)


def parse_policy(policy):
    """`policy` as a tuple of names from `POLICIES`, in the order they are applied.

    Accepts a sequence of names or one comma-separated string ("color,translation").
    """
    if isinstance(policy, str):
        policy = [name.strip() for name in policy.split(",") if name.strip()]
    names = tuple(policy or ())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise KerasGenError(f"unknown DiffAugment policy {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    return names


def _uniform_integers(unit, low, high):
    """Integers uniform in [low, high] from `unit` draws in [0, 1) (int32, same shape)."""
    count = high - low + 1
    # min(): float rounding can map a draw just below 1 onto `count` itself.
    return low + tf.minimum(tf.cast(tf.floor(unit * count), tf.int32), count - 1)


def _translate(images, dy_unit, dx_unit):
    """out[b, i, j] = images[b, i − dy_b, j − dx_b], 0 where that falls outside the image."""
    height, width = images.shape[1], images.shape[2]
    max_dy, max_dx = max_translation(height), max_translation(width)
    dy = _uniform_integers(dy_unit, -max_dy, max_dy)
    dx = _uniform_integers(dx_unit, -max_dx, max_dx)
    padded = tf.pad(images, [[0, 0], [max_dy, max_dy], [max_dx, max_dx], [0, 0]])
    rows = tf.range(height)[None, :] - dy[:, None] + max_dy  # [B, H] rows of `padded`
    cols = tf.range(width)[None, :] - dx[:, None] + max_dx  # [B, W]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _cutout(images, top_unit, left_unit):
    """Zero a round(H/2) × round(W/2) patch per example, placed wholly inside the image."""
    height, width = images.shape[1], images.shape[2]
    patch_height, patch_width = cutout_size(height), cutout_size(width)
    top = _uniform_integers(top_unit, 0, height - patch_height)[:, None]
    left = _uniform_integers(left_unit, 0, width - patch_width)[:, None]
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    in_rows = (rows >= top) & (rows < top + patch_height)  # [B, H]
    in_cols = (cols >= left) & (cols < left + patch_width)  # [B, W]
    cut = in_rows[:, :, None] & in_cols[:, None, :]
    keep = tf.cast(tf.logical_not(cut), images.dtype)[:, :, :, None]
    return images * keep


def _per_example(unit, images):
    """`[B]` draws as `[B, 1, 1, 1]` in the images' dtype."""
    return tf.cast(unit, images.dtype)[:, None, None, None]


def _adjust_brightness(images, unit):
    """x + (r − 1/2): a shift uniform in [−1/2, 1/2)."""
    return images + (_per_example(unit, images) - 0.5)


def _adjust_saturation(images, unit):
    """m_c + 2r·(x − m_c), m_c the per-pixel mean over channels: 2r ∈ [0, 2) scales colourfulness."""
    grey = tf.reduce_mean(images, axis=3, keepdims=True)
    return grey + (images - grey) * (_per_example(unit, images) * 2.0)


def _adjust_contrast(images, unit):
    """m + (r + 1/2)·(x − m), m the example's mean over pixels and channels."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return mean + (images - mean) * (_per_example(unit, images) + 0.5)


def diff_augment(images, policy=("translation", "cutout"), *, seed):
    """Apply the DiffAugment `policy` to a batch, independently per example.

    Args:
      images: float `[B, H, W, C]`, static H, W, C (B may be dynamic).
      policy: names from `POLICIES` (or one comma-separated string), applied in that order;
        empty means no augmentation (a name given twice repeats the same transform).
      seed: a `keras.random.SeedGenerator` (the models' training stream) or an int.

    Returns: the augmented images, same shape and dtype.

    Raises: `KerasGenError` for an unknown policy name or images not `[B, H, W, C]`.
    """
    names = parse_policy(policy)
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or None in images.shape[1:]:
        raise KerasGenError(
            f"DiffAugment needs images [batch, height, width, channels] of known size, got {images.shape}"
        )
    if not names:
        return images
    draws = distribute.global_batch_draw(
        lambda n: keras.random.uniform(tf.stack([n, _DRAWS_PER_EXAMPLE]), dtype="float32", seed=seed),
        tf.shape(images)[0])
    for name in names:
        if name == "translation":
            images = _translate(images, draws[:, _TRANSLATION_DY], draws[:, _TRANSLATION_DX])
        elif name == "cutout":
            images = _cutout(images, draws[:, _CUTOUT_TOP], draws[:, _CUTOUT_LEFT])
        else:
            images = _adjust_brightness(images, draws[:, _BRIGHTNESS])
            images = _adjust_saturation(images, draws[:, _SATURATION])
            images = _adjust_contrast(images, draws[:, _CONTRAST])
    return images
