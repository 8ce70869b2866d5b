"""Adversarial losses, written on discriminator logits `l` with D(x) = sigmoid(l).

All are means over the batch, computed in float32 whatever the compute dtype. Identities
used: -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
"""
from keras import ops

GENERATOR_LOSSES = ("non_saturating", "minimax")


def _f32(x):
    return ops.cast(x, "float32")


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's cross-entropy: -E_x[log D(x)] - E_z[log(1 - D(G(z)))].

    = mean(softplus(-real_logits)) + mean(softplus(fake_logits)). Minimising it maximises
    the minimax value V(D, G) of Goodfellow et al. (2014).
    """
    return ops.mean(ops.softplus(-_f32(real_logits))) + ops.mean(ops.softplus(_f32(fake_logits)))


def generator_loss(fake_logits, kind: str = "non_saturating"):
    """The generator's loss on D's logits for generated images.

    - "minimax": E_z[log(1 - D(G(z)))] = -mean(softplus(l)), the original game; its
      gradient vanishes when D confidently rejects samples (early training).
    - "non_saturating": -E_z[log D(G(z))] = mean(softplus(-l)), the same fixed point with
      strong gradients when samples are bad (Goodfellow et al. 2014, sec. 3).
    """
    fake_logits = _f32(fake_logits)
    if kind == "non_saturating":
        return ops.mean(ops.softplus(-fake_logits))
    if kind == "minimax":
        return -ops.mean(ops.softplus(fake_logits))
    raise ValueError(f"generator loss must be one of {GENERATOR_LOSSES}, got {kind!r}")
