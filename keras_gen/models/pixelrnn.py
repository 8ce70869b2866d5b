"""PixelRNN with Row LSTM or Diagonal BiLSTM layers (van den Oord, Kalchbrenner, Kavukcuoglu
2016, "Pixel Recurrent Neural Networks"), optionally class-conditional.

    log p(x | y) = sum_{i=1}^{H*W} sum_{c=1}^{C} log p(x_{i,c} | x_{<i}, x_{i,<c}, y)

Pixels in raster order, sub-pixels R, G, B within a pixel; each factor is a 256-way
categorical over the sub-pixel's value (the paper's discrete softmax), so training minimises
the exact negative log-likelihood in one parallel pass over the rows' inputs.

Row LSTM (§3.1): each layer runs an LSTM down the image one row at a time. The gates of
row i, [o, f, i, g] = σ(K_ss ⊛ h_{i-1} + K_is ⊛ x_i), come from a masked 1 x k convolution
K_is of the row's own input (computed for every row at once) and a 1 x k convolution K_ss of
the row above's hidden state; c_i = f ⊙ c_{i-1} + i ⊙ g, h_i = o ⊙ tanh(c_i). A pixel's
state sees the row above k // 2 pixels either side, which saw its own row above: the
receptive field is a triangle that widens by k // 2 pixels per row, over every row above
(the paper notes it misses the rest of the current row to the left and the far upper right).
Diagonal BiLSTM (§3.2, `keras_gen.layers.DiagonalBiLSTM`): two LSTMs along the diagonals, left
to right and (shifted down a row) right to left, whose union sees the whole past of its
input; behind the type-A first layer, every earlier pixel but one (see `PixelRNN`'s `rnn`).

Network (uint8 `[B, H, W, C]` -> logits float32 `[B, H, W, C, 256]`, `keras_gen.networks.pixelrnn`):
  7x7 MaskedConv2D A (2h) -> num_layers x residual [RowLSTM or DiagonalBiLSTM (h) -> 1x1 B (2h)]
  -> ReLU -> 1x1 B (2h) -> ReLU -> 1x1 B (C*256).

Sampling is the autoregressive base's, with a cached sampler (`networks.CachedSampler`): the
network runs a pixel at a time, each Row LSTM carrying its states from row to row and its
input window from column to column; each Diagonal BiLSTM runs its left-to-right direction a
pixel at a time and its right-to-left one in a sweep along each finished row. 64 samples
cost about one pass of the network instead of one pass over every row above per sub-pixel
(`cached=False` in the base's samplers gives that naive sampler, which the tests compare it
with).
"""
from __future__ import annotations

import keras

from keras_gen.errors import KerasGenError
from keras_gen.models.autoregressive import AutoregressiveModel
from keras_gen.models.base import check_size
from keras_gen.networks import pixelrnn as networks


@keras.saving.register_keras_serializable(package="keras_gen")
class PixelRNN(AutoregressiveModel):
    """PixelRNN (Row LSTM or Diagonal BiLSTM) over uint8 images, unconditional or class-conditional.

    Args:
      image_shape: `(H, W, C)`.
      num_classes: classes of a conditional model (a learned bias per class on every layer's
        gates); None for an unconditional one.
      hidden_size: h, the recurrent layers' units (a multiple of C); the residual stream and
        the 1x1 head have 2h feature maps, as in the paper.
      num_layers: recurrent layers.
      first_kernel_size: the odd size of the first, type-A convolution (7 in the paper).
      input_kernel_size, state_kernel_size: odd widths of the Row LSTM's K_is and K_ss (3 in
        the paper); the Diagonal BiLSTM's are the paper's 1x1 and 2x1.
      rnn: "row_lstm" (§3.1; the default) or "diagonal_bilstm" (§3.2,
        `keras_gen.layers.DiagonalBiLSTM`; its field is every earlier pixel but the row above's
        last one for a row's first W - 1 - r pixels, r = first_kernel_size // 2; the columns
        of its skewed map are a sequential loop of H + W - 1 steps).
      precision: "auto", "float32" or "mixed_bfloat16" (the LSTM cell runs in float32
        either way; logits are float32).

    Defaults (h = 32, 3 layers; 141k weights, 37k per Row LSTM): an epoch of 4,000 28x28
    images takes about a minute on 2 shared cores of an AMD EPYC, so the registry's 10
    epochs fit in a quarter of an hour (1.48 bits/dim on held-out MNIST after 2 epochs).
    The paper's best MNIST model was a 7-layer Diagonal BiLSTM (`rnn="diagonal_bilstm"`).

    `model(images)` (or `model([images, labels])`) returns logits `[B, H, W, C, 256]`.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=None,
        hidden_size=32,
        num_layers=3,
        first_kernel_size=7,
        input_kernel_size=3,
        state_kernel_size=3,
        rnn="row_lstm",
        precision="auto",
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, num_classes=num_classes, precision=precision, **kwargs)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers, minimum=0)
        self.first_kernel_size = check_size("first_kernel_size", first_kernel_size)
        self.input_kernel_size = check_size("input_kernel_size", input_kernel_size)
        self.state_kernel_size = check_size("state_kernel_size", state_kernel_size)
        if rnn not in networks.RNNS:
            raise KerasGenError(f"rnn must be one of {', '.join(networks.RNNS)}, got {rnn!r}")
        self.rnn = rnn
        sizes = {"first_kernel_size": self.first_kernel_size, "input_kernel_size": self.input_kernel_size,
                 "state_kernel_size": self.state_kernel_size}
        even = {name: size for name, size in sizes.items() if size % 2 == 0}
        if even:
            raise KerasGenError(f"PixelRNN kernel sizes must be odd, got {even}")
        if self.hidden_size % self.image_shape[2]:
            raise KerasGenError(
                f"hidden_size must be a multiple of the {self.image_shape[2]} colour channels, got {hidden_size!r}")
        self.network = networks.network(
            self.image_shape, self.hidden_size, self.num_layers, self.first_kernel_size, self.input_kernel_size,
            self.state_kernel_size, self.precision, num_classes=self.num_classes, rnn=self.rnn,
        )
        # The cell state runs from the top row down: a pixel's logits may depend on any row
        # above (the sampler then runs the network on rows 0..i to draw row i).
        self.rows_seen_above = self.image_shape[0]
        self.built = True

    def call(self, inputs, training=False):
        """uint8 images `[B, H, W, C]` (conditional: `[images, labels int [B]]`) -> logits float32
        `[B, H, W, C, 256]`."""
        images, labels = self.split_inputs(inputs)
        x = self.images_to_float(images)
        return self.network([x, labels] if self.conditional else x, training=training)

    def cached_sampler(self, labels=None):
        """The network a pixel at a time from carried states and windows (fast sampling),
        Row LSTM or Diagonal BiLSTM layers alike."""
        return networks.CachedSampler(self.network, self.image_shape, self.num_layers, labels, rnn=self.rnn)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_layers=self.num_layers,
                      first_kernel_size=self.first_kernel_size, input_kernel_size=self.input_kernel_size,
                      state_kernel_size=self.state_kernel_size, rnn=self.rnn)
        return config
