"""DCGAN: deep convolutional generative adversarial networks (Radford et al., 2016).

The game (Goodfellow et al., 2014): min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],
z ~ N(0, I). Each batch takes one discriminator step on real and generated images, then
one generator step, each with its own tape and optimizer. The generator minimises the
non-saturating loss -E_z[log D(G(z))] by default, or the minimax E_z[log(1 - D(G(z)))].

Generator: Dense -> BN -> ReLU -> reshape to (H/2^k, W/2^k, widths[0]) -> k-1 x
[ConvT(4, stride 2) -> BN -> ReLU] -> ConvT(C, 4, stride 2) -> tanh, with
k = len(generator_widths). Discriminator: len(discriminator_widths) x [Conv(4, stride 2) ->
LeakyReLU(0.2)] -> Dense(1) logit. Images are uint8 on the way in and [0, 1] floats (or
uint8 in exports) on the way out; the networks work in [-1, 1].
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.errors import KerasGenError
from keras_gen.models.base import DEFAULT_JIT_COMPILE, Endpoint, GenerativeModel, images_to_uint8, stateless_seed


def build_generator(image_shape, latent_dim, widths, dtype):
    h, w, c = image_shape
    scale = 2 ** len(widths)
    if h % scale or w % scale:
        raise KerasGenError(
            f"image size {h}x{w} is not divisible by 2^{len(widths)} (one stride-2 layer per generator width)"
        )
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Dense((h // scale) * (w // scale) * widths[0], dtype=dtype),
        keras.layers.BatchNormalization(dtype=dtype),
        keras.layers.ReLU(dtype=dtype),
        keras.layers.Reshape((h // scale, w // scale, widths[0]), dtype=dtype),
    ]
    for width in widths[1:]:
        layers += [
            keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", dtype=dtype),
            keras.layers.BatchNormalization(dtype=dtype),
            keras.layers.ReLU(dtype=dtype),
        ]
    layers += [
        keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same", dtype=dtype),
        keras.layers.Activation("tanh", dtype="float32"),  # images in float32 whatever the policy
    ]
    return keras.Sequential(layers, name="generator")


def build_discriminator(image_shape, widths, dtype):
    layers = [keras.Input(image_shape)]
    for width in widths:
        layers += [
            keras.layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype),
            keras.layers.LeakyReLU(0.2, dtype=dtype),
        ]
    layers += [keras.layers.Flatten(dtype=dtype), keras.layers.Dense(1, dtype="float32")]  # logits in float32
    return keras.Sequential(layers, name="discriminator")


@keras.saving.register_keras_serializable(package="keras_gen")
class DCGAN(GenerativeModel):
    """DCGAN with a generator and a discriminator sub-model.

    Args:
      image_shape: `(H, W, C)`; H and W divisible by `2 ** len(generator_widths)`.
      latent_dim: size of z.
      generator_widths: feature maps of the generator, coarsest first.
      discriminator_widths: feature maps of the discriminator's stride-2 convolutions.
      precision: "float32" or "mixed_bfloat16" (bf16 compute, float32 weights and logits).
      seed: seed of the training noise stream (a `keras.random.SeedGenerator`).

    `model(z)` / `generate(z)` map latents `[B, latent_dim]` to images `[B, H, W, C]` in [0, 1].
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=64,
        generator_widths=(128, 64),
        discriminator_widths=(64, 128),
        precision="float32",
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, precision=precision, **kwargs)
        self.latent_dim = int(latent_dim)
        self.generator_widths = tuple(int(w) for w in generator_widths)
        self.discriminator_widths = tuple(int(w) for w in discriminator_widths)
        self.seed = seed
        self.generator = build_generator(self.image_shape, self.latent_dim, self.generator_widths, precision)
        self.discriminator = build_discriminator(self.image_shape, self.discriminator_widths, precision)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        generator_loss="non_saturating",
        jit_compile=DEFAULT_JIT_COMPILE,
        **kwargs,
    ):
        """Set both players' optimizers (default Adam(2e-4, beta_1=0.5) each, as in the paper).

        Both optimizers are built on their variables here, so a saved model restores their
        state (Keras skips unbuilt optimizers when loading).
        """
        if generator_loss not in losses.GENERATOR_LOSSES:
            raise KerasGenError(f"generator_loss must be one of {losses.GENERATOR_LOSSES}, got {generator_loss!r}")
        super().compile(optimizer=None, jit_compile=jit_compile, **kwargs)
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer else keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer else keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.generator_loss = generator_loss
        self._remember_compile(
            d_optimizer=self.d_optimizer,
            g_optimizer=self.g_optimizer,
            generator_loss=generator_loss,
            jit_compile=jit_compile,
            **kwargs,
        )

    def call(self, z, training=False):
        """Latents `[B, latent_dim]` -> generator output in [-1, 1]."""
        return self.generator(z, training=training)

    def generate(self, z):
        """Latents `[B, latent_dim]` -> images float32 `[B, H, W, C]` in [0, 1] (inference mode)."""
        return (self.generator(z, training=False) + 1.0) / 2.0

    def latents(self, n, seed=0):
        """`n` latents z ~ N(0, I), the same for the same seed (stateless)."""
        return tf.random.stateless_normal([n, self.latent_dim], seed=stateless_seed(seed))

    def sample(self, n, seed=0):
        return self.generate(self.latents(n, seed))

    def train_step(self, data):
        real_images = data[0] if isinstance(data, (tuple, list)) else data
        real = self.images_to_float(real_images)
        batch_size = tf.shape(real)[0]

        # Discriminator: maximise log D(x) + log(1 - D(G(z))).
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        fake = self.generator(z, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = losses.discriminator_loss(real_logits, fake_logits)
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)

        # Generator: fool the updated discriminator.
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_logits = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = losses.generator_loss(g_logits, self.generator_loss)
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32))))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32))))
        return {m.name: m.result() for m in self.metrics}

    def serving_endpoints(self):
        def from_latents(z):
            return {"images": images_to_uint8(self.generate(z))}

        h, w, c = self.image_shape
        return [
            Endpoint(
                "serving_default",
                from_latents,
                [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")],
                f"z float32 [batch, {self.latent_dim}] -> images uint8 [batch, {h}, {w}, {c}]",
            ),
            self.sample_endpoint(
                lambda n, seed: images_to_uint8(self.sample(n, seed)),
                "z ~ N(0, I) drawn statelessly from the seed, so the same seed gives the same images",
            ),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_dim=self.latent_dim,
            generator_widths=list(self.generator_widths),
            discriminator_widths=list(self.discriminator_widths),
            seed=self.seed,
        )
        return config
