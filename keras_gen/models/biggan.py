"""BigGAN: large-scale GAN training for high-fidelity natural image synthesis (Brock et al., 2019),
at a size that trains on a CPU.

What the paper adds to a class-conditional SN-GAN with self-attention (SAGAN, Zhang et al. 2019):
- a shared class embedding e(y), and hierarchical latents: z is split into one chunk for the
  generator's first layer and one per residual block; block i's conditional batch norms take
  [e(y), z_i] (`keras_gen.networks.biggan`);
- spectral norm in both players, self-attention at one resolution, a projection discriminator,
  the hinge loss;
- orthogonal regularisation R = β Σ ‖WᵀW ⊙ (1 − I)‖²_F (β = 1e-4) on G, which makes G amenable
  to the truncation trick: z ~ N(0, I) resampled to |z| <= t at sampling time trades variety for
  fidelity (`sample(n, seed, labels, truncation=0.5)`; the exported `sample` signature takes it
  too, 0 meaning none);
- an exponential moving average of G's weights draws the samples (`ema_decay`).

Training is `AdversarialModel.train_step`; this class only chooses networks and defaults.
"""
from __future__ import annotations

import numbers

import keras

from keras_gen.errors import KerasGenError
from keras_gen.models.adversarial import AdversarialModel, _adam
from keras_gen.networks import biggan as networks


@keras.saving.register_keras_serializable(package="keras_gen")
class BigGAN(AdversarialModel):
    """Class-conditional BigGAN for small images (H and W divisible by 4, any channels).

    Args:
      image_shape: `(H, W, C)`; the generator starts from an H/4 x W/4 map.
      num_classes: classes of the labels (None: unconditional, no embedding or projection).
      latent_dim: size of z; divisible by 3 (one chunk for the first dense layer, one per
        up-sampling block). 120 as in the paper (there with 6 chunks of 20; here 3 of 40).
      channels: base width c; G's maps have 4c, 2c, c channels, D's c, 2c, 4c. 32 trains
        28x28 digits on a CPU (the paper's 128x128 model has c = 96 and 16c at the bottom).
      embed_dim: size of the shared class embedding (128 in the paper for 1000 classes;
        32 is plenty for 10).
      attention_resolution: height of the feature maps that get a self-attention block in
        both players, H/4 or H/2; "auto" (the default) is H/2, 14x14 for digits; None: none.
      precision: "auto" (mixed_bfloat16 on a CPU with native bfloat16, else float32), "float32" or
        "mixed_bfloat16".
      seed: seed of the training noise streams.
      ema_decay: decay of the EMA generator that draws the samples (None: sample from G).
        0.999 averages over ~1,000 steps, about one epoch of 60k images at batch 64; the
        paper's 0.9999 averages over more steps than a small run has.

    `model([z, labels])` / `generate(z, labels)` map latents and labels to images in [0, 1].
    """

    offers_truncation = True

    # Hinge loss and β = 1e-4 as in the paper; Adam with beta_1 = 0, beta_2 = 0.999 as in the
    # paper. The paper's G 5e-5 / D 2e-4 with 2 D steps is tuned for batch 2048 on ImageNet;
    # at batch 64 on small data we take one D step (half the cost of a step on a CPU) and
    # equal rates of 2e-4, so a single D update keeps pace with G.
    COMPILE_DEFAULTS = {
        **AdversarialModel.COMPILE_DEFAULTS,
        "loss": "hinge",
        "d_optimizer": _adam(2e-4, beta_1=0.0, beta_2=0.999),
        "g_optimizer": _adam(2e-4, beta_1=0.0, beta_2=0.999),
        "d_steps": 1,
        "orthogonal_regularization": 1e-4,
    }

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        latent_dim=120,
        channels=32,
        embed_dim=32,
        attention_resolution="auto",
        precision="auto",
        seed=None,
        ema_decay=0.999,
        **kwargs,
    ):
        for name, value in (("channels", channels), ("embed_dim", embed_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise KerasGenError(f"{name} must be a positive whole number, got {value!r}")
        if isinstance(attention_resolution, str) and attention_resolution == "auto":
            try:
                attention_resolution = int(tuple(image_shape)[0]) // 2
            except (TypeError, ValueError, IndexError):
                attention_resolution = None  # GenerativeModel reports the bad image_shape
        elif attention_resolution is not None:
            if isinstance(attention_resolution, bool) or not isinstance(attention_resolution, numbers.Integral):
                raise KerasGenError(
                    f"attention_resolution must be a feature-map height, 'auto' or None, got {attention_resolution!r}"
                )
            attention_resolution = int(attention_resolution)
        self.channels = int(channels)
        self.embed_dim = int(embed_dim)
        self.attention_resolution = attention_resolution
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, num_classes=num_classes,
                         precision=precision, seed=seed, ema_decay=ema_decay, **kwargs)

    def build_generator(self):
        return networks.generator(self.image_shape, self.latent_dim, self.num_classes, self.channels,
                                  self.embed_dim, self.attention_resolution, self.precision)

    def build_discriminator(self):
        return networks.discriminator(self.image_shape, self.num_classes, self.channels,
                                      self.attention_resolution, self.precision)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, embed_dim=self.embed_dim,
                      attention_resolution=self.attention_resolution)
        return config
