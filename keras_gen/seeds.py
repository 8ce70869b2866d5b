"""Seeds: the integers a user may pass as `seed`, checked in one place (no TensorFlow here)."""
from keras_gen.errors import KerasGenError

# Stateless random ops take int32 seeds; a larger seed would silently wrap onto a smaller one.
MAX_SEED = 2**31 - 1


def check_seed(seed) -> int:
    """`seed` as an int in [0, MAX_SEED], or a clear error."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise KerasGenError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed
