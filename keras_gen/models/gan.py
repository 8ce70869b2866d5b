"""GAN: the original generative adversarial nets (Goodfellow et al., 2014), with MLP players.

A generator G maps noise z to images and a discriminator D gives the probability that an
image is real; they play the two-player minimax game (eq. 1)

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

D maximises V by binary cross-entropy. For G the paper notes (sec. 3) that log(1 - D(G(z)))
saturates early in training, when D rejects the samples confidently, and recommends
maximising log D(G(z)) instead: the same fixed point with strong gradients. That
non-saturating loss is the default; `compile(loss="minimax")` plays the saturating game of
eq. 1. Algorithm 1 takes k discriminator steps per generator step and the experiments use
k = 1 (`d_steps=1`).

Paper settings and what is kept: fully connected networks (`keras_gen.networks.mlp`), ReLU
units in G and dropout in D (here 0.3 after each hidden layer); G's sigmoid output becomes
tanh and D's maxout units LeakyReLU(0.2). The paper trained with SGD and momentum; the
default here is Adam(2e-4, beta_1=0.5) for both players (Radford et al., 2016), which needs
no learning-rate schedule. z ~ N(0, I), `latent_dim=100`.

Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio, "Generative
Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661).
"""
from __future__ import annotations

import numbers

import keras

from keras_gen.errors import KerasGenError
from keras_gen.models.adversarial import AdversarialModel
from keras_gen.models.base import check_sizes
from keras_gen.networks import mlp as networks


@keras.saving.register_keras_serializable(package="keras_gen")
class GAN(AdversarialModel):
    """The original GAN with a multilayer-perceptron generator and discriminator.

    Args:
      image_shape: `(H, W, C)`, any size (the networks are fully connected).
      latent_dim: size of z.
      generator_units: widths of the generator's hidden layers, first to last.
      discriminator_units: widths of the discriminator's hidden layers, first to last; the
        last one's activations are its `features`.
      discriminator_dropout: dropout rate after each hidden layer of D (0 for none).
      precision: "auto" (mixed_bfloat16 on a CPU with native bfloat16, else float32), "float32" or
        "mixed_bfloat16".
      seed, ema_decay, generator, discriminator: as `AdversarialModel`.

    `model(z)` / `generate(z)` map latents `[B, latent_dim]` to images `[B, H, W, C]` in [0, 1].
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        generator_units=(256, 512),
        discriminator_units=(512, 256),
        discriminator_dropout=0.3,
        precision="auto",
        seed=None,
        **kwargs,
    ):
        self.generator_units = check_sizes("generator_units", generator_units)
        self.discriminator_units = check_sizes("discriminator_units", discriminator_units)
        if isinstance(discriminator_dropout, bool) or not isinstance(discriminator_dropout, numbers.Real) \
                or not 0.0 <= discriminator_dropout < 1.0:
            raise KerasGenError(f"discriminator_dropout must be a rate from 0 to below 1, got {discriminator_dropout!r}")
        self.discriminator_dropout = float(discriminator_dropout)
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, precision=precision, seed=seed, **kwargs)

    def build_generator(self):
        return networks.generator(self.image_shape, self.latent_dim, self.generator_units, self.precision)

    def build_discriminator(self):
        return networks.discriminator(
            self.image_shape, self.discriminator_units, self.discriminator_dropout, self.precision
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            generator_units=list(self.generator_units),
            discriminator_units=list(self.discriminator_units),
            discriminator_dropout=self.discriminator_dropout,
        )
        return config
