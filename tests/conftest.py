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


# The slowest tests (seconds with 3 workers on 2 cores, 2026-11-27), run first: the workers
# take tests as they come, and a long test started last keeps one worker busy after the others
# have finished. A test missing here, or named here but gone, only runs in its usual place.
SLOW_FIRST = [
    "tests/test_distribute.py::test_a_mirrored_step_on_two_devices_equals_the_one_device_step_for_every_model",  # 210
    "tests/test_distribute.py::test_keras_gen_train_strategy_mirrored_and_multiworker_match_one_device",  # 75
    "tests/models/test_pixelcnnpp.py::test_save_load_and_export_give_identical_outputs",  # 70
    "tests/networks/test_cached_sampling.py::test_cached_outputs_equal_the_network_at_every_pixel[pixelcnnpp-conditional-grey]",
    "tests/models/test_pixelrnn.py::test_a_diagonal_model_saves_exports_and_samples_with_the_cached_sampler",  # 52
    "tests/networks/test_cached_sampling.py::test_cached_samples_are_the_naive_samples[pixelcnnpp-rgb]",  # 45
    "tests/test_resume.py::test_runs_killed_at_random_moments_resume_bit_identical",  # 51
    "tests/test_resume.py::test_other_families_killed_in_a_checkpoint_write_resume_bit_identical",  # 26-46 each
    "tests/test_distribute.py::test_a_resumed_mirrored_run_keeps_its_replicas_and_ends_as_the_uninterrupted_one",
    "tests/test_resume.py::test_sigint_stops_with_one_line_and_a_usable_checkpoint",  # 38
    "tests/models/test_gated_pixelcnn.py::test_save_load_and_export_give_identical_outputs",  # 31
    "tests/test_zoo.py::test_likelihood_entries_reproduce_their_test_bits_per_dim",  # 8-29 each
    "tests/test_zoo.py::test_evaluate_rescores_an_entry_and_keeps_its_weights_and_training_figures",  # 27
    "tests/test_cli.py::test_train_sample_export_a_dcgan_run",  # 27
    "tests/networks/test_cached_sampling.py::test_cached_completion_is_the_naive_completion_and_keeps_known_subpixels[pixelcnnpp-rgb]",
    "tests/models/test_pixelrnn.py::test_save_load_and_export_give_identical_outputs",  # 22
    "tests/test_export.py::test_simultaneous_exports_to_one_folder_each_get_a_version",  # 22
]


def pytest_collection_modifyitems(config, items):
    """The `SLOW_FIRST` tests at the front, in that order; the others keep theirs."""
    def rank(item):
        return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)


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


def free_ports(n):
    """n TCP ports of 127.0.0.1 that were free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def assert_one_line_error(result, pattern, code=1):
    """A `run_cli`/`run_cli_here` result that failed with exit `code` and one line on stderr
    holding `pattern`, and no traceback."""
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert pattern in lines[0], lines[0]


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


# The client of every export test: a process that never imports keras_gen and never built the
# model it is sent, so what it computes comes from the SavedModel alone: what TF Serving (one
# process serving many models) or any TF client sees. One such process per test worker serves
# every export test of that worker, one SavedModel after another (a TensorFlow start costs ~6 s
# of CPU, about 20 times a suite otherwise); TensorFlow gives each loaded SavedModel's functions
# names of their own, so one export cannot lean on another's. Requests and replies are one JSON
# line each on stdin and stdout.
SERVING_CLIENT = """
import json, os, sys, traceback
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # anything a library prints goes where stderr goes: stdout carries replies only
sys.stdout = sys.stderr
import numpy as np, tensorflow as tf
for line in sys.stdin:
    request, path, calls, out = json.loads(line)
    try:
        loaded = tf.saved_model.load(path)
        results = {}
        for i, (signature, inputs) in enumerate(calls):
            fn = loaded.signatures[signature]
            args = {k: tf.constant(np.load(v)) for k, v in inputs.items()}
            for key, value in fn(**args).items():
                results[f"{i}/{key}"] = value.numpy()
        np.savez(out, **results)
        assert "keras_gen" not in sys.modules
        reply = {"request": request, "stdout": f"signatures: {sorted(loaded.signatures.keys())}"}
    except Exception:
        reply = {"request": request, "error": traceback.format_exc()}
    replies.write(json.dumps(reply) + "\\n")
    replies.flush()
"""
_serving_client = _serving_stderr = None
_requests = 0
_unread = b""  # what the client wrote after the last full line read


def _serving_process():
    """This worker's client process, started on first use (and again if it died); it ends when
    the worker closes its stdin at exit."""
    global _serving_client, _serving_stderr, _unread
    if _serving_client is None or _serving_client.poll() is not None:
        import atexit
        import tempfile

        _serving_stderr = tempfile.TemporaryFile("w+")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        # Unbuffered bytes: `select` sees whatever the client wrote, none of it held in a buffer.
        _serving_client = subprocess.Popen([sys.executable, "-c", SERVING_CLIENT], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=_serving_stderr, bufsize=0, env=env)
        _unread = b""
        atexit.register(_serving_client.stdin.close)
    return _serving_client


def _serving_reply(client, timeout):
    """The client's next reply line, decoded."""
    import select

    global _unread
    while b"\n" not in _unread:
        ready, _, _ = select.select([client.stdout], [], [], timeout)
        if not ready:
            client.kill()
            raise AssertionError(f"the serving client gave no answer in {timeout} s")
        chunk = os.read(client.stdout.fileno(), 1 << 16)
        if not chunk:
            _serving_stderr.seek(0)
            raise AssertionError("the serving client died: " + _serving_stderr.read()[-3000:])
        _unread += chunk
    line, _unread = _unread.split(b"\n", 1)
    return json.loads(line)


def call_in_serving_process(path, calls, tmp_path, timeout=300):
    """Load the SavedModel at `path` in the serving client (above) and call its signatures.

    `calls`: list of (signature, {input: array}); returns `({"i/output": array}, text)`, the
    text naming the SavedModel's signatures."""
    serial = []
    for i, (signature, inputs) in enumerate(calls):
        files = {}
        for name, value in inputs.items():
            files[name] = str(tmp_path / f"in_{i}_{name}.npy")
            np.save(files[name], value)
        serial.append((signature, files))
    out = tmp_path / "out.npz"
    global _requests
    _requests += 1
    client = _serving_process()
    client.stdin.write((json.dumps([_requests, str(path), serial, str(out)]) + "\n").encode())
    reply = {}
    while reply.get("request") != _requests:  # a reply to an earlier test that gave up waiting: skip it
        reply = _serving_reply(client, timeout)
    assert "error" not in reply, reply.get("error", "")[-3000:]
    return dict(np.load(out)), reply["stdout"]


def assert_unconditional_export_matches(model, tmp_path, name, seed=5):
    """Export `model`; in the serving client its `serving_default` (z) and `sample` (batch_size,
    seed) signatures give exactly the uint8 images of `generate(z)` and `sample(3, seed)`."""
    import keras

    from keras_gen import export

    path = export.export(model, tmp_path, name)
    z = np.random.default_rng(seed).normal(size=(4, model.latent_dim)).astype(np.float32)
    out, stdout = call_in_serving_process(
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
