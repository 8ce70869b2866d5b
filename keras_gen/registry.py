"""The one table of model names, shared by the CLI, training, export and the zoo.

Nothing here imports TensorFlow: `keras-gen list` and argument checking stay fast. A model
family registers its class by import path; `model_class(name)` imports it on first use.
"""
from __future__ import annotations

import dataclasses
import importlib

from keras_gen.errors import KerasGenError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    target: str  # "module:Class"
    summary: str
    default_batch_size: int
    default_epochs: int
    # The datasets a recipe gives this model, by role (domain adaptation takes two).
    data_roles: tuple = ("train",)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "gan",
            "keras_gen.models.gan:GAN",
            "The original GAN (Goodfellow et al. 2014): MLP players, minimax or non-saturating loss",
            default_batch_size=64,
            default_epochs=30,
        ),
        ModelSpec(
            "dcgan",
            "keras_gen.models.dcgan:DCGAN",
            "Deep convolutional GAN (Radford et al. 2016), non-saturating or minimax loss",
            default_batch_size=128,
            default_epochs=20,
        ),
        ModelSpec(
            "wgan",
            "keras_gen.models.wgan:WGAN",
            "Wasserstein GAN (Arjovsky et al. 2017): critic with weight clipping, 5 critic steps, RMSprop",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "wgan-gp",
            "keras_gen.models.wgan:WGANGP",
            "WGAN with gradient penalty (Gulrajani et al. 2017): Adam(1e-4, 0, 0.9), 5 critic steps",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "lsgan",
            "keras_gen.models.lsgan:LSGAN",
            "Least-squares GAN (Mao et al. 2017): least-squares loss with targets a, b, c",
            default_batch_size=128,
            default_epochs=20,
        ),
        ModelSpec(
            "dragan",
            "keras_gen.models.dragan:DRAGAN",
            "DRAGAN (Kodali et al. 2017): gradient penalty around perturbed real data",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "cgan",
            "keras_gen.models.cgan:CGAN",
            "Class-conditional GAN: conditional batch norm in G, projection discriminator (Miyato & Koyama 2018)",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "acgan",
            "keras_gen.models.cgan:ACGAN",
            "Auxiliary-classifier GAN (Odena et al. 2017): D also classifies real and fake images",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "biggan",
            "keras_gen.models.biggan:BigGAN",
            "BigGAN at CPU size (Brock et al. 2019): shared embedding, hierarchical z, SN, attention, hinge, EMA",
            default_batch_size=64,
            default_epochs=20,
        ),
        ModelSpec(
            "pixelcnn",
            "keras_gen.models.pixelcnn:PixelCNN",
            "PixelCNN with masked convolutions (van den Oord et al. 2016), exact NLL",
            default_batch_size=64,
            default_epochs=10,
        ),
        ModelSpec(
            "gated-pixelcnn",
            "keras_gen.models.gated_pixelcnn:GatedPixelCNN",
            "Gated PixelCNN (van den Oord et al. 2016): vertical + horizontal stacks, no blind spot, optional classes",
            default_batch_size=64,
            default_epochs=10,
        ),
        ModelSpec(
            "pixelcnn++",
            "keras_gen.models.pixelcnnpp:PixelCNNPlusPlus",
            "PixelCNN++ (Salimans et al. 2017): discretised logistic mixture, shifted two-stream U-net, optional classes",
            default_batch_size=64,
            default_epochs=10,
        ),
        ModelSpec(
            "pixelrnn",
            "keras_gen.models.pixelrnn:PixelRNN",
            "PixelRNN with Row LSTM layers (van den Oord et al. 2016): row-by-row LSTM, exact NLL, optional classes",
            default_batch_size=64,
            default_epochs=10,
        ),
        ModelSpec(
            "source-only",
            "keras_gen.models.domain_adaptation:SourceOnly",
            "Domain adaptation floor: a LeNet-like classifier trained on source labels only, tested on the target",
            default_batch_size=64,
            default_epochs=20,
            data_roles=("source", "target"),
        ),
        ModelSpec(
            "target-oracle",
            "keras_gen.models.domain_adaptation:TargetOracle",
            "Domain adaptation ceiling: the same classifier trained on the target's labels",
            default_batch_size=64,
            default_epochs=20,
            data_roles=("source", "target"),
        ),
        ModelSpec(
            "dann",
            "keras_gen.models.domain_adaptation:DANN",
            "Domain-adversarial training (Ganin & Lempitsky 2015): gradient reversal, the paper's lambda and lr schedules",
            default_batch_size=64,
            default_epochs=30,
            data_roles=("source", "target"),
        ),
        ModelSpec(
            "adda",
            "keras_gen.models.domain_adaptation:ADDA",
            "Adversarial discriminative domain adaptation (Tzeng et al. 2017): source stage, adversarial target encoder",
            default_batch_size=64,
            default_epochs=20,
            data_roles=("source", "target"),
        ),
    ]
}


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except (KeyError, TypeError):  # TypeError: a list or dict (a recipe's "model": ["dcgan"])
        raise KerasGenError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None


def model_class(name: str):
    """The keras.Model subclass registered under `name` (imports TensorFlow)."""
    module, _, cls = spec(name).target.partition(":")
    return getattr(importlib.import_module(module), cls)


def name_of(model) -> str:
    """The registry name of a model instance or class."""
    cls = model if isinstance(model, type) else type(model)
    target = f"{cls.__module__}:{cls.__qualname__}"
    for s in MODELS.values():
        if s.target == target:
            return s.name
    raise KerasGenError(f"{cls.__qualname__} is not a registered keras-gen model")
