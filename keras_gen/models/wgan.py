"""WGAN and WGAN-GP: GANs whose critic estimates the Wasserstein-1 distance.

By the Kantorovich-Rubinstein duality

    W(P_r, P_g) = sup_{‖f‖_L ≤ 1}  E_x[f(x)] - E_z[f(G(z))],

so a critic D (raw output, no sigmoid) maximises E_x[D(x)] - E_z[D(G(z))] over (near)
1-Lipschitz functions, and G minimises -E_z[D(G(z))] (the "wasserstein" loss pair). The
critic is trained closer to optimality than a GAN discriminator: `d_steps=5` critic updates
per generator update. The two papers differ in how they keep D Lipschitz.

WGAN (Arjovsky, Chintala & Bottou, 2017), Algorithm 1: clip every critic weight to
[-c, c] after each update, c = 0.01; n_critic = 5; RMSprop with learning rate α = 5e-5
(momentum-based optimizers made training unstable, sec. 3). The paper names no RMSprop
decay; the authors' code used PyTorch's default 0.99, kept here (`rho=0.99`, Keras' default
is 0.9). Their code also takes 100 critic steps for the first 25 generator steps and every
500th; that schedule is not in the paper and not reproduced.

WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, 2017), Algorithm 1: replace
clipping by the penalty λ · E_x̂[(‖∇_x̂ D(x̂)‖₂ - 1)²] at x̂ uniform on lines between real
and fake images (`penalty="gradient_penalty"`), λ = 10; n_critic = 5; Adam(α = 1e-4,
β₁ = 0, β₂ = 0.9). The penalty is per example, so the critic has no batch norm (true of the
DCGAN discriminator used here).

One departure from both papers' Algorithm 1, which samples a new real minibatch for each of
the n_critic critic steps: here (as in the keras-io WGAN-GP example) the `d_steps` critic
updates of one `train_step` all see the real batch that step was given, each against fresh
fakes. Per real image the critic thus makes n_critic updates where the papers make one, and
an epoch makes as many generator updates as it has batches, not a fifth as many.

Both use the DCGAN networks (`keras_gen.networks.dcgan`) and differ from `DCGAN` only in
their compile defaults; any of them can be overridden in `compile`.

Arjovsky, Chintala & Bottou, "Wasserstein Generative Adversarial Networks", ICML 2017
(arXiv:1701.07875). Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017
(arXiv:1704.00028).
"""
from __future__ import annotations

import keras

from keras_gen.models.dcgan import DCGAN


@keras.saving.register_keras_serializable(package="keras_gen")
class WGAN(DCGAN):
    """Wasserstein GAN with weight clipping (Arjovsky et al., 2017); arguments as `DCGAN`."""

    COMPILE_DEFAULTS = {
        **DCGAN.COMPILE_DEFAULTS,
        "loss": "wasserstein",
        "d_optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 5e-5, "rho": 0.99}},
        "g_optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 5e-5, "rho": 0.99}},
        "d_steps": 5,
        "clip_value": 0.01,
    }


@keras.saving.register_keras_serializable(package="keras_gen")
class WGANGP(DCGAN):
    """WGAN with a gradient penalty (Gulrajani et al., 2017); arguments as `DCGAN`."""

    COMPILE_DEFAULTS = {
        **DCGAN.COMPILE_DEFAULTS,
        "loss": "wasserstein",
        "d_optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9}},
        "g_optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9}},
        "d_steps": 5,
        "penalty": "gradient_penalty",
        "penalty_weight": 10.0,
    }
