"""DCGAN: deep convolutional generative adversarial networks (Radford et al., 2016).

The game (Goodfellow et al., 2014): min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],
z ~ N(0, I). Each batch takes one discriminator step on real and generated images, then one
generator step, each with its own tape and Adam(2e-4, beta_1=0.5). The generator minimises
the non-saturating loss -E_z[log D(G(z))] by default; `compile(loss=...)` takes any pair of
`keras_gen.losses` and every stabiliser of `AdversarialModel.compile`.

Networks (`keras_gen.networks.dcgan`): a generator of strided transposed convolutions with
batch norm, and a discriminator of strided convolutions with LeakyReLU(0.2). Images are uint8
on the way in and [0, 1] floats (or uint8 in exports) on the way out; the networks work in
[-1, 1].
"""
from __future__ import annotations

import keras

from keras_gen.models.adversarial import AdversarialModel
from keras_gen.models.base import check_sizes
from keras_gen.networks import dcgan as networks


@keras.saving.register_keras_serializable(package="keras_gen")
class DCGAN(AdversarialModel):
    """DCGAN with a generator and a discriminator sub-model.

    Args:
      image_shape: `(H, W, C)`; H and W divisible by `2 ** len(generator_widths)`.
      latent_dim: size of z.
      generator_widths: feature maps of the generator, coarsest first.
      discriminator_widths: feature maps of the discriminator's stride-2 convolutions.
      precision: "auto" (mixed_bfloat16 on a CPU with native bfloat16, else float32), "float32" or
        "mixed_bfloat16" (bf16 compute, float32 weights and logits).
      spectral_norm: spectrally normalise every layer of the discriminator (Miyato et al. 2018).
      minibatch_stddev: give the discriminator a minibatch standard-deviation map before its
        last convolution, so it can see a batch's lack of variety (Karras et al. 2018).
      seed, ema_decay, generator, discriminator: as `AdversarialModel`.

    `model(z)` / `generate(z)` map latents `[B, latent_dim]` to images `[B, H, W, C]` in [0, 1].
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=64,
        generator_widths=(128, 64),
        discriminator_widths=(64, 128),
        precision="auto",
        seed=None,
        spectral_norm=False,
        minibatch_stddev=False,
        **kwargs,
    ):
        self.generator_widths = check_sizes("generator_widths", generator_widths)
        self.discriminator_widths = check_sizes("discriminator_widths", discriminator_widths)
        self.spectral_norm = bool(spectral_norm)
        self.minibatch_stddev = bool(minibatch_stddev)
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, precision=precision, seed=seed, **kwargs)

    def build_generator(self):
        return networks.generator(self.image_shape, self.latent_dim, self.generator_widths, self.precision)

    def build_discriminator(self):
        return networks.discriminator(self.image_shape, self.discriminator_widths, self.precision,
                                      spectral_norm=self.spectral_norm, minibatch_stddev=self.minibatch_stddev)

    def get_config(self):
        config = super().get_config()
        config.update(
            generator_widths=list(self.generator_widths),
            discriminator_widths=list(self.discriminator_widths),
            spectral_norm=self.spectral_norm,
            minibatch_stddev=self.minibatch_stddev,
        )
        return config
