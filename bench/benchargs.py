"""Argument checks shared by the benchmark scripts. A bad argument is one line from argparse
(exit 2) before any work starts, never a traceback after minutes of it; a figure to quote
comes from at least 3 interleaved rounds, and a run of fewer says so under its table."""
import argparse
import os
from pathlib import Path

QUOTABLE_ROUNDS = 3


def int_range(low, high=None):
    """An argparse type: a whole number in [low, high] (no upper bound if high is None)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {bound}")
        return value
    return parse


positive_int = int_range(1)


def float_range(low, high=float("inf"), above_low=False):
    """An argparse type: a finite number from `low` (or above it, if `above_low`) to `high`."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (low < value if above_low else low <= value) or not value <= high or value == float("inf"):
            bound = (f"above {low:g}" if above_low else f"at least {low:g}") if high == float("inf") \
                else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: a finite number {bound}")
        return value
    return parse


non_negative_float = float_range(0)
positive_float = float_range(0, above_low=True)
fraction = float_range(0, 1)


def executable(text):
    """An argparse type: a program that exists and can run (the PyTorch peer's Python)."""
    path = Path(os.path.expanduser(text))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{text} is not an executable file (the PyTorch peer's Python: "
                                         "python3 -m venv ~/.venvs/torchref && ~/.venvs/torchref/bin/pip install "
                                         "torch numpy mlxtend)")
    return str(path)


def rounds_note(rounds):
    """The line under a table of `rounds` rounds: empty from QUOTABLE_ROUNDS on."""
    if rounds >= QUOTABLE_ROUNDS:
        return ""
    return (f"\n({rounds} round{'s' if rounds != 1 else ''}: fewer than {QUOTABLE_ROUNDS}, a smoke run; "
            "its medians are not figures to quote)")


def rotated(items, round_index):
    """`items` in the order of round `round_index` (from 0): each round starts one later, so
    that drift within a round does not always fall on the same configurations."""
    shift = round_index % len(items) if items else 0
    return list(items[shift:]) + list(items[:shift])


def threads_line():
    """What decides the thread pools on this machine: TensorFlow's intra-op pool defaults to
    the logical CPUs, PyTorch's to the physical cores; they differ where cores run 2 threads."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = set()
    try:
        physical = core = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                physical = value.strip()
            elif key == "core id":
                core = value.strip()
            elif not key and core is not None:
                cores.add((physical, core))
                physical = core = None
        if core is not None:
            cores.add((physical, core))
    except OSError:
        pass
    return f"{logical} logical CPUs, {len(cores) or '?'} physical cores"


def domain_pair(text):
    """An argparse type: `SOURCE:TARGET`, two of the embedded data sets (the benchmarks run offline)."""
    from keras_gen.data.loaders import EMBEDDED

    source, colon, target = text.partition(":")
    if not colon or source not in EMBEDDED or target not in EMBEDDED:
        raise argparse.ArgumentTypeError(f"{text!r} is not SOURCE:TARGET of two of {', '.join(EMBEDDED)}")
    return text
