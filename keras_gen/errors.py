"""The one exception type keras-gen raises for bad input.

The CLI prints a `KerasGenError` as one line and exits non-zero; anything else is a bug.
"""


class KerasGenError(Exception):
    """Bad input from the user: unknown name, missing or corrupt file, wrong shape or dtype."""
