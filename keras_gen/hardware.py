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


class PrecisionWarning(UserWarning):
    """bfloat16 asked for on a CPU that only emulates it."""


_warned_emulated_bfloat16 = False


def auto_precision(flags=None) -> str:
    """What `precision="auto"` means on this CPU: "mixed_bfloat16" where it has native
    bfloat16 (AVX-512-BF16 or AMX), "float32" elsewhere (or `$KERAS_GEN_AUTO_PRECISION`)."""
    forced = os.environ.get(AUTO_PRECISION_ENV)
    if forced:
        if forced not in ("float32", "mixed_bfloat16"):
            raise ValueError(f"{AUTO_PRECISION_ENV} must be float32 or mixed_bfloat16, got {forced!r}")
        return forced
    return "mixed_bfloat16" if has_native_bfloat16(flags) else "float32"


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
            "and trains about 8-12x slower than float32; precision='auto' picks float32 on this CPU",
            PrecisionWarning,
            stacklevel=3,
        )
    return precision
