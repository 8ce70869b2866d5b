"""A full disk ends a command with one line, and leaves nothing half-written or lost.

A disk is filled here by a file-size limit on the command's process (`RLIMIT_FSIZE`, with
SIGXFSZ ignored): a write past it fails as on a full disk (EFBIG, "File too large", where a
full disk gives ENOSPC), through the same code paths. (The same commands were also run
against a full 300 KB tmpfs; see the README.)
"""
import os
import resource
import signal
import subprocess
import sys

import pytest

LIMIT = 60_000  # bytes: a tiny GAN's checkpoint (~130 KB) and a zoo export do not fit
TINY = ["--set", "hparams.latent_dim=8", "--set", "hparams.generator_widths=[16, 8]",
        "--set", "hparams.discriminator_widths=[8, 16]"]


def _limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def keras_gen(*args):
    env = {**os.environ, "KERAS_GEN_AUTO_PRECISION": "float32", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "keras_gen.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600, preexec_fn=_limited)


def _one_line_error(done):
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("keras-gen: error:")]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0]


def _hidden(folder):
    return [p for p in folder.rglob(".*")]


def test_train_on_a_full_disk_stops_with_one_line_and_leaves_no_run_folder(tmp_path):
    done = keras_gen("train", "dcgan", "--data", "digits", "--epochs", "2", "--batch-size", "256", *TINY,
                     "--out", tmp_path / "run", "--quiet")
    line = _one_line_error(done)
    assert "a file could not be written: File too large" in line and "nothing was kept" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["sample", "export"])
def test_sample_and_export_on_a_full_disk_keep_what_was_there(tmp_path, command):
    precious = tmp_path / ("grid.png" if command == "sample" else "out")
    if command == "sample":
        precious.write_bytes(b"\x89PNG\r\n\x1a\n" + b"an earlier grid" * 10)
        before = precious.read_bytes()
        done = keras_gen("sample", "dcgan-mnist5k", "--n", "400", "--out", precious)
    else:
        (precious / "dcgan-mnist5k" / "1").mkdir(parents=True)
        (precious / "dcgan-mnist5k" / "1" / "saved_model.pb").write_bytes(b"version 1")
        done = keras_gen("export", "dcgan-mnist5k", "--out", precious)
    line = _one_line_error(done)
    assert "File too large" in line
    if command == "sample":
        assert precious.read_bytes() == before
    else:
        assert sorted(p.name for p in (precious / "dcgan-mnist5k").iterdir()) == ["1"]
        assert (precious / "dcgan-mnist5k" / "1" / "saved_model.pb").read_bytes() == b"version 1"
    assert _hidden(tmp_path) == []
