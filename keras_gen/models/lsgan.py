"""LSGAN: least squares generative adversarial networks (Mao et al., 2017).

The sigmoid cross-entropy of a GAN barely moves fakes that D already classifies correctly
but that still lie far from the data: their loss saturates. LSGAN replaces it with least
squares on D's raw output, which penalises such samples by their distance to the decision
boundary (eq. 2):

    min_D  1/2 E_x[(D(x) - b)²] + 1/2 E_z[(D(G(z)) - a)²]
    min_G  1/2 E_z[(D(G(z)) - c)²]

with a and b the labels of fake and real data and c the value G wants D to believe for fakes.

The default is the 0-1 coding of eq. 9, a = 0, b = 1, c = 1 (the authors' code uses it).
Eq. 8 gives the alternative a = -1, b = 1, c = 0: with b - c = 1 and b - a = 2, minimising
the objective minimises the Pearson χ² divergence between P_data + P_g and 2 P_g. Select it
with

    model.compile(loss={"name": "least_squares", "a": -1, "b": 1, "c": 0})

Settings: one D step per G step and Adam(2e-4, beta_1=0.5) for both players, as the authors'
code for DCGAN-style networks (their stability comparisons; their 112x112 LSUN networks used
a learning rate of 1e-3). The networks are DCGAN's (`keras_gen.networks.dcgan`).

Mao, Li, Xie, Lau, Wang & Smolley, "Least Squares Generative Adversarial Networks", ICCV 2017
(arXiv:1611.04076).
"""
from __future__ import annotations

import keras

from keras_gen.models.dcgan import DCGAN


@keras.saving.register_keras_serializable(package="keras_gen")
class LSGAN(DCGAN):
    """Least-squares GAN (Mao et al., 2017); arguments as `DCGAN`."""

    COMPILE_DEFAULTS = {
        **DCGAN.COMPILE_DEFAULTS,
        "loss": {"name": "least_squares", "a": 0.0, "b": 1.0, "c": 1.0},
        "d_optimizer": {"class_name": "Adam", "config": {"learning_rate": 2e-4, "beta_1": 0.5}},
        "g_optimizer": {"class_name": "Adam", "config": {"learning_rate": 2e-4, "beta_1": 0.5}},
    }
