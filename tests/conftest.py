import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import subprocess
import sys

import pytest


def run_python(code, *args, cwd=None, timeout=300):
    """Run `code` with `args` in a fresh Python process (the test's own interpreter)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_cli(*args, cwd=None, timeout=600):
    """Run `keras-gen ARGS` as a user would (through `python -m keras_gen.cli`)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_gen.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(0)
