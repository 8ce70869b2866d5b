"""The adversarial base: a generator G and a discriminator (critic) D in a two-player game.

    D: min  L_D(D(x), D(G(z)))  +  λ · penalty(D)      (d_steps updates per batch)
    G: min  L_G(D(G(z)))        (+ β · orthogonality of G's kernels, BigGAN)

`L_D` / `L_G` is a named pair from `keras_gen.losses` (minimax, non_saturating, wasserstein,
hinge, least_squares). Every stabiliser of the lecture is one `compile` option, usable on any
GAN: a penalty (WGAN-GP's gradient penalty, DRAGAN, R1), WGAN's weight clipping, annealed
instance noise, DiffAugment on real and fake alike, a replay buffer of past fakes, BigGAN's
orthogonal regularisation. An EMA copy of G (`ema_decay`) draws the samples when present.
Conditional models (`num_classes`) feed labels to both players; fakes take the labels of the
real batch they are paired with.

One tape and one optimizer per player, as in the papers; both optimizers are built in
`compile`, so a saved model restores their state.
"""
from __future__ import annotations

import math
import numbers
import warnings

import keras
import tensorflow as tf

from keras_gen import augment as augment_lib
from keras_gen import distribute, losses, regularizers
from keras_gen.errors import KerasGenError, caller_outside_the_libraries, first_line
from keras_gen.models.base import check_size, in_chunks
from keras_gen.models.latent import LatentModel
from keras_gen.models.optimizers import SeveralOptimizers, schedule_per_training_step

PENALTIES = ("gradient_penalty", "dragan", "r1")
MAX_D_STEPS = 100  # discriminator updates per generator update, at most (WGAN: 5)

_DEFAULT = object()  # a compile argument left to the model's COMPILE_DEFAULTS


# A generator ending in one of these cannot make the dark half of [-1, 1].
NON_NEGATIVE_ACTIVATIONS = {"sigmoid", "hard_sigmoid", "relu", "relu6", "softplus", "softmax", "exponential"}


def _final_activation(network):
    """The name of the last activation a Sequential or functional network applies, looking
    back past layers that only move values (Reshape, Permute, Flatten, cropping); None when
    unknown or linear."""
    for layer in reversed(getattr(network, "layers", None) or []):
        if isinstance(layer, keras.layers.ReLU):
            return "relu"
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if activation is not None:
            return None if activation == "linear" else activation
        if not isinstance(layer, (keras.layers.Reshape, keras.layers.Permute, keras.layers.Flatten,
                                  keras.layers.Cropping2D)):
            return None
    return None


def _logged_sum(*terms):
    """The sum of scalar losses, for a tracker: one Sum over the stacked terms (the value of
    adding them left to right), not an Add. Grappler's arithmetic optimizer folds an Add used
    only by a tracker into the tracker's own add, as a 3-input AddN, and TensorFlow's AddN
    accumulates into whichever input buffer it can reuse at run time, so the logged `loss`
    varied in its last bit from run to run (keras_gen.resume: resumed runs are bit-identical)."""
    return tf.reduce_sum(tf.stack(terms))


def _adam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999):
    return {"class_name": "Adam", "config": {"learning_rate": learning_rate, "beta_1": beta_1, "beta_2": beta_2}}


def _non_negative(name, value, optional=False):
    """A compile setting that must be a finite number >= 0 (or None, if `optional`), as a float."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise KerasGenError(f"{name} must be a finite number >= 0{' (or None)' if optional else ''}, got {value!r}"[:300])
    return float(value)


class AdversarialModel(LatentModel):
    """Base of GANs. Subclasses define `build_generator()` and `build_discriminator()` (see
    `keras_gen.networks`) and may change `COMPILE_DEFAULTS` (their paper's settings).

    Args:
      image_shape, latent_dim, num_classes, precision: as `LatentModel`.
      seed: seed of the training noise streams (`keras.random.SeedGenerator`s, saved with
        the model); not of the initial weights, which come from Keras' global seed: call
        `keras.utils.set_random_seed(s)` before building for the same weights every time
        (`keras-gen train` and `keras_gen.training.train` do, with the recipe's seed).
      ema_decay: keep an exponential moving average of G's weights with this decay and draw
        samples from it (Yazıcı et al. 2019; BigGAN); None for none.
      generator, discriminator: networks to use instead of building them from the
        hyper-parameters (serialised with the model).

    `fit` reports `loss` (= d_loss + g_loss + the weighted penalty and the orthogonality term:
    everything minimised),
    `d_loss`, `g_loss`, `d_real` and `d_fake` (mean D(x) and D(G(z)): probabilities for
    the cross-entropy losses, raw critic values for the others) and `penalty` when one is set.
    `evaluate(images)` reports the same on held-out images without updating anything.
    """

    COMPILE_DEFAULTS = {
        "loss": "non_saturating",
        "d_optimizer": _adam(),
        "g_optimizer": _adam(),
        "d_steps": 1,
        "penalty": None,
        "penalty_weight": 10.0,
        "clip_value": None,
        "instance_noise": None,
        "instance_noise_steps": 10_000,
        "augment": None,
        "replay_buffer": None,
        "replay_fraction": 0.5,
        "orthogonal_regularization": None,
    }

    def __init__(
        self,
        image_shape,
        latent_dim=64,
        num_classes=None,
        precision="auto",
        seed=None,
        ema_decay=None,
        generator=None,
        discriminator=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, num_classes=num_classes,
                         precision=precision, **kwargs)
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise KerasGenError(f"ema_decay must be between 0 and 1 (or None), got {ema_decay}")
        self.seed = seed
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self._networks_passed_in = generator is not None or discriminator is not None
        self.generator = generator if generator is not None else self.build_generator()
        self.discriminator = discriminator if discriminator is not None else self.build_discriminator()
        if generator is not None:
            self._check_generator_passed_in(generator)
        if discriminator is not None:
            self._check_discriminator_passed_in(discriminator)
        self.ema_generator = None
        if self.ema_decay is not None:
            self.ema_generator = (
                keras.models.clone_model(self.generator) if generator is not None else self.build_generator()
            )
            self.ema_generator.set_weights(self.generator.get_weights())
            self.ema_generator.trainable = False
            # Its own name in summary() and plots (a build or a clone is named as G is); saving
            # and loading go by attribute names, so weights files are unaffected.
            self.ema_generator.name = f"{self.generator.name}_ema"
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Evaluation draws from its own stream, so validation never shifts the training noise.
        self.eval_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        for name in ("loss", "d_loss", "g_loss", "penalty"):
            self.track(name, "down")
        self.track("d_real", "up")
        self.track("d_fake", "down")
        self.show_metrics("loss", "d_loss", "g_loss", "d_real", "d_fake")
        self.replay = None
        self.built = True

    def _check_generator_passed_in(self, generator):
        """A generator passed in takes this model's latents (and labels) and makes images of its
        `image_shape` in [-1, 1]: checked symbolically, so that a mismatch is one line here, not
        a traceback from inside `fit` or images of another shape from `sample`."""
        z = keras.KerasTensor((2, self.latent_dim))
        inputs = self.generator_inputs(z, keras.KerasTensor((2,), dtype="int32"))
        wanted = f"latents [batch, {self.latent_dim}]" + (" and labels [batch]" if self.conditional else "")
        try:
            out = generator.compute_output_spec(inputs)
        except Exception as exc:  # noqa: BLE001 - Keras' own error, shortened to its first line
            first = first_line(exc)
            raise KerasGenError(f"the generator passed in does not take {wanted}: {first[:300]}") from None
        if isinstance(out, (list, tuple)) or tuple(out.shape[1:]) != tuple(self.image_shape):
            got = [tuple(o.shape) for o in out] if isinstance(out, (list, tuple)) else tuple(out.shape)
            raise KerasGenError(f"the generator passed in makes {got} from {wanted}, not images "
                                f"[batch, {', '.join(map(str, self.image_shape))}] (image_shape)")
        activation = _final_activation(generator)
        if activation in NON_NEGATIVE_ACTIVATIONS:
            warnings.warn(f"the generator passed in ends in {activation}: keras-gen reads G's images in [-1, 1] "
                          "(a tanh output) and maps them to [0, 1], so its samples will be mid-grey to white; "
                          "end it in tanh", stacklevel=caller_outside_the_libraries())

    def _check_discriminator_passed_in(self, discriminator):
        """A discriminator passed in of one input (the images) and one output gives one logit
        per image or patch (conditional and multi-head ones are checked by their models' use)."""
        if "features" not in [layer.name for layer in discriminator.layers]:
            # `discriminator_features` (and the nearest-neighbour and probe tools) read it.
            raise KerasGenError("a discriminator passed in needs a layer named 'features' (its penultimate "
                                "activations, e.g. the Flatten before the last Dense)")
        if len(getattr(discriminator, "inputs", None) or [None]) != 1 or self.conditional:
            return
        try:
            out = discriminator.compute_output_spec(keras.KerasTensor((2, *self.image_shape)))
        except Exception as exc:  # noqa: BLE001 - Keras' own error, shortened to its first line
            first = first_line(exc)
            raise KerasGenError(f"the discriminator passed in does not take images "
                                f"[batch, {', '.join(map(str, self.image_shape))}]: {first[:300]}") from None
        # One logit per image, or per patch (a PatchGAN's [batch, h, w, 1]: the losses average them).
        if not isinstance(out, (list, tuple)) and len(out.shape) > 1 and out.shape[-1] != 1:
            raise KerasGenError(f"the discriminator passed in gives {tuple(out.shape)} for 2 images, not one logit "
                                "per image [batch, 1] (or per patch, [batch, ..., 1])")

    def build_generator(self):
        raise NotImplementedError(f"{type(self).__name__} must define build_generator() or be given a generator")

    def build_discriminator(self):
        raise NotImplementedError(f"{type(self).__name__} must define build_discriminator() or be given one")

    @property
    def sampling_generator(self):
        return self.ema_generator if self.ema_generator is not None else self.generator

    # -- compile -----------------------------------------------------------------------------
    def compile(
        self,
        optimizer=None,
        d_optimizer=_DEFAULT,
        g_optimizer=_DEFAULT,
        loss=_DEFAULT,
        d_steps=_DEFAULT,
        penalty=_DEFAULT,
        penalty_weight=_DEFAULT,
        clip_value=_DEFAULT,
        instance_noise=_DEFAULT,
        instance_noise_steps=_DEFAULT,
        augment=_DEFAULT,
        replay_buffer=_DEFAULT,
        replay_fraction=_DEFAULT,
        orthogonal_regularization=_DEFAULT,
        **keras_args,
    ):
        """Set the game: both players' optimizers, the loss pair and the stabilisers.

        Args (a value left out takes the model's `COMPILE_DEFAULTS`, its paper's setting):
          optimizer: one optimizer spec for both players (each gets its own copy).
          d_optimizer, g_optimizer: each player's optimizer (instance, name or Keras config).
          loss: a `keras_gen.losses` pair name, e.g. "hinge", or a `LossPair`; LSGAN's
            targets as {"name": "least_squares", "a": -1, "b": 1, "c": 0}.
          d_steps: discriminator updates per generator update (WGAN: 5), on the same batch. A
            learning-rate schedule counts training steps for both players (D's reads its
            update count divided by d_steps), so one schedule spans the run for both.
          penalty: "gradient_penalty" (WGAN-GP), "dragan" or "r1"; `penalty_weight` λ.
          clip_value: clip D's weights to [-c, c] after each update (WGAN).
          instance_noise: initial stddev of Gaussian noise added to D's real and fake inputs,
            annealed linearly to 0 over `instance_noise_steps` generator steps.
          augment: DiffAugment policies applied to every image D sees, e.g.
            ["translation", "cutout"].
          replay_buffer: keep this many past fakes and show D `replay_fraction` of them.
          orthogonal_regularization: β of BigGAN's orthogonality penalty on G's kernels
            (Brock et al. 2019 apply it to G; embedding tables are left out).
          jit_compile, run_eagerly, steps_per_execution: as `keras.Model.compile`.
        """
        given = {k: v for k, v in locals().items()
                 if k in self.COMPILE_DEFAULTS and v is not _DEFAULT
                 and not (k.endswith("_optimizer") and v is None)}  # None: the model's default
        if optimizer is not None:
            if "d_optimizer" in given or "g_optimizer" in given:
                raise KerasGenError("give either optimizer (both players) or d_optimizer / g_optimizer, not both")
            # One spec, two instances: each player gets its own copy (a schedule's config too).
            given["d_optimizer"] = given["g_optimizer"] = keras.optimizers.serialize(self.optimizer_from(optimizer))
        settings = {**self.COMPILE_DEFAULTS, **given}

        self.d_optimizer = self.optimizer_from(settings["d_optimizer"])
        self.g_optimizer = self.optimizer_from(settings["g_optimizer"])
        if self.d_optimizer is self.g_optimizer:
            raise KerasGenError("the two players need two optimizer instances, got the same one twice")
        # Distinct names, so callbacks log `learning_rate_d_optimizer` and `..._g_optimizer`.
        self.d_optimizer.name, self.g_optimizer.name = "d_optimizer", "g_optimizer"
        loss_spec = settings["loss"]
        params = {}
        if isinstance(loss_spec, dict):
            params = {k: v for k, v in loss_spec.items() if k != "name"}
            loss_spec = loss_spec.get("name")
        self.loss_pair = losses.get(loss_spec, **params)
        self.d_steps = check_size("d_steps", settings["d_steps"], maximum=MAX_D_STEPS)  # each unrolled in the step
        # A learning-rate schedule counts training steps (G's updates) for both players.
        schedule_per_training_step(self.d_optimizer, self.d_steps)
        if settings["penalty"] is not None and settings["penalty"] not in PENALTIES:
            raise KerasGenError(f"penalty must be one of {', '.join(PENALTIES)} or None, got {settings['penalty']!r}")
        self.penalty = settings["penalty"]
        # Weights and scales checked here: a negative penalty weight rewards large gradients,
        # a NaN one trains to NaN, a negative β rewards non-orthogonal kernels.
        self.penalty_weight = _non_negative("penalty_weight", settings["penalty_weight"])
        if self.penalty is None and "penalty_weight" in given \
                and self.penalty_weight != self.COMPILE_DEFAULTS["penalty_weight"]:
            raise KerasGenError(f"penalty_weight {self.penalty_weight:g} weighs no penalty: give penalty too "
                                f"({', '.join(PENALTIES)})")
        self.clip_value = None if settings["clip_value"] is None else float(settings["clip_value"])
        self.instance_noise = _non_negative("instance_noise", settings["instance_noise"], optional=True)
        self.instance_noise_steps = check_size("instance_noise_steps", settings["instance_noise_steps"])
        policy = settings["augment"]
        self.augment = tuple([policy] if isinstance(policy, str) else policy or ())
        if self.augment:
            augment_lib.diff_augment(tf.zeros([1, *self.image_shape]), self.augment, seed=0)  # checks the names
        self.orthogonal_regularization = _non_negative("orthogonal_regularization",
                                                       settings["orthogonal_regularization"], optional=True)
        if settings["replay_buffer"] is not None:  # 0: none, as None
            settings["replay_buffer"] = check_size("replay_buffer", settings["replay_buffer"], minimum=0)
        fraction = settings["replay_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction <= 1:
            raise KerasGenError(f"replay_fraction must be a number from 0 to 1, got {fraction!r}"[:300])
        if settings["replay_buffer"] and distribute.multi_replica():
            # Each replica would keep its own past fakes in one mirrored buffer.
            raise KerasGenError("replay_buffer does not work under a multi-replica tf.distribute strategy; "
                                "train with one replica or without it")
        if settings["replay_buffer"]:
            from keras_gen.layers import ReplayBuffer

            if self.replay is None or self.replay.capacity != int(settings["replay_buffer"]):
                self.replay = ReplayBuffer(int(settings["replay_buffer"]), float(settings["replay_fraction"]))
                self.replay.build((None, *self.image_shape))
            self.replay.replay_fraction = float(settings["replay_fraction"])
        else:
            self.replay = None

        remember = {**settings, "d_optimizer": self.d_optimizer, "g_optimizer": self.g_optimizer,
                    "loss": self.loss_pair.to_config()}
        self.compile_keras(keras_args, remember)
        # Built now, on their variables: Keras skips loading the state of unbuilt optimizers.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        # `model.optimizer` for Keras' callbacks: both players; the generator's steps count.
        self.optimizer = SeveralOptimizers(lambda: {"d_optimizer": self.d_optimizer, "g_optimizer": self.g_optimizer},
                                           lambda: [self.d_optimizer, self.g_optimizer], lambda: self.g_optimizer)
        shown = ["loss", "d_loss", "g_loss", "d_real", "d_fake"] + (["penalty"] if self.penalty else [])
        self.show_metrics(*shown)

    # -- the two players -----------------------------------------------------------------------
    def discriminate(self, images, labels, training):
        """D on images in [-1, 1]: `(logits [B, 1] float32, auxiliary output or None)`."""
        inputs = [images, labels] if self.conditional else images
        out = self.discriminator(inputs, training=training)
        if isinstance(out, (list, tuple)):
            return tf.cast(out[0], tf.float32), out[1]
        return tf.cast(out, tf.float32), None

    def discriminator_view(self, images):
        """What D sees of an image: annealed instance noise, then DiffAugment (both optional)."""
        if self.instance_noise:
            stddev = regularizers.instance_noise_stddev(
                self.g_optimizer.iterations, self.instance_noise, self.instance_noise_steps
            )
            images = regularizers.add_instance_noise(images, stddev, seed=self.seed_generator)
        if self.augment:
            images = augment_lib.diff_augment(images, self.augment, seed=self.seed_generator)
        return images

    def auxiliary_discriminator_loss(self, real_aux, fake_aux, labels):
        """Extra D loss from an auxiliary output (AC-GAN's classifier); none by default."""
        return 0.0

    def auxiliary_generator_loss(self, fake_aux, labels):
        return 0.0

    def penalty_value(self, real, fake, labels, seed=None, training=True):
        """The configured penalty on D (float32 scalar), on the images D was shown; random
        draws (interpolation weights, perturbations) come from `seed` (the training stream)."""
        seed = self.seed_generator if seed is None else seed
        def critic(x):
            return self.discriminate(x, labels, training=training)[0]

        if self.penalty == "gradient_penalty":
            return regularizers.gradient_penalty(critic, real, fake, seed=seed)
        if self.penalty == "dragan":
            return regularizers.dragan_penalty(critic, real, seed=seed)
        return regularizers.r1_penalty(critic, real)

    def _kernels(self, network):
        # Every matrix and convolution kernel, but not embedding tables: BigGAN leaves its
        # shared class embedding out of the orthogonality penalty.
        return [v for v in network.trainable_variables if len(v.shape) >= 2 and v.name != "embeddings"]

    def _d_value(self, logits):
        return tf.reduce_mean(tf.sigmoid(logits) if self.loss_pair.probability else logits)

    def training_latents(self, batch_size):
        # Drawn for the global batch, each replica keeping its rows (keras_gen.distribute).
        return distribute.global_batch_draw(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator), batch_size)

    def require_labels(self, labels, images):
        if self.conditional and labels is None:
            raise KerasGenError(f"{type(self).__name__} is conditional: give (images, labels) batches")
        return self.batch_labels(labels, images) if self.conditional else None

    def train_step(self, data):
        images, labels = self.unpack(data)
        labels = self.require_labels(labels, images)
        real = self.images_to_float(images)
        batch_size = tf.shape(real)[0]

        # Discriminator (critic): d_steps updates on this batch against fresh fakes.
        for _ in range(self.d_steps):
            fake = self.generator(self.generator_inputs(self.training_latents(batch_size), labels), training=True)
            if self.replay is not None:
                fake = self.replay(fake, seed=self.seed_generator)
            real_in, fake_in = self.discriminator_view(real), self.discriminator_view(fake)
            with tf.GradientTape() as tape:
                real_logits, real_aux = self.discriminate(real_in, labels, training=True)
                fake_logits, fake_aux = self.discriminate(fake_in, labels, training=True)
                d_loss = self.loss_pair.discriminator(real_logits, fake_logits)
                d_loss += self.auxiliary_discriminator_loss(real_aux, fake_aux, labels)
                d_total = d_loss
                if self.penalty:
                    penalty = self.penalty_value(real_in, fake_in, labels)
                    d_total += self.penalty_weight * penalty
                # This replica's part of the global batch's mean (keras_gen.distribute).
                d_objective = distribute.global_mean_part(d_total, batch_size)
            grads = tape.gradient(d_objective, self.discriminator.trainable_variables)
            self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
            if self.clip_value is not None:
                regularizers.clip_weights(self.discriminator.trainable_variables, self.clip_value)

        # Generator: fool the updated discriminator.
        z = self.training_latents(batch_size)
        with tf.GradientTape() as tape:
            fake = self.generator(self.generator_inputs(z, labels), training=True)
            g_logits, g_aux = self.discriminate(self.discriminator_view(fake), labels, training=True)
            g_loss = self.loss_pair.generator(g_logits) + self.auxiliary_generator_loss(g_aux, labels)
            g_total = g_loss
            g_objective = distribute.global_mean_part(g_loss, batch_size)
            if self.orthogonal_regularization:
                orthogonality = regularizers.orthogonal_regularization(
                    self._kernels(self.generator), self.orthogonal_regularization
                )
                g_total += orthogonality
                # The same on every replica: counted once in the replicas' summed gradients.
                g_objective += distribute.replica_part(orthogonality)
        grads = tape.gradient(g_objective, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.ema_generator is not None:
            self.update_ema()

        weight = distribute.batch_weight(batch_size)
        self.update_metrics(weight, loss=_logged_sum(d_total, g_total), d_loss=d_loss, g_loss=g_loss,
                            d_real=self._d_value(real_logits), d_fake=self._d_value(fake_logits))
        if self.penalty:
            self.update_metrics(weight, penalty=penalty)
        return self.metric_results()

    def ema_decay_at(self, updates):
        """The decay of the average's `updates`-th update: min(decay, (1 + t) / (10 + t)), the
        warm-up of `tf.train.ExponentialMovingAverage(num_updates=t)`. Without it the average
        of a short run is mostly G's random initial weights (decay 0.999 after 640 steps:
        0.999^640 = 53 % of them, and samples of noise); with it the first updates nearly copy
        G and the window grows to 1 / (1 − decay) steps (0.999 from step 8,991 on)."""
        t = tf.cast(updates, tf.float64)
        return tf.minimum(tf.constant(self.ema_decay, tf.float64), (1.0 + t) / (10.0 + t))

    def update_ema(self):
        """ema ← d_t · ema + (1 − d_t) · G for weights (d_t = `ema_decay_at(t)`, t the generator
        updates so far); batch-norm statistics are copied.

        So the average normalises with G's moving statistics, gathered for G's own weights, not
        its own. The authors' BigGAN-PyTorch averages them as well, and can recompute
        "standing statistics" for the averaged G; neither is done here. Measured on
        biggan-mnist5k, the average still samples better than G (README, "Zoo")."""
        decay = self.ema_decay_at(self.g_optimizer.iterations)
        trained = {id(w) for w in self.generator.trainable_weights}
        # Paired by position: the copy is built like G (and frozen, so all its weights are
        # non-trainable); G's own trainable flags say which to average.
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights):
            if id(weight) in trained:
                # d and 1 − d in float64, then rounded: past the warm-up, the float32 constants the
                # plain average used (1 − d in float32 would be 0.0009999871 for d = 0.999).
                ema.assign(tf.cast(decay, ema.dtype) * ema + tf.cast(1.0 - decay, ema.dtype) * weight)
            else:
                ema.assign(weight)

    def evaluate(self, *args, **kwargs):
        """Keras' `evaluate` (also `fit`'s validation): the game's losses on held-out images
        against fakes from the evaluation noise stream, which every call starts at the same
        place, so that a call repeats itself and the epochs' `val_` figures differ by the
        weights alone (the stream advanced from call to call: three calls of a zoo DCGAN gave
        losses 2.0199, 2.0207 and 2.0165)."""
        state = self.eval_seed_generator.state
        start = keras.ops.convert_to_numpy(state.value)
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            state.assign(start)

    def test_step(self, data):
        """The game's losses (and penalty) on held-out real images and fresh fakes; nothing is
        updated. Orthogonal regularisation, a property of the weights alone, is left out."""
        images, labels = self.unpack(data)
        labels = self.require_labels(labels, images)
        real = self.images_to_float(images)
        batch_size = tf.shape(real)[0]
        z = distribute.global_batch_draw(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.eval_seed_generator), batch_size)
        fake = self.generator(self.generator_inputs(z, labels), training=False)
        real_logits, real_aux = self.discriminate(real, labels, training=False)
        fake_logits, fake_aux = self.discriminate(fake, labels, training=False)
        d_loss = self.loss_pair.discriminator(real_logits, fake_logits)
        d_loss += self.auxiliary_discriminator_loss(real_aux, fake_aux, labels)
        g_loss = self.loss_pair.generator(fake_logits) + self.auxiliary_generator_loss(fake_aux, labels)
        terms = [d_loss, g_loss]
        if self.penalty:
            penalty = self.penalty_value(real, fake, labels, seed=self.eval_seed_generator, training=False)
            terms.append(self.penalty_weight * penalty)
        weight = distribute.batch_weight(batch_size)
        if self.penalty:
            self.update_metrics(weight, penalty=penalty)
        self.update_metrics(weight, loss=_logged_sum(*terms), d_loss=d_loss, g_loss=g_loss,
                            d_real=self._d_value(real_logits), d_fake=self._d_value(fake_logits))
        return self.metric_results()

    # -- the discriminator as a representation ---------------------------------------------------
    def discriminator_features(self, images, batch_size=256):
        """D's penultimate activations (its layer `features`) for uint8 images: float32 `[B, F]`.

        For a conditional D the features come before the labels enter (the projection). Any
        number of images, `batch_size` at a time, also where traced with the batch size
        unknown (a `tf.function`, `Dataset.map`). With `minibatch_stddev`, D's features hold a
        standard deviation over groups of the images D sees together, so an image's features
        depend on the others in its chunk of `batch_size` (the same images in the same order
        and chunks give the same features).
        """
        images = self.check_images(images)
        batch_size = check_size("batch_size", batch_size)
        if getattr(self, "_features_fn", None) is None:
            features = self.discriminator.get_layer("features").output
            feature_model = keras.Model(self.discriminator.inputs, features)
            size = math.prod(int(d) for d in features.shape[1:])
            with_labels = len(feature_model.inputs) > 1  # the labels enter after the features

            def chunk_features(images):
                x = self.images_to_float(images)
                inputs = [x, tf.zeros([tf.shape(x)[0]], tf.int32)] if with_labels else x
                return tf.reshape(tf.cast(feature_model(inputs, training=False), tf.float32), [-1, size])

            self._features_fn = tf.function(
                lambda x, chunk: in_chunks(chunk_features, (x,), chunk, [(tf.float32, [size])]),
                input_signature=[tf.TensorSpec([None, *self.image_shape], tf.uint8), tf.TensorSpec([], tf.int32)],
                jit_compile=False)
        return self._features_fn(images, tf.constant(batch_size, tf.int32))

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed, ema_decay=self.ema_decay)
        if self._networks_passed_in:
            config.update(
                generator=keras.saving.serialize_keras_object(self.generator),
                discriminator=keras.saving.serialize_keras_object(self.discriminator),
            )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
