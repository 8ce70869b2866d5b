"""`model.optimizer` of a model trained by several optimizers (a GAN's two players, ADDA's stages).

Keras' own callbacks look for `.optimizers` on `model.optimizer` and change each one
(`ReduceLROnPlateau`, `LearningRateScheduler`, and `TensorBoard` logs each one's rate);
`TensorBoard` counts steps by `.iterations`; `model.summary()` counts `.variables`. Code
written for one optimizer (the keras.io custom learning-rate callbacks) reads and sets
`model.optimizer.learning_rate`: here that is every active optimizer's rate, read when they
share one, and set (or `.assign`ed) on all of them.
"""
from __future__ import annotations

from typing import Callable, Sequence

import keras


class SharedLearningRate(float):
    """The learning rate the active optimizers share, as `model.optimizer.learning_rate` reads
    it: a number, whose `assign(value)` sets every active optimizer's rate (as `assign` on one
    optimizer's rate variable does for that one)."""

    def __new__(cls, value, owner):
        rate = super().__new__(cls, value)
        rate._owner = owner
        return rate

    def assign(self, value):
        self._owner.learning_rate = value
        return self._owner.learning_rate


class SeveralOptimizers:
    """`model.optimizer` of a model with several optimizers.

    Args:
      named: `() -> {name: optimizer}`, every optimizer of the model (their state is the
        model's; `variables`, `built`, `get_config`).
      active: `() -> [optimizer]`, those that training changes now, which callbacks adjust
        (`.optimizers`, `.learning_rate`).
      counter: `() -> optimizer` whose `iterations` count the model's training steps.
    """

    def __init__(self, named: Callable[[], dict], active: Callable[[], Sequence], counter: Callable[[], object]):
        self._named, self._active, self._counter = named, active, counter

    @property
    def optimizers(self):
        return list(self._active())

    @property
    def built(self):
        return all(o.built for o in self._named().values())

    @property
    def variables(self):
        """Every optimizer's state (what `model.summary()` counts)."""
        return [v for o in self._named().values() for v in o.variables]

    @property
    def iterations(self):
        return self._counter().iterations

    @property
    def learning_rate(self):
        """The active optimizers' common learning rate (a `SharedLearningRate`); an
        AttributeError naming each one's when they differ, where no one number is right."""
        rates = {name: float(keras.ops.convert_to_numpy(o.learning_rate))
                 for name, o in self._named().items() if any(o is a for a in self._active())}
        if len(set(rates.values())) > 1:
            each = ", ".join(f"{name} {rate:g}" for name, rate in rates.items())
            raise AttributeError(f"the optimizers have different learning rates ({each}); read or set each one "
                                 f"(model.{next(iter(rates))}.learning_rate), or set model.optimizer.learning_rate "
                                 "to give them all one")
        return SharedLearningRate(next(iter(rates.values())), self)

    @learning_rate.setter
    def learning_rate(self, value):
        active = list(self._active())
        scheduled = [o.name for o in active
                     if isinstance(getattr(o, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)]
        if scheduled:  # checked first, so that a refusal leaves every rate as it was
            raise TypeError(f"{', '.join(scheduled)} follow a LearningRateSchedule: their rate cannot be set")
        for optimizer in active:
            optimizer.learning_rate = value

    def get_config(self):
        """`{name: serialised optimizer}` for every optimizer of the model."""
        return {name: keras.optimizers.serialize(o) for name, o in self._named().items()}
