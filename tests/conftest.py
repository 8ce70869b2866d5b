import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# precision="auto" means float32 in the tests, whatever CPU runs them (figures stay comparable).
os.environ.setdefault("KERAS_GEN_AUTO_PRECISION", "float32")
# ... and XLA off by default whatever the CPU (its own tests set it).
os.environ.setdefault("KERAS_GEN_AUTO_JIT", "0")

import json
import subprocess
import sys

import numpy as np
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


def run_cli_here(*args):
    """`keras-gen ARGS` in this process: what `run_cli` returns (exit code, stdout, stderr with
    the warnings Python would print) without a TensorFlow start-up (seconds) per call. For
    tests of what a command does; what only a process shows (imports, signals, progress bars
    on a pipe) stays with `run_cli`."""
    import contextlib
    import io
    import warnings

    from keras_gen import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's defaults outside __main__:
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:  # argparse's errors (exit 2) and --help (exit 0)
            code = exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
    for w in seen:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    return subprocess.CompletedProcess(["keras-gen", *map(str, args)], code, out.getvalue(), err.getvalue())


# Runs in a process that never imports keras_gen: what TF Serving (or any TF client) sees.
FRESH_CLIENT = """
import json, sys
import numpy as np, tensorflow as tf
path, calls, out = sys.argv[1:]
loaded = tf.saved_model.load(path)
results = {}
for i, (signature, inputs) in enumerate(json.loads(calls)):
    fn = loaded.signatures[signature]
    args = {k: tf.constant(np.load(v)) for k, v in inputs.items()}
    for key, value in fn(**args).items():
        results[f"{i}/{key}"] = value.numpy()
np.savez(out, **results)
assert "keras_gen" not in sys.modules
print("signatures:", sorted(loaded.signatures.keys()))
"""


def call_in_fresh_process(path, calls, tmp_path):
    """`calls`: list of (signature, {input: array}); returns {"i/output": array}."""
    serial = []
    for i, (signature, inputs) in enumerate(calls):
        files = {}
        for name, value in inputs.items():
            files[name] = str(tmp_path / f"in_{i}_{name}.npy")
            np.save(files[name], value)
        serial.append((signature, files))
    out = tmp_path / "out.npz"
    result = run_python(FRESH_CLIENT, path, json.dumps(serial), out)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(out)), result.stdout



def assert_unconditional_export_matches(model, tmp_path, name, seed=5):
    """Export `model`; in a fresh process its `serving_default` (z) and `sample` (batch_size,
    seed) signatures give exactly the uint8 images of `generate(z)` and `sample(3, seed)`."""
    import keras

    from keras_gen import export

    path = export.export(model, tmp_path, name)
    z = np.random.default_rng(seed).normal(size=(4, model.latent_dim)).astype(np.float32)
    out, stdout = call_in_fresh_process(
        path, [("serving_default", {"z": z}), ("sample", {"batch_size": np.int32(3), "seed": np.int32(seed)})],
        tmp_path,
    )

    def uint8(images):
        return np.round(keras.ops.convert_to_numpy(images) * 255).astype(np.uint8)

    np.testing.assert_array_equal(out["0/images"], uint8(model.generate(z)))
    np.testing.assert_array_equal(out["1/images"], uint8(model.sample(3, seed)))
    return stdout


def digits8(n=32):
    """The first n of scikit-learn's 8x8 digits (train split), uint8 [n, 8, 8, 1]."""
    from keras_gen import data

    return data.load_arrays("digits", "train")[0][:n]


def tiny_dcgan():
    """A DCGAN on 8x8x1 images, latent 8: a few hundred weights."""
    from keras_gen.models import DCGAN

    return DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16), seed=1)


def tiny_cgan():
    """A CGAN on 8x8x1 images of 3 classes, latent 8."""
    from keras_gen.models import CGAN

    return CGAN(image_shape=(8, 8, 1), num_classes=3, latent_dim=8, generator_widths=(16, 8),
                discriminator_widths=(8, 16), embed_dim=4, seed=1)


def averaging_adam(initial_learning_rate, decay_steps, ema_momentum):
    """A recipe's `compile.optimizer` as the pixelcnn-large-mnist5k recipe writes it: Adam with a
    cosine learning-rate schedule (no "module" key) and Keras' moving average of the weights."""
    return {"class_name": "Adam", "config": {
        "learning_rate": {"class_name": "CosineDecay",
                          "config": {"initial_learning_rate": initial_learning_rate, "decay_steps": decay_steps}},
        "use_ema": True, "ema_momentum": ema_momentum}}


def tiny_pixelcnn():
    """A PixelCNN on 4x4x1 images: one masked 3x3 layer and the 1x1 head."""
    from keras_gen.models import PixelCNN

    return PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=0, first_kernel_size=3)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(0)
