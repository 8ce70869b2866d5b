"""The one exception type keras-gen raises for bad input.

The CLI prints a `KerasGenError` as one line and exits non-zero; anything else is a bug.
"""


def first_line(exc: BaseException) -> str:
    """The first line of another library's error message (its class name when it has none):
    what a one-line KerasGenError quotes of it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class KerasGenError(Exception):
    """Bad input from the user: unknown name, missing or corrupt file, wrong shape or dtype."""

    # Keras rewrites an exception raised inside a layer's `call` into a multi-line message
    # ("Exception encountered when calling ...", the arguments) unless it carries this mark
    # (keras/src/utils/traceback_utils.py): ours are already one clear line.
    _keras_call_info_injected = True


class Terminated(BaseException):
    """SIGTERM where keras-gen turns it into an exception (while a multi-worker task waits for
    its cluster), so that what it made is tidied on the way out, as after Ctrl-C; the CLI
    exits with status 143 (128 + SIGTERM)."""


def caller_outside_the_libraries() -> int:
    """The `stacklevel` for a `warnings.warn` in the function that calls this one, naming the
    first frame outside keras-gen, Keras and TensorFlow: the user's line that built, loaded or
    trained the model, however deep the constructors and Keras' calls nest."""
    import sys

    frame, level = sys._getframe(2), 2  # 1: the warning function itself; 2: its caller
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("keras_gen", "keras",
                                                                                       "tensorflow"):
        frame, level = frame.f_back, level + 1
    return level
