"""DRAGAN: the original GAN game with a gradient penalty around the data (Kodali et al., 2017).

Kodali et al. view GAN training as regret minimisation and trace mode collapse to sharp
gradients of D near the real data. They keep the original game (the non-saturating
generator loss of Goodfellow et al., 2014) and add to D's loss

    λ · E_x̂[(‖∇_x̂ D(x̂)‖₂ - k)²],   x̂ = x + α (x_p - x),  x_p = x + c · std(x) · u,

u ~ U(0, 1) per pixel, α ~ U(0, 1) per example and k = 1 (`penalty="dragan"`, see
`keras_gen.regularizers.dragan_penalty`). Unlike WGAN-GP the penalty needs no fakes: it
keeps D's gradients moderate in a neighbourhood of the data.

Settings follow the authors' reference code (github.com/kodalinaveen3/DRAGAN): the
uniform perturbation above with c = 0.5, λ = 10, k = 1, one D step per G step, and
Adam(1e-4, beta_1=0.5, beta_2=0.9) for both players. The networks are DCGAN's
(`keras_gen.networks.dcgan`), whose D has no batch norm, so the penalty sees each example's
own gradient.

Kodali, Abernethy, Hays & Kira, "On Convergence and Stability of GANs", 2017
(arXiv:1705.07215).
"""
from __future__ import annotations

import keras

from keras_gen.models.dcgan import DCGAN


@keras.saving.register_keras_serializable(package="keras_gen")
class DRAGAN(DCGAN):
    """DRAGAN (Kodali et al., 2017); arguments as `DCGAN`."""

    COMPILE_DEFAULTS = {
        **DCGAN.COMPILE_DEFAULTS,
        "loss": "non_saturating",
        "d_optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.5, "beta_2": 0.9}},
        "g_optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.5, "beta_2": 0.9}},
        "d_steps": 1,
        "penalty": "dragan",
        "penalty_weight": 10.0,
    }
