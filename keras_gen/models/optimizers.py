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


@keras.saving.register_keras_serializable(package="keras_gen")
class PerTrainingStep(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule` read at the training step, for an optimizer that updates `updates_per_step`
    times per training step (a GAN's discriminator with `d_steps`): `schedule(iterations //
    updates_per_step)`. Each optimizer calls its schedule with its own update count, so D's
    copy of a schedule sized in training steps (as `compile(optimizer=...)` gives both
    players) would otherwise run `d_steps` times faster than G's: D's rate reached 0 after
    1 / d_steps of the run."""

    def __init__(self, schedule, updates_per_step):
        self.schedule = schedule
        self.updates_per_step = int(updates_per_step)

    def __call__(self, step):
        import tensorflow as tf

        return self.schedule(tf.math.floordiv(step, tf.cast(self.updates_per_step, step.dtype)))

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule),
                "updates_per_step": self.updates_per_step}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["updates_per_step"])


def schedule_per_training_step(optimizer, updates_per_step):
    """Make `optimizer`'s learning-rate schedule (if it has one) count training steps, given
    `updates_per_step` updates per step; a schedule wrapped before (a reloaded model's) is
    unwrapped first, so the count is never divided twice."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return
    if isinstance(schedule, PerTrainingStep):
        schedule = schedule.schedule
    optimizer._learning_rate = schedule if updates_per_step == 1 else PerTrainingStep(schedule, updates_per_step)
