"""Small helpers for what keras-gen prints and writes for people (no TensorFlow here)."""


def count(n, noun: str) -> str:
    """ "1 epoch", "2 epochs", "1,000 samples": a number with its noun, singular for one."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
