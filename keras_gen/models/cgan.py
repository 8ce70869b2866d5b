"""Class-conditional GANs: a projection-discriminator cGAN and AC-GAN.

Both draw x = G(z, y), y ∈ {0, ..., K-1}, from the same generator: DCGAN's, with every batch
norm a conditional batch norm on a learned label embedding (`keras_gen.networks.conditional`).
They differ in how D uses the class:

- `CGAN` (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018): D(x, y) =
  ψ(φ(x)) + e_y · φ(x), the log density ratio of a conditional model written as an
  unconditional term plus the inner product of a class embedding with D's features. Default
  loss: hinge, as in the paper's experiments. The projection logit is a raw critic value (the
  inner product is unbounded), and the hinge stops D pushing an example once it is past the
  margin, so D's class term does not grow without limit on examples it already separates;
  the cross-entropy loss keeps rewarding ever larger |logit| there.
- `ACGAN` (Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier
  GANs", ICML 2017): D sees only the image and has two heads, real/fake and a K-way
  classifier. D minimises the non-saturating adversarial loss + the class cross-entropy on real
  and fake images; G minimises its adversarial loss + the class cross-entropy of its fakes
  (the paper's L_S and L_C). `classify(images)` exposes D's classifier.

Training takes `(images, labels)` batches (`fit(images, labels)` or a dataset of pairs); the
fakes of a step take the labels of its real batch. `generate(z, labels)`, `sample(n, seed,
labels)` and the serving signatures come from `LatentModel`.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen.models.adversarial import AdversarialModel
from keras_gen.models.base import MAX_SAMPLES, Endpoint, assert_image_batch, check_size, check_sizes, in_chunks
from keras_gen.networks import conditional as networks

CLASSIFY_CHUNK = 256  # images per call of D in the exported `classify`


class _ClassConditionalGAN(AdversarialModel):
    """The hyper-parameters and generator both class-conditional GANs share."""

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        latent_dim=64,
        generator_widths=(128, 64),
        discriminator_widths=(64, 128),
        embed_dim=32,
        precision="auto",
        seed=None,
        ema_decay=None,
        **kwargs,
    ):
        self.generator_widths = check_sizes("generator_widths", generator_widths)
        self.discriminator_widths = check_sizes("discriminator_widths", discriminator_widths)
        self.embed_dim = check_size("embed_dim", embed_dim)
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            num_classes=num_classes,
            precision=precision,
            seed=seed,
            ema_decay=ema_decay,
            **kwargs,
        )

    def build_generator(self):
        return networks.generator(
            self.image_shape, self.latent_dim, self.num_classes, self.generator_widths, self.embed_dim, self.precision
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            generator_widths=list(self.generator_widths),
            discriminator_widths=list(self.discriminator_widths),
            embed_dim=self.embed_dim,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_gen")
class CGAN(_ClassConditionalGAN):
    """Class-conditional GAN: conditional-batch-norm generator, projection discriminator.

    Args:
      image_shape: `(H, W, C)`; H and W divisible by `2 ** len(generator_widths)`.
      num_classes: K, the number of classes (labels 0..K-1).
      latent_dim: size of z.
      generator_widths: feature maps of the generator, coarsest first.
      discriminator_widths: feature maps of the discriminator's stride-2 convolutions.
      embed_dim: size of the generator's label embedding, the input of its conditional batch
        norms (the projection's class embedding has the size of D's features).
      precision: "auto" (mixed_bfloat16 on a CPU with native bfloat16, else float32), "float32" or
        "mixed_bfloat16" (bf16 compute, float32 weights and logits).
      seed, ema_decay, generator, discriminator: as `AdversarialModel`.

    Default loss "hinge" (Miyato & Koyama 2018); `compile(loss=...)` takes any other pair.
    """

    COMPILE_DEFAULTS = {**AdversarialModel.COMPILE_DEFAULTS, "loss": "hinge"}

    def build_discriminator(self):
        return networks.projection_discriminator(
            self.image_shape, self.num_classes, self.discriminator_widths, self.precision
        )


@keras.saving.register_keras_serializable(package="keras_gen")
class ACGAN(_ClassConditionalGAN):
    """AC-GAN: conditional-batch-norm generator, discriminator with a class head.

    Args: as `CGAN`. D takes images only and returns `[logits [B, 1], class_logits [B, K]]`;
    the class cross-entropy (`keras_gen.losses.acgan_*`) is added to both players' losses.
    Default loss "non_saturating": the paper's G maximises L_C − L_S (eq. 2–3), the saturating
    form of its source term; the non-saturating one (Goodfellow et al. 2014, sec. 3) is the
    usual practical choice, "minimax" gives the paper's.
    """

    def build_discriminator(self):
        return networks.auxiliary_discriminator(
            self.image_shape, self.num_classes, self.discriminator_widths, self.precision
        )

    def discriminate(self, images, labels, training):
        """D on images alone: `(logits [B, 1] float32, class_logits [B, K])`; labels are not shown."""
        logits, class_logits = self.discriminator(images, training=training)
        return tf.cast(logits, tf.float32), class_logits

    def auxiliary_discriminator_loss(self, real_aux, fake_aux, labels):
        """Class cross-entropy of D's classifier on the real batch and on its fakes (same labels)."""
        return losses.acgan_discriminator_loss(real_aux, labels, fake_aux, labels)

    def auxiliary_generator_loss(self, fake_aux, labels):
        """Class cross-entropy of D's classifier on G's fakes against the classes asked for."""
        return losses.acgan_generator_loss(fake_aux, labels)

    def classify(self, images, batch_size=256):
        """`(probabilities float32 [B, K], label int32 [B])` from D's classifier for uint8 images
        `[B, H, W, C]`: any number of images, `batch_size` at a time, also where traced with the
        batch size unknown."""
        images = self.check_images(images)
        batch_size = check_size("batch_size", batch_size)
        if getattr(self, "_classify_fn", None) is None:
            outputs = [(tf.float32, [self.num_classes]), (tf.int32, [])]
            self._classify_fn = tf.function(
                lambda x, chunk: in_chunks(self._classify_graph, (x,), chunk, outputs),
                input_signature=[tf.TensorSpec([None, *self.image_shape], tf.uint8), tf.TensorSpec([], tf.int32)],
                jit_compile=False)
        return self._classify_fn(images, tf.constant(batch_size, tf.int32))

    def _classify_graph(self, images):
        _, class_logits = self.discriminator(self.images_to_float(images), training=False)
        class_logits = tf.cast(class_logits, tf.float32)
        return tf.nn.softmax(class_logits, axis=-1), tf.argmax(class_logits, axis=-1, output_type=tf.int32)

    def serving_endpoints(self):
        """`LatentModel`'s, and `classify`: D's classifier."""
        h, w, c = self.image_shape

        def classify(images):
            images = assert_image_batch(images, self.image_shape)
            probabilities, label = in_chunks(self._classify_graph, (images,), CLASSIFY_CHUNK,
                                             [(tf.float32, [self.num_classes]), (tf.int32, [])])
            return {"probabilities": probabilities, "label": label}

        return [*super().serving_endpoints(), Endpoint(
            "classify", classify, [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")],
            f"images uint8 [batch, {h}, {w}, {c}] (1 to {MAX_SAMPLES} images) -> probabilities float32 "
            f"[batch, {self.num_classes}] from D's classifier, label int32 [batch]")]
