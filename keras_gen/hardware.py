"""The CPU a figure was measured on: model name and the instruction sets that decide speed.

bfloat16 is fast only with native units (AVX-512-BF16, AMX) and emulated many times slower
elsewhere; XLA helped on an AVX2-only EPYC and hurt on AVX-512 machines. So every figure
keras-gen writes (zoo cards, benchmarks) names the CPU this way. No TensorFlow here.
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
