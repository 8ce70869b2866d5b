"""Seeds, counts and temperatures: what a user may pass as `seed`, `n` and `temperature`,
checked in one place (the Python API and the command line alike).

Python ints, NumPy integers (`np.int64(3)`) and eager TensorFlow integer scalars
(`tf.constant(3)`) are all accepted, and all range-checked the same way: nothing wraps
silently (a seed of 2**32 + 3 would be the int32 seed 3). No TensorFlow is imported here.
"""
import numbers

from keras_gen.errors import KerasGenError

# Stateless random ops take int32 seeds; a larger seed would silently wrap onto a smaller one.
MAX_SEED = 2**31 - 1

# The most images one call may ask for: `sample(n)`, `latents(n)`, `generate(z)`,
# `log_prob(images)`, `keras-gen sample --n` and the exported `sample` signature's
# `batch_size` (checked in the graph). A bound instead of minutes of work or an
# out-of-memory kill; draw more in chunks (different seeds) and concatenate.
MAX_SAMPLES = 10_000

# Sampling temperatures allowed: logits / T overflows float32 (3.4e38) for T below about 1e-37
# (the draw then returned level 256, out of range, or a wrong level); from 1e-30 on, logits up
# to 1e8 stay finite, and any T that small draws the most likely level.
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-30, 1e30


def whole_number(value):
    """`value` as a Python int if it is a whole number (Python, NumPy or an eager TensorFlow
    integer scalar), else None. Booleans and floats (even 3.0) are not whole numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):  # int, np.int64, ...
        return int(value)
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    if callable(getattr(value, "numpy", None)) and getattr(dtype, "is_integer", False) and shape is not None \
            and len(shape) == 0:
        try:  # an eager tf.Tensor / tf.Variable; symbolic tensors have no value to check
            return int(value.numpy())
        except Exception:
            return None
    return None


def check_seed(seed) -> int:
    """`seed` as an int in [0, MAX_SEED], or a clear error."""
    value = whole_number(seed)
    if value is None or not 0 <= value <= MAX_SEED:
        raise KerasGenError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}"[:300])
    return value


def check_count(n, what="n", maximum=MAX_SAMPLES) -> int:
    """A number of images from 1 to `maximum` (default MAX_SAMPLES), as a Python int."""
    value = whole_number(n)
    if value is None or value < 1:
        raise KerasGenError(f"{what} must be a whole number of at least 1, got {n!r}"[:300])
    if maximum is not None and value > maximum:
        raise KerasGenError(
            f"{what} must be at most {maximum} per call, got {value}; ask for at most {maximum} at a time "
            "(e.g. different seeds) and concatenate"
        )
    return value


def check_temperature(temperature) -> float:
    """A sampling temperature from MIN_TEMPERATURE to MAX_TEMPERATURE (a Python or NumPy
    number), as a Python float."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not MIN_TEMPERATURE <= float(temperature) <= MAX_TEMPERATURE:
        raise KerasGenError(f"temperature must be a positive number from {MIN_TEMPERATURE:g} to "
                            f"{MAX_TEMPERATURE:g}, got {temperature!r}"[:300])
    return float(temperature)
