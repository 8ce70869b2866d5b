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


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "dcgan",
            "keras_gen.models.dcgan:DCGAN",
            "Deep convolutional GAN (Radford et al. 2016), non-saturating or minimax loss",
            default_batch_size=128,
            default_epochs=20,
        ),
        ModelSpec(
            "pixelcnn",
            "keras_gen.models.pixelcnn:PixelCNN",
            "PixelCNN with masked convolutions (van den Oord et al. 2016), exact NLL",
            default_batch_size=64,
            default_epochs=10,
        ),
    ]
}


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
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
