"""Regularisers that keep a GAN's critic well behaved: gradient penalties, weight clipping,
instance noise and orthogonal regularisation.

Each is a pure function that a model's `train_step` calls inside its tapes. All of them
trace under `tf.function` and return float32 whatever the compute dtype (`mixed_bfloat16`):
inputs are cast to float32 before any penalty is formed.

A *critic* is any callable `critic(images) -> [B, 1]` on float images `[B, H, W, C]` in
[-1, 1]; it may close over class labels. `seed` is anything `keras.random` accepts: a
`keras.random.SeedGenerator` (advanced by every draw, so successive steps draw afresh; the
same generator state gives the same draws) or an int (the same draws on every call).
"""
import keras
import tensorflow as tf

from keras_gen import distribute
from keras_gen.errors import KerasGenError

# Added under the square root of a squared norm: keeps the norm's derivative finite where the
# critic's input gradient is exactly zero (e.g. every ReLU dead), and moves the norm by at
# most 1e-6.
_NORM_EPSILON = 1e-12


def _per_example_shape(images, n=None):
    """`[B, 1, 1, 1]` (as many ones as image axes): one draw per example, dynamic batch
    (`n` examples instead of the images' B when given)."""
    batch = tf.shape(images)[:1] if n is None else tf.reshape(tf.cast(n, tf.int32), [1])
    return tf.concat([batch, tf.ones([images.shape.rank - 1], tf.int32)], axis=0)


def _input_gradients(critic, images):
    """∇ₓ critic(x) at every example of `images`, float32 and of the images' shape.

    Differentiates the sum of the critic's outputs over the batch. That is each example's own
    gradient when an example's output depends only on that example; layers that couple the
    batch (`MinibatchStdDev`, batch normalisation) add cross-example terms, which is how
    Karras et al. (2018) combine minibatch stddev with the WGAN-GP penalty too.
    """
    images = tf.cast(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(tf.cast(critic(images), tf.float32))
    # A critic that ignores its input has gradient zero, not None.
    gradients = tape.gradient(total, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.cast(gradients, tf.float32)


def _squared_norms(gradients):
    """‖g‖² over every pixel and channel of each example: `[B, ...] -> [B]`."""
    return tf.reduce_sum(tf.square(gradients), axis=list(range(1, gradients.shape.rank)))


def _unit_gradient_norm_penalty(critic, interpolates):
    """mean_b (‖∇ critic(x̂_b)‖₂ − 1)², the two-sided penalty of WGAN-GP and DRAGAN."""
    norms = tf.sqrt(_squared_norms(_input_gradients(critic, interpolates)) + _NORM_EPSILON)
    return tf.reduce_mean(tf.square(norms - 1.0))


def gradient_penalty(critic, real, fake, seed):
    """WGAN-GP's gradient penalty (Gulrajani et al., 2017, "Improved Training of Wasserstein GANs").

    x̂ = ε·real + (1 − ε)·fake with ε ~ Uniform(0, 1), one ε per example, and

        GP = mean_b (‖∇ₓ̂ critic(x̂_b)‖₂ − 1)²,

    the norm taken over all pixels and channels of an example. The caller multiplies by
    λ (10 in the paper) and adds it to the critic's loss.

    Args:
      critic: `critic(images) -> [B, 1]`.
      real, fake: `[B, H, W, C]` float images (any float dtype).
      seed: a `keras.random.SeedGenerator` or an int, for ε.

    Returns: a float32 scalar.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    # Drawn for the global batch, each replica keeping its rows (keras_gen.distribute).
    epsilon = distribute.global_batch_draw(
        lambda n: keras.random.uniform(_per_example_shape(real, n), dtype="float32", seed=seed), tf.shape(real)[0])
    interpolates = epsilon * real + (1.0 - epsilon) * fake
    return _unit_gradient_norm_penalty(critic, interpolates)


def dragan_penalty(critic, real, seed, scale=0.5):
    """DRAGAN's gradient penalty around the data (Kodali et al., 2017, "On Convergence and
    Stability of GANs").

    x_p = real + scale·std(real)·u with u ~ Uniform(0, 1) per pixel and std(real) the standard
    deviation of every value in the batch (as in the authors' code); x̂ = real + α(x_p − real)
    with α ~ Uniform(0, 1) per example; and

        penalty = mean_b (‖∇ₓ̂ critic(x̂_b)‖₂ − 1)².

    Unlike WGAN-GP it needs no fakes: it keeps the critic's gradients moderate in a
    neighbourhood of the real data, where mode collapse starts.

    Args:
      critic: `critic(images) -> [B, 1]`.
      real: `[B, H, W, C]` float images.
      seed: a `keras.random.SeedGenerator` or an int, for u and α.
      scale: the perturbation size in units of the data's standard deviation.

    Returns: a float32 scalar.
    """
    real = tf.cast(real, tf.float32)
    values_per_example = 1
    for size in real.shape[1:]:
        values_per_example *= int(size)
    # One draw for α and u together: an int seed gives every keras.random call the same
    # stream, so two draws from it would reuse the same numbers for α and u.
    draws = distribute.global_batch_draw(
        lambda n: keras.random.uniform(tf.stack([n, 1 + values_per_example]), dtype="float32", seed=seed),
        tf.shape(real)[0])
    alpha = tf.reshape(draws[:, :1], _per_example_shape(real))
    uniform_noise = tf.reshape(draws[:, 1:], tf.shape(real))
    perturbed = real + scale * distribute.global_std(real) * uniform_noise
    interpolates = real + alpha * (perturbed - real)
    return _unit_gradient_norm_penalty(critic, interpolates)


def r1_penalty(critic, real):
    """The R1 penalty (Mescheder et al., 2018, "Which Training Methods for GANs do actually
    Converge?"): the critic's squared input-gradient norm on real data,

        R1 = 0.5 · mean_b ‖∇ₓ critic(x_b)‖₂²,

    so that weighting it by γ gives the paper's γ/2 · E‖∇D(x)‖². It pushes the critic's
    gradient to zero on the data manifold, which makes the game locally convergent.

    Returns: a float32 scalar.
    """
    return 0.5 * tf.reduce_mean(_squared_norms(_input_gradients(critic, real)))


def clip_weights(variables, clip_value):
    """WGAN weight clipping (Arjovsky et al., 2017): every weight into [−c, c], in place.

    Call it after each critic update. It is a crude way to make the critic Lipschitz (the
    penalties above replaced it) and is kept for the original WGAN. Graph-safe: one assign
    per variable. Returns nothing.
    """
    if isinstance(clip_value, (int, float)) and not clip_value > 0:
        raise KerasGenError(f"clip_value must be positive, got {clip_value!r}")
    for variable in variables:
        variable.assign(tf.clip_by_value(variable, -clip_value, clip_value))


def instance_noise_stddev(step, initial_stddev, anneal_steps):
    """Instance noise's standard deviation at `step`, annealed linearly to zero.

    σ(step) = initial_stddev · max(0, 1 − step / anneal_steps): `initial_stddev` at step 0 and
    exactly 0 from `anneal_steps` on. Noise on the critic's inputs makes the real and fake
    distributions overlap, so the critic's gradients stay informative early in training
    (Sønderby et al., 2016; Arjovsky & Bottou, 2017); annealing it away leaves the original game.

    Args:
      step: the training step (an int or an integer tensor such as `optimizer.iterations`).
      initial_stddev: σ at step 0, in image units ([-1, 1] images).
      anneal_steps: the step from which σ is 0; positive.

    Returns: a float32 scalar.
    """
    if not anneal_steps > 0:
        raise KerasGenError(f"anneal_steps must be positive, got {anneal_steps!r}")
    remaining = 1.0 - tf.cast(step, tf.float32) / float(anneal_steps)
    return tf.cast(initial_stddev, tf.float32) * tf.maximum(remaining, 0.0)


def add_instance_noise(images, stddev, seed):
    """`images + n` with n ~ N(0, stddev²) per pixel, in the images' dtype.

    With stddev 0 the images come back unchanged (x + 0·n = x exactly), so a model can keep the
    call in its graph after annealing.

    Args:
      images: `[B, H, W, C]` float images.
      stddev: a scalar (e.g. from `instance_noise_stddev`).
      seed: a `keras.random.SeedGenerator` or an int.
    """
    images = tf.convert_to_tensor(images)
    noise = distribute.global_batch_draw(
        lambda n: keras.random.normal(tf.concat([[n], tf.shape(images)[1:]], 0), dtype="float32", seed=seed),
        tf.shape(images)[0])
    return images + tf.cast(tf.cast(stddev, tf.float32) * noise, images.dtype)


def orthogonal_regularization(kernels, beta=1e-4):
    """BigGAN's orthogonal regularisation (Brock et al., 2019, "Large Scale GAN Training for
    High Fidelity Natural Image Synthesis", sec. 3.1):

        R = β · Σ_W ‖WᵀW ⊙ (1 − I)‖²_F,

    each kernel reshaped to `[-1, out_channels]` (Dense `[in, out]`, Conv2D `[kh·kw·in, out]`).
    It pushes the filters towards mutual orthogonality without constraining their norms (the
    diagonal is excluded), which makes the generator amenable to the truncation trick.

    Args:
      kernels: an iterable of weight tensors or variables, last axis the output channels.
      beta: the weight β.

    Returns: a float32 scalar.
    """
    total = tf.constant(0.0, tf.float32)
    for kernel in kernels:
        out_channels = int(kernel.shape[-1])
        matrix = tf.reshape(tf.cast(kernel, tf.float32), [-1, out_channels])
        gram = tf.matmul(matrix, matrix, transpose_a=True)
        off_diagonal = gram * (1.0 - tf.eye(out_channels, dtype=tf.float32))
        total += tf.reduce_sum(tf.square(off_diagonal))
    return tf.cast(beta, tf.float32) * total
