"""Adversarial losses: flat, pure functions of the discriminator's outputs.

Each loss takes the discriminator's raw outputs ("logits") of shape [B] or [B, 1] and
returns a float32 scalar: inputs are cast to float32 first, whatever the compute dtype
(bfloat16, float16), and every expectation is a mean over the batch. Generator losses are
named `<kind>_generator_loss`, discriminator losses `<kind>_discriminator_loss`; both
players minimise their loss.

For the cross-entropy losses (minimax, modified) D(x) = sigmoid(l) is a probability and
the identities -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l) keep
them stable for large |l|. For the others (wasserstein, hinge, least squares) D(x) is the
raw output l itself.

`LOSSES` names the generator/discriminator pairs the models use; `get(name)` looks one up.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

from keras import ops

from keras_gen.errors import KerasGenError


def _f32(x):
    return ops.cast(x, "float32")


# --- Cross-entropy (Goodfellow et al. 2014) -------------------------------------------


def minimax_generator_loss(fake_logits):
    """The original (saturating) generator loss of the minimax game.

    L_G = E_z[log(1 - D(G(z)))] = -mean(softplus(l)), with l the logits on generated
    samples and D = sigmoid. Its gradient dL_G/dl = -sigmoid(l) vanishes when D
    confidently rejects the samples (l << 0), as it does early in training.

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), eq. 1.
    """
    return -ops.mean(ops.softplus(_f32(fake_logits)))


def minimax_discriminator_loss(real_logits, fake_logits):
    """The discriminator's binary cross-entropy.

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
        = mean(softplus(-real_logits)) + mean(softplus(fake_logits)), D = sigmoid.
    Minimising it maximises the value V(D, G) of the minimax game.

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), eq. 1.
    """
    return ops.mean(ops.softplus(-_f32(real_logits))) + ops.mean(ops.softplus(_f32(fake_logits)))


def modified_generator_loss(fake_logits):
    """The non-saturating generator loss.

    L_G = -E_z[log D(G(z))] = mean(softplus(-l)), D = sigmoid. Same fixed point as the
    minimax loss, but its gradient dL_G/dl = -sigmoid(-l) is strong (near -1) when D
    confidently rejects the samples.

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), sec. 3.
    """
    return ops.mean(ops.softplus(-_f32(fake_logits)))


def modified_discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss under the modified game: the same binary cross-entropy.

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
        = mean(softplus(-real_logits)) + mean(softplus(fake_logits)), D = sigmoid.

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (arXiv:1406.2661), sec. 3.
    """
    return minimax_discriminator_loss(real_logits, fake_logits)


# --- Wasserstein (Arjovsky et al. 2017) -----------------------------------------------


def wasserstein_generator_loss(fake_outputs):
    """The Wasserstein generator loss.

    L_G = -E_z[D(G(z))] = -mean(fake_outputs), D the raw critic output.

    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017 (arXiv:1701.07875), alg. 1.
    """
    return -ops.mean(_f32(fake_outputs))


def wasserstein_discriminator_loss(real_outputs, fake_outputs):
    """The Wasserstein critic loss (the negated estimate of the Wasserstein-1 distance).

    L_D = E_z[D(G(z))] - E_x[D(x)] = mean(fake_outputs) - mean(real_outputs), D the raw
    critic output. It estimates the distance only if D is (near) 1-Lipschitz, which this
    loss does not enforce (weight clipping, a gradient penalty or spectral normalisation
    must).

    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017 (arXiv:1701.07875), alg. 1.
    """
    return ops.mean(_f32(fake_outputs)) - ops.mean(_f32(real_outputs))


# --- Hinge (Lim & Ye 2017; Miyato et al. 2018) -------------------------------------------


def hinge_generator_loss(fake_outputs):
    """The hinge-GAN generator loss.

    L_G = -E_z[D(G(z))] = -mean(fake_outputs), D the raw output.

    Lim & Ye, "Geometric GAN", 2017 (arXiv:1705.02894); Miyato et al., "Spectral
    Normalization for Generative Adversarial Networks", ICLR 2018 (arXiv:1802.05957), eq. 16.
    """
    return -ops.mean(_f32(fake_outputs))


def hinge_discriminator_loss(real_outputs, fake_outputs):
    """The hinge-GAN discriminator loss.

    L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]
        = mean(relu(1 - real_outputs)) + mean(relu(1 + fake_outputs)), D the raw output.

    Lim & Ye, "Geometric GAN", 2017 (arXiv:1705.02894); Miyato et al., "Spectral
    Normalization for Generative Adversarial Networks", ICLR 2018 (arXiv:1802.05957), eq. 16.
    """
    return ops.mean(ops.relu(1.0 - _f32(real_outputs))) + ops.mean(ops.relu(1.0 + _f32(fake_outputs)))


# --- Least squares (Mao et al. 2017) ----------------------------------------------------


def least_squares_generator_loss(fake_outputs, c=1.0):
    """The LSGAN generator loss.

    L_G = 1/2 E_z[(D(G(z)) - c)^2] = 0.5 * mean((fake_outputs - c)^2), D the raw output
    and c the value G wants D to believe for fake data (default 1, the "0-1 coding").

    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017
    (arXiv:1611.04076), eq. 2.
    """
    return 0.5 * ops.mean(ops.square(_f32(fake_outputs) - c))


def least_squares_discriminator_loss(real_outputs, fake_outputs, a=0.0, b=1.0):
    """The LSGAN discriminator loss.

    L_D = 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
        = 0.5 * mean((real_outputs - b)^2) + 0.5 * mean((fake_outputs - a)^2), D the raw
    output, a and b the labels of fake and real data (defaults 0 and 1).

    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017
    (arXiv:1611.04076), eq. 2.
    """
    return 0.5 * ops.mean(ops.square(_f32(real_outputs) - b)) + 0.5 * ops.mean(ops.square(_f32(fake_outputs) - a))


# --- Auxiliary classifier (Odena et al. 2017) -------------------------------------------


def _class_cross_entropy(class_logits, labels):
    """mean_i -log softmax(class_logits[i])[labels[i]], for class_logits [B, K], labels int [B]."""
    return ops.mean(ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), _f32(class_logits), from_logits=True))


def acgan_generator_loss(fake_class_logits, fake_labels):
    """The AC-GAN generator's auxiliary classification loss.

    L_G = -E[log P(C = c | G(z, c))] = mean sparse softmax cross-entropy of the class
    logits [B, K] on generated samples against the classes [B] they were generated for.
    Add it to an adversarial generator loss.

    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017 (arXiv:1610.09585), eq. 3 (L_C).
    """
    return _class_cross_entropy(fake_class_logits, fake_labels)


def acgan_discriminator_loss(real_class_logits, real_labels, fake_class_logits, fake_labels):
    """The AC-GAN discriminator's auxiliary classification loss.

    L_D = -E[log P(C = c | x)] - E[log P(C = c | G(z, c))] = mean sparse softmax
    cross-entropy on real samples + the same on generated samples; class logits [B, K],
    labels int [B]. Add it to an adversarial discriminator loss.

    Odena, Olah & Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017 (arXiv:1610.09585), eq. 3 (L_C).
    """
    return _class_cross_entropy(real_class_logits, real_labels) + _class_cross_entropy(fake_class_logits, fake_labels)


# --- Registry ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LossPair:
    """A named generator/discriminator loss pair.

    `generator(fake_outputs)` and `discriminator(real_outputs, fake_outputs)` return float32
    scalars; `probability` says whether sigmoid(output) is a probability that the input is
    real (True for the cross-entropy losses), which decides how a model may report D(x).
    """

    name: str
    generator: Callable
    discriminator: Callable
    probability: bool
    doc: str
    # The parameters `get(name, **params)` was given (LSGAN's a, b, c), so a model can save them.
    params: dict = dataclasses.field(default_factory=dict)

    def to_config(self):
        """What `get` rebuilds this pair from: its name, or {"name": ..., **params}."""
        return {"name": self.name, **self.params} if self.params else self.name


LOSSES: dict[str, LossPair] = {
    pair.name: pair
    for pair in (
        LossPair(
            "minimax",
            minimax_generator_loss,
            minimax_discriminator_loss,
            True,
            "Goodfellow et al. 2014, saturating: G minimises E[log(1 - D(G(z)))]",
        ),
        LossPair(
            "non_saturating",
            modified_generator_loss,
            modified_discriminator_loss,
            True,
            "Goodfellow et al. 2014, sec. 3: G minimises -E[log D(G(z))]",
        ),
        LossPair(
            "wasserstein",
            wasserstein_generator_loss,
            wasserstein_discriminator_loss,
            False,
            "Arjovsky et al. 2017: D minimises E[D(G(z))] - E[D(x)], G minimises -E[D(G(z))]",
        ),
        LossPair(
            "hinge",
            hinge_generator_loss,
            hinge_discriminator_loss,
            False,
            "Lim & Ye 2017; Miyato et al. 2018: D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]",
        ),
        LossPair(
            "least_squares",
            least_squares_generator_loss,
            least_squares_discriminator_loss,
            False,
            "Mao et al. 2017 (LSGAN), a=0, b=1, c=1",
        ),
    )
}

_LEAST_SQUARES_PARAMS = ("a", "b", "c")


def _number(name, key, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KerasGenError(f"loss {name!r}: parameter {key} must be a finite number, got {value!r}")
    return float(value)


def get(name, **params) -> LossPair:
    """The loss pair called `name` (one of `LOSSES`), or `name` itself if it is a LossPair.

    Only "least_squares" takes parameters, the LSGAN labels a (fake), b (real) and c (the
    generator's target): `get("least_squares", a=-1, b=1, c=0)`. Anything else is a
    KerasGenError.
    """
    if isinstance(name, LossPair):
        if params:
            raise KerasGenError(f"loss {name.name!r} is already built; parameters {sorted(params)} cannot be applied")
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise KerasGenError(f"unknown loss {name!r}; losses: {', '.join(LOSSES)}")
    if not params:
        return LOSSES[name]
    if name != "least_squares":
        raise KerasGenError(f"loss {name!r} takes no parameters, got {', '.join(sorted(params))}")
    unknown = sorted(set(params) - set(_LEAST_SQUARES_PARAMS))
    if unknown:
        raise KerasGenError(
            f"loss 'least_squares' has no parameter {', '.join(unknown)}; parameters: {', '.join(_LEAST_SQUARES_PARAMS)}"
        )
    values = {"a": 0.0, "b": 1.0, "c": 1.0}
    values.update({key: _number(name, key, value) for key, value in params.items()})
    a, b, c = values["a"], values["b"], values["c"]
    return LossPair(
        "least_squares",
        functools.partial(least_squares_generator_loss, c=c),
        functools.partial(least_squares_discriminator_loss, a=a, b=b),
        False,
        f"Mao et al. 2017 (LSGAN), a={a:g}, b={b:g}, c={c:g}",
        dict(values),
    )
