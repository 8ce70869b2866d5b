"""Training on several devices or machines with `tf.distribute`, exactly as on one.

Under `MirroredStrategy` (several devices of one machine) or `MultiWorkerMirroredStrategy`
(several machines, `TF_CONFIG`), Keras runs a model's `train_step` once per replica on its
share of the global batch and sums the replicas' gradients. A keras-gen step is written so
that this sum is the gradient of the single-device step on the whole global batch:

- Batch means are weighted by the replica's share, `n_local / n_global`
  (`batch_share`), so the replicas' gradients add up to the gradient of the global mean
  (also for an uneven last batch); terms that do not depend on the batch (BigGAN's
  orthogonality penalty) by `1 / replicas` (`replica_share`).
- Random draws are made for the global batch, from the same seed on every replica, and each
  replica keeps its own rows (`global_batch_draw`): replicas get different noise, and the
  noise of example b is the noise the single-device step gives example b.
- Batch statistics (batch normalisation, minibatch standard deviation, DRAGAN's data
  scale) are taken over the global batch (`global_moments`; Keras' synchronised
  BatchNormalization).

With one replica (no strategy, or one device) every function here returns its input
unchanged, so a single-device run computes exactly what it did before.

`strategy(name)` makes the strategies `keras-gen train --strategy` names.
"""
from __future__ import annotations

import json
import os
import signal
import threading

import tensorflow as tf

from keras_gen import rendezvous
from keras_gen.errors import KerasGenError

STRATEGIES = ("mirrored", "multiworker")


def strategy(name: str | None):
    """The `tf.distribute` strategy called `name`, or the default (one device) for None.

    - "mirrored": `MirroredStrategy` over every GPU of this machine, or over its CPU when it
      has none (one replica; `KERAS_GEN_CPU_REPLICAS=N` splits the CPU into N logical
      devices, for tests).
    - "multiworker": `MultiWorkerMirroredStrategy`; each machine (worker) runs the same
      command with its own `TF_CONFIG` (see the README); worker 0 is the chief and writes
      the run folder. The tasks first gather in `keras_gen.rendezvous` (interruptible, with
      a notice and a timeout), and SIGTERM stops the process afterwards as before.
    """
    if name is None:
        return tf.distribute.get_strategy()
    if name not in STRATEGIES:
        raise KerasGenError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "mirrored":
        devices = cpu_replica_devices()
        return tf.distribute.MirroredStrategy(devices) if devices else tf.distribute.MirroredStrategy()
    config = tf_config()  # checked: a one-line error for a malformed one
    cpu_replica_devices()
    # TensorFlow's start blocks, deaf to signals, until every task has come: gather them first.
    rendezvous.gather(config)
    before = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    made = tf.distribute.MultiWorkerMirroredStrategy()
    if before is not None:
        # Its coordination service catches SIGTERM for a preemption notice that keras-gen does
        # not use, so that `kill` would no longer stop a worker: give SIGTERM back.
        signal.signal(signal.SIGTERM, before)
    return made


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def tf_config() -> dict:
    """The `TF_CONFIG` of a multi-worker run, checked: a cluster of task lists and this
    process's task, `{"type": ..., "index": N}` with N a whole number naming one of the
    cluster's tasks of that type; a one-line error otherwise."""
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise KerasGenError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task); "
                            "see the README's section on several machines")
    form = ('TF_CONFIG must be JSON {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
            '"index": N}}')
    try:
        parsed = json.loads(config)
    except ValueError:
        raise KerasGenError(f"{form}; it is not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("cluster"), dict) \
            or not isinstance(parsed.get("task"), dict):
        raise KerasGenError(f"{form}; it has no cluster or no task object")
    task, cluster = parsed["task"], parsed["cluster"]
    kind, index = task.get("type", "worker"), task.get("index")
    if isinstance(index, str) and index.isascii() and index.isdigit():
        index = int(index)  # TensorFlow's resolver reads "1" as 1
    members = cluster.get(kind)
    if isinstance(index, bool) or not isinstance(index, int) or not isinstance(members, list) \
            or not 0 <= index < len(members):
        raise KerasGenError(f"{form}; its task {task!r} names no task of the cluster"[:400])
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def cpu_replica_devices():
    """Logical CPU devices for `KERAS_GEN_CPU_REPLICAS` = N > 1, or None. Made before
    TensorFlow starts computing (`keras_gen.training.train` asks first, before a resumed run
    reads its checkpoint); afterwards a KerasGenError unless TensorFlow already has N."""
    wanted = os.environ.get("KERAS_GEN_CPU_REPLICAS")
    if not wanted:
        return None
    try:
        n = int(wanted)
    except ValueError:
        raise KerasGenError(f"KERAS_GEN_CPU_REPLICAS must be a whole number, got {wanted!r}") from None
    cpu = tf.config.list_physical_devices("CPU")[0]
    if n > 1:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:  # TensorFlow already started: fine if it has these devices
            have = len(tf.config.list_logical_devices("CPU"))
            if have != n:
                raise KerasGenError(
                    f"KERAS_GEN_CPU_REPLICAS={n} asks for {n} CPU replicas, but TensorFlow started with {have} "
                    "before they could be made; set up the strategy before running anything") from None
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return devices if len(devices) > 1 and not tf.config.list_physical_devices("GPU") else None


def is_chief() -> bool:
    """Whether this process writes the run folder: always, except a multi-worker worker > 0."""
    if not os.environ.get("TF_CONFIG"):
        return True
    config = tf_config()
    kind = config["task"]["type"]
    if kind == "chief":
        return True
    # Without a "chief" task, worker 0 is the chief (as in TensorFlow's cluster resolver).
    return kind == "worker" and config["task"]["index"] == 0 and "chief" not in config["cluster"]


def _replica_context():
    """The replica context of a multi-replica step, or None (one replica, or not in a step)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def replicas() -> int:
    """Replicas taking part in the current step (1 outside a multi-replica strategy)."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def multi_replica() -> bool:
    """Whether the current strategy (at build time) or step has more than one replica."""
    return tf.distribute.get_strategy().num_replicas_in_sync > 1 or _replica_context() is not None


def _offset_and_total(n):
    """This replica's first row in the global batch, and the global batch size: the global
    batch is split into contiguous, ordered shares (replica 0 first)."""
    context = _replica_context()
    sizes = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        tf.one_hot(context.replica_id_in_sync_group, context.num_replicas_in_sync, dtype=tf.float32)
        * tf.cast(n, tf.float32),
    )
    sizes = tf.cast(tf.round(sizes), tf.int32)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    return tf.reduce_sum(sizes[:replica]), tf.reduce_sum(sizes)


def batch_position(n):
    """`(offset, total)`: this replica's first row in the global batch and the global batch
    size, int32 (`(0, n)` with one replica)."""
    if _replica_context() is None:
        return tf.constant(0, tf.int32), tf.cast(n, tf.int32)
    return _offset_and_total(n)


def global_batch_draw(draw, n):
    """This replica's `n` rows of `draw(global_batch_size)`.

    `draw(m)` makes a random tensor whose first axis holds m examples, from a seed that is
    the same on every replica (a `keras.random.SeedGenerator` advances alike on all). One
    replica: `draw(n)` itself.
    """
    if _replica_context() is None:
        return draw(n)
    offset, total = _offset_and_total(n)
    return draw(total)[offset:offset + n]


def batch_share(n):
    """n_local / n_global as float32: the weight of this replica's batch mean in the global
    mean (1.0 with one replica)."""
    if _replica_context() is None:
        return tf.constant(1.0, tf.float32)
    _, total = _offset_and_total(n)
    return tf.cast(n, tf.float32) / tf.cast(total, tf.float32)


def global_mean_part(batch_mean, n):
    """This replica's part of the global batch mean: `batch_mean` (the mean over its `n`
    examples) times n / n_global, so the replicas' gradients sum to the gradient of the
    global mean. One replica: `batch_mean` itself."""
    if _replica_context() is None:
        return batch_mean
    return batch_mean * batch_share(n)


def batch_weight(n):
    """The weight of a replica's batch mean in a logged running mean (`keras.metrics.Mean`,
    whose sums Keras adds over replicas): its number of examples n, as Keras weighs its own
    loss tracker. The running mean is then the mean over every example seen: exact over a
    held-out split whose last batch is smaller (`evaluate`'s test bits/dim), and with several
    replicas the global batch's mean, as one device logs it, also for unequal batches."""
    return tf.cast(n, tf.float32)


def replica_part(term):
    """`term` / replicas, for a term every replica computes alike (a property of the
    weights), so the replicas' summed gradients count it once. One replica: `term`."""
    n = replicas()
    return term if n == 1 else term / n


def global_sum(x):
    """The sum of `x` over replicas (`x` itself with one replica)."""
    context = _replica_context()
    return x if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, x)


def global_moments(x, axes):
    """Mean and variance of float `x` over `axes`, the batch axis taken over every replica's
    batch (`tf.nn.moments` with one replica). Returns float32 tensors, reduced axes removed."""
    x = tf.cast(x, tf.float32)
    if _replica_context() is None:
        return tf.nn.moments(x, axes)
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), tf.float32)
    total_count = global_sum(count)
    mean = global_sum(tf.reduce_sum(x, axes)) / total_count
    # Two passes (as tf.nn.moments): the mean first, then the mean squared deviation from it.
    centred = x - _keep_dims(mean, x, axes)
    variance = global_sum(tf.reduce_sum(tf.square(centred), axes)) / total_count
    return mean, variance


def global_std(x):
    """The standard deviation of every value of `x` over the global batch, float32
    (`tf.math.reduce_std` with one replica)."""
    x = tf.cast(x, tf.float32)
    if _replica_context() is None:
        return tf.math.reduce_std(x)
    _, variance = global_moments(tf.reshape(x, [-1]), [0])
    return tf.sqrt(variance)


def step_outputs(results):
    """A step's logged figures, as Keras can reduce them across replicas.

    Keras 3.15 reduces a step's outputs across the workers of a multi-worker strategy with
    `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars; there each figure is
    given an axis of one (the reduction removes it). Elsewhere the figures pass unchanged.
    """
    strategy = tf.distribute.get_strategy()
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and in_multi_worker_mode():
        return {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results


def _keep_dims(reduced, x, axes):
    shape = [1 if i in axes else d for i, d in enumerate(tf.unstack(tf.shape(x)))]
    return tf.reshape(reduced, shape)
