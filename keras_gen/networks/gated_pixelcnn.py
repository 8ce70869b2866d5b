"""Gated PixelCNN network (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders"): a vertical and a horizontal stack of gated convolutions, no blind spot.

The plain PixelCNN's masked 3x3 kernels stack into a receptive field with a blind spot (the
pixels up and to the right of the current one are never seen). Here the two stacks split the
past in two parts that together cover all of it:

- vertical stack V: every pixel of the rows **above** the current one, within its reach. The
  image is shifted down one row, then each layer is an unmasked (k//2 + 1) x k convolution
  of the rows at and above (zero-padded on top), so V(i, j) depends on rows < i only.
- horizontal stack H: the current row, **left** of the current pixel (and, for colour, the
  pixel's earlier sub-pixels): 1 x k masked convolutions (`MaskedConv2D`, type A on the
  image, type B after), plus V(i, j) through a 1x1 convolution at every layer.

Each layer is a gated unit, y = tanh(W_f * x + b_f(label)) ⊙ σ(W_g * x + b_g(label)), with a
class-dependent bias for the conditional model (the paper's V^T h with h a one-hot label),
and a residual 1x1 convolution in H. Reach after the first layer (kernel k₀) and L layers
(kernel k): rows above k₀//2 + 1 + L·(k//2), columns either side k₀//2 + L·(k//2). The
defaults (k₀ = 7, k = 5, L = 12) reach 28 rows and 27 columns: every earlier pixel of a
28x28 image.

Input float images `[B, rows, W, C]` in [-1, 1] (any number of rows; and int labels `[B]`
when conditional); output float32 `[B, rows, W, C, 256]` logits or `[B, rows, W, P]`
parameters of another head.

`CachedSampler` evaluates the same network one pixel at a time (`keras_gen.networks.cached`):
V at row i depends on finished rows only, so the whole vertical stack runs a row at a time;
H runs a pixel at a time on the current row's activations, which need no cache.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen.layers import MaskedConv2D
from keras_gen.networks import cached


def vertical_reach(first_kernel_size, kernel_size, num_layers) -> int:
    """Rows above a pixel that the network's output at that pixel can depend on."""
    return first_kernel_size // 2 + 1 + num_layers * (kernel_size // 2)


def _vertical_conv(x, filters, k, dtype, name):
    """Unmasked (k//2 + 1) x k convolution of the rows at and above each row."""
    x = keras.layers.ZeroPadding2D(((k // 2, 0), (k // 2, k // 2)), dtype=dtype, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, (k // 2 + 1, k), padding="valid", dtype=dtype, name=name)(x)


def _gate(pre_f, pre_g, label_bias, dtype, name):
    """tanh(pre_f + b_f) ⊙ σ(pre_g + b_g), b = the label's bias (zero when unconditional)."""
    if label_bias is not None:
        bias_f, bias_g = label_bias
        pre_f = keras.layers.Add(dtype=dtype, name=f"{name}_cond_f")([pre_f, bias_f])
        pre_g = keras.layers.Add(dtype=dtype, name=f"{name}_cond_g")([pre_g, bias_g])
    return keras.layers.Multiply(dtype=dtype, name=name)(
        [keras.layers.Activation("tanh", dtype=dtype)(pre_f), keras.layers.Activation("sigmoid", dtype=dtype)(pre_g)]
    )


def _label_bias(labels, num_classes, filters, dtype, name):
    """Per-class biases `[B, 1, 1, filters]` for the two halves of a gate."""
    if labels is None:
        return None
    out = []
    for half in ("f", "g"):
        b = keras.layers.Embedding(num_classes, filters, dtype=dtype, name=f"{name}_embed_{half}")(labels)
        out.append(keras.layers.Reshape((1, 1, filters), dtype=dtype)(b))
    return out


def network(image_shape, filters, num_layers, kernel_size, first_kernel_size, outputs_per_pixel, dtype,
            num_classes=None, subpixel_causal=True, name="gated_pixelcnn_network"):
    """The gated stacks; `outputs_per_pixel` is C·256 for categorical logits (reshaped to
    `[.., C, 256]`) or a head's parameter count (kept `[.., P]`, computed in float32).

    `subpixel_causal`: the output for sub-pixel c may see the pixel's sub-pixels < c (a
    categorical head, one distribution per sub-pixel); False: the outputs of a pixel see no
    part of it (a head that couples the sub-pixels itself, like the logistic mixture).
    """
    _, w, image_channels = image_shape
    c = image_channels if subpixel_causal else 1  # colour groups of the masks
    images = keras.Input((None, w, image_channels), name="images")
    inputs = [images]
    labels = None
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)

    # V: shift down one row, so that row i of V sees rows < i of the image.
    shifted = keras.layers.ZeroPadding2D(((1, 0), (0, 0)), dtype=dtype)(images)
    shifted = keras.layers.Cropping2D(((0, 1), (0, 0)), dtype=dtype)(shifted)
    v, h = shifted, images
    for layer in range(num_layers + 1):
        k = first_kernel_size if layer == 0 else kernel_size
        tag = f"l{layer}"
        bias_v = _label_bias(labels, num_classes, filters, dtype, f"{tag}_v")
        bias_h = _label_bias(labels, num_classes, filters, dtype, f"{tag}_h")
        v_f = _vertical_conv(v, filters, k, dtype, f"{tag}_v_f")
        v_g = _vertical_conv(v, filters, k, dtype, f"{tag}_v_g")
        # H: 1 x k masked (type A on the image: not the current sub-pixel), plus V at this
        # pixel, which only holds rows above. Two convolutions (f and g) keep each half's
        # channel groups aligned with the colour order.
        mask = "A" if layer == 0 else "B"
        h_f = MaskedConv2D(filters, (1, k), mask, c, dtype=dtype, name=f"{tag}_h_f")(h)
        h_g = MaskedConv2D(filters, (1, k), mask, c, dtype=dtype, name=f"{tag}_h_g")(h)
        link_f = keras.layers.Conv2D(filters, 1, dtype=dtype, name=f"{tag}_v_to_h_f")(v_f)
        link_g = keras.layers.Conv2D(filters, 1, dtype=dtype, name=f"{tag}_v_to_h_g")(v_g)
        h_f = keras.layers.Add(dtype=dtype)([h_f, link_f])
        h_g = keras.layers.Add(dtype=dtype)([h_g, link_g])
        v = _gate(v_f, v_g, bias_v, dtype, f"{tag}_v_gate")
        gated = _gate(h_f, h_g, bias_h, dtype, f"{tag}_h_gate")
        out = MaskedConv2D(filters, 1, "B", c, dtype=dtype, name=f"{tag}_h_out")(gated)
        h = out if layer == 0 else keras.layers.Add(dtype=dtype)([h, out])  # residual in H

    x = keras.layers.ReLU(dtype=dtype)(h)
    x = MaskedConv2D(filters, 1, "B", c, dtype=dtype, name="head")(x)
    x = keras.layers.ReLU(dtype=dtype)(x)
    # Distribution parameters in float32: a softmax over 256 values loses precision in bf16.
    x = MaskedConv2D(outputs_per_pixel, 1, "B", c, dtype="float32", name="outputs")(x)
    if subpixel_causal:
        x = keras.layers.Reshape((-1, w, image_channels, outputs_per_pixel // image_channels), dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


class CachedSampler(cached.RasterSampler):
    """`network`'s outputs a pixel at a time (`cached.RasterSampler`); arguments as `network`'s,
    with `labels` int `[B]` for a conditional network.

    State from row to row: the image's last finished row (the shifted image's current row) and,
    per layer, V's input in the kh - 1 rows above. From column to column: the windows of the
    horizontal convolutions' latest inputs. The f and g halves of each gate are one
    convolution with their kernels side by side.
    """

    def __init__(self, network, image_shape, num_layers, labels=None, subpixel_causal=True):
        _, self.width, self.channels = image_shape
        self.subpixel_causal = subpixel_causal
        layer = network.get_layer
        self.layers = []
        for index in range(num_layers + 1):
            tag = f"l{index}"
            last = index == num_layers  # its V gate feeds nothing: the network has none
            self.layers.append({
                "vertical": cached.RowConv([layer(f"{tag}_v_f"), layer(f"{tag}_v_g")], self.width),
                "link": (cached.Pointwise([layer(f"{tag}_v_to_h_f")]), cached.Pointwise([layer(f"{tag}_v_to_h_g")])),
                "horizontal": cached.CausalConv([layer(f"{tag}_h_f"), layer(f"{tag}_h_g")], self.width),
                "out": cached.CausalConv([layer(f"{tag}_h_out")], self.width),
                # The label's biases [B, 2F] (f then g), computed once for the whole image.
                "label_v": None if labels is None or last else self._label_bias(layer, f"{tag}_v", labels),
                "label_h": None if labels is None else self._label_bias(layer, f"{tag}_h", labels),
            })
        self.head = cached.CausalConv([layer("head")], self.width)
        self.outputs = cached.CausalConv([layer("outputs")], self.width)
        self.dtype = self.layers[0]["vertical"].dtype

    @staticmethod
    def _label_bias(layer, name, labels):
        return tf.concat([layer(f"{name}_embed_f")(labels), layer(f"{name}_embed_g")(labels)], axis=-1)

    def initial_state(self, batch_size):
        above = tf.zeros([batch_size, self.width, self.channels], self.dtype)  # the shift's zero row
        return [above, *(stack["vertical"].initial_cache(batch_size) for stack in self.layers)]

    def begin_row(self, state):
        return _CachedRow(self, state)


class _CachedRow:
    def __init__(self, sampler, state):
        """V for the whole row (the shifted image's row i is the image's row i - 1), and its
        links into H `[B, W, 2F]`, every layer's side by side, so that a pixel reads them
        with one gather."""
        self.sampler = sampler
        v, *caches = state
        self.caches, links = [], []
        # In float32, each layer's link, label bias and convolution bias join its horizontal
        # convolution's sum once per row (the network adds them one by one after the
        # convolution: the same terms, summed in another order, which moves the last bits
        # only), three additions per layer and pixel fewer. In bfloat16 the network rounds
        # after each addition, which the cached layers repeat.
        self.folded = sampler.dtype == tf.float32
        for stack, cache in zip(sampler.layers, caches):
            v_fg, cache = stack["vertical"].row(cache, v)
            v_f, v_g = tf.split(v_fg, 2, axis=-1)
            link_f, link_g = stack["link"]
            link = tf.concat([link_f(v_f), link_g(v_g)], axis=-1)
            if self.folded:
                if stack["horizontal"].bias is not None:
                    link = link + stack["horizontal"].bias
                if stack["label_h"] is not None:
                    link = link + stack["label_h"][:, None]
            links.append(link)
            if stack is not sampler.layers[-1]:
                v = cached.gate(v_fg if stack["label_v"] is None else v_fg + stack["label_v"][:, None])
            self.caches.append(cache)
        self.links = tf.concat(links, axis=-1)  # [B, W, layers · 2F]

    def initial_carry(self, batch_size):
        return [stack["horizontal"].initial_window(batch_size) for stack in self.sampler.layers]

    def pixel(self, j, image_pixel, carry):
        """H as `network`: per layer, gate(1 x k masked conv of H + V's link [+ label]) -> 1x1,
        residual after the first; then ReLU -> 1x1 -> ReLU -> outputs."""
        sampler = self.sampler
        windows = list(carry)
        h = image_pixel
        links = tf.split(cached.column(self.links, j), len(sampler.layers), axis=-1)
        for index, stack in enumerate(sampler.layers):
            if self.folded:
                pre, windows[index] = stack["horizontal"].at(windows[index], h, links[index], bias=False)
            else:
                pre, windows[index] = stack["horizontal"].at(windows[index], h)
                pre = pre + links[index]
                if stack["label_h"] is not None:
                    pre = pre + stack["label_h"]
            out, _ = stack["out"].at((), cached.gate(pre))
            h = out if index == 0 else h + out
        x, _ = sampler.head.at((), tf.nn.relu(h))
        x, _ = sampler.outputs.at((), tf.nn.relu(x))
        if sampler.subpixel_causal:
            x = tf.reshape(x, [-1, sampler.channels, sampler.outputs.out_channels // sampler.channels])
        return x, windows

    def finish_pixel(self, image_pixel, carry):
        return [self.sampler.layers[0]["horizontal"].with_latest(carry[0], image_pixel), *carry[1:]]

    def end(self, carry, image_row):
        return [tf.cast(tf.transpose(image_row, [1, 0, 2]), self.sampler.dtype), *self.caches]
