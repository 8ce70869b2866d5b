"""The CPU a figure was measured on: model name and the instruction sets that decide speed.

bfloat16 is fast only with native units (AVX-512-BF16, AMX) and emulated many times slower
elsewhere; XLA helped on an AVX2-only EPYC and hurt on AVX-512 machines. So every figure
keras-gen writes (zoo cards, benchmarks) names the CPU this way, and `precision="auto"` (the
models' and recipes' default) is resolved here. No TensorFlow here.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

from keras_gen.errors import caller_outside_the_libraries


def cpu_info(cpuinfo="/proc/cpuinfo") -> tuple[str, frozenset]:
    """`(model name, flags)` of the first CPU in /proc/cpuinfo (the platform's name elsewhere)."""
    name, flags = None, frozenset()
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name") and name is None:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), flags


def has_native_bfloat16(flags=None) -> bool:
    flags = cpu_info()[1] if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def describe_cpu(cpuinfo="/proc/cpuinfo") -> str:
    """E.g. "AMD EPYC, 2 cores, AVX-512 + bf16" or "AMD EPYC, 2 cores, AVX2 only"."""
    name, flags = cpu_info(cpuinfo)
    if "avx512f" in flags:
        isa = "AVX-512 + bf16" if has_native_bfloat16(flags) else "AVX-512, no bf16"
    elif "avx2" in flags:
        isa = "AVX2 only"
    else:
        isa = "no AVX2"
    return f"{name}, {os.cpu_count()} cores, {isa}"


def describe_machine() -> str:
    """`describe_cpu()` and the GPUs TensorFlow sees (imports TensorFlow)."""
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{describe_cpu()}, {gpus or 'no'} GPU{'s' if gpus > 1 else ''}"


# What `precision="auto"` resolves to, when set: "float32" or "mixed_bfloat16" whatever the CPU
# (the test suite sets float32, so its figures do not depend on the machine it runs on).
AUTO_PRECISION_ENV = "KERAS_GEN_AUTO_PRECISION"
# What `auto_jit_compile()` returns when set: "1"/"true"/"on" or "0"/"false"/"off".
AUTO_JIT_ENV = "KERAS_GEN_AUTO_JIT"


class PrecisionWarning(UserWarning):
    """bfloat16 asked for on a CPU that only emulates it."""


_warned_emulated_bfloat16 = False


def auto_precision(flags=None) -> str:
    """What `precision="auto"` means on this CPU: "mixed_bfloat16" where it has native
    bfloat16 (AVX-512-BF16 or AMX), "float32" elsewhere (or `$KERAS_GEN_AUTO_PRECISION`)."""
    forced = _environment_setting(AUTO_PRECISION_ENV)
    if forced:
        return forced
    return "mixed_bfloat16" if has_native_bfloat16(flags) else "float32"


# The environment variables that override an automatic choice: their accepted values.
ENVIRONMENT_SETTINGS = {
    AUTO_PRECISION_ENV: ("float32", "mixed_bfloat16"),
    AUTO_JIT_ENV: ("1", "true", "on", "0", "false", "off"),
}


def _environment_setting(name):
    """`$name` as set ("" if unset or empty), checked against `ENVIRONMENT_SETTINGS`: a
    one-line error that names the variable, not the model it was building."""
    from keras_gen.errors import KerasGenError

    value = os.environ.get(name, "").strip()
    if name == AUTO_JIT_ENV:
        value = value.lower()
    if value and value not in ENVIRONMENT_SETTINGS[name]:
        raise KerasGenError(f"the environment variable {name} must be one of {', '.join(ENVIRONMENT_SETTINGS[name])} "
                            f"(or unset), got {value!r}")
    return value


def check_environment():
    """Check every keras-gen environment variable (`ENVIRONMENT_SETTINGS`) at once, before work."""
    for name in ENVIRONMENT_SETTINGS:
        _environment_setting(name)


def resolve_precision(precision: str, cpuinfo="/proc/cpuinfo") -> str:
    """The dtype policy a model is built with: "auto" resolved on this machine's CPU, anything
    else as given. An explicit "mixed_bfloat16" on a CPU without native bfloat16 warns once
    per process (`PrecisionWarning`): it runs, emulated, several times slower than float32.
    Where the CPU's flags cannot be read (no /proc/cpuinfo), "auto" is float32 and nothing warns."""
    global _warned_emulated_bfloat16

    name, flags = cpu_info(cpuinfo)
    if precision == "auto":
        return auto_precision(flags)
    if precision == "mixed_bfloat16" and flags and not has_native_bfloat16(flags) and not _warned_emulated_bfloat16:
        import warnings

        _warned_emulated_bfloat16 = True
        warnings.warn(
            f"mixed_bfloat16 on {name}, which has no native bfloat16 (AVX-512-BF16 or AMX): it is emulated there "
            "and trains about 8-12x slower than float32; precision='auto' (the CLI's --precision auto) picks float32 on "
            "this CPU",
            PrecisionWarning,
            stacklevel=caller_outside_the_libraries(),
        )
    return precision


# -- Speed settings per CPU kind -------------------------------------------------------------
# Measured with bench/dcgan_throughput.py (DCGAN against the PyTorch peer). XLA's CPU backend
# (Eigen kernels) beat TensorFlow's oneDNN kernels on an AVX2-only EPYC (0.65-0.72x -> ~0.9x
# of PyTorch, 2026-11-25) and lost to them on AVX-512 machines, with or without bfloat16 and
# AMX (fp32 0.78x and 0.95x, bf16 0.68x and 0.55x of no-XLA, 2026-11-25; README of the peers;
# on a 2-core AMX Xeon, 2026-11-26, bench/dcgan_throughput.py with 13 steps per call: fp32
# 0.91x, bf16 0.55x of no-XLA, medians of 3 rounds).

CPU_KINDS = ("amx", "avx512_bf16", "avx512", "avx2", "other")

# The kinds on which `jit_compile` defaults to XLA: only where it was measured faster.
XLA_FASTER_ON = frozenset({"avx2"})


# The most training steps Keras runs per call of its compiled train function (Keras'
# `steps_per_execution`): several steps in one `tf.function` call (a `tf.while_loop`) leave
# out Keras' per-step return to Python. On a 2-core AMD EPYC (AVX-512-BF16, 2026-11-26,
# bench/dcgan_throughput.py, idle machine, 3 rounds) DCGAN float32 went from 646 img/s
# (492-1014: the process-to-process "three speeds") to 1020 (972-1071), bfloat16 from 1083
# to 1141; the weights after training are bit-identical to one step per call. Keras then
# calls `on_train_batch_end` once per call, not once per step.
AUTO_STEPS_PER_EXECUTION = 16


def cpu_kind(flags=None) -> str:
    """One of `CPU_KINDS`: "amx" (AMX-bf16 tiles, recent Xeons), "avx512_bf16" (AVX-512 with
    bfloat16 dot products, e.g. AMD Zen 4), "avx512", "avx2", or "other" (no AVX2, or a CPU
    whose flags cannot be read, e.g. ARM, whose /proc/cpuinfo has "Features")."""
    flags = cpu_info()[1] if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    return "avx2" if "avx2" in flags else "other"


def auto_jit_compile(flags=None) -> bool:
    """Whether keras-gen compiles training with XLA by default on this CPU: only on the kinds
    in `XLA_FASTER_ON` (where it was measured faster), or as `$KERAS_GEN_AUTO_JIT` says."""
    forced = _environment_setting(AUTO_JIT_ENV)
    if forced:
        return forced in ("1", "true", "on")
    return cpu_kind(flags) in XLA_FASTER_ON


def steps_per_execution_for(steps_per_epoch, at_most=AUTO_STEPS_PER_EXECUTION) -> int:
    """The largest divisor of `steps_per_epoch` that is at most `at_most` (1 if unknown).

    It must divide the epoch: Keras 3.15 runs whole groups of `steps_per_execution` steps
    and, given `steps_per_epoch`, lets an epoch's last group run on into the next epoch's
    batches (39 steps per epoch with 4 per call trains 40 batches in epoch 1), which would
    shift every later epoch's data and break keras-gen's exact resume at epoch boundaries.
    """
    steps = int(steps_per_epoch or 0)
    if steps < 1:
        return 1
    return max(n for n in range(1, min(steps, max(1, int(at_most))) + 1) if steps % n == 0)
