"""Malformed input everywhere: one clear line, never a traceback, a hang or an out-of-memory kill.

Four families of bad input (issue 10, "Bad input, everywhere"):
- CLI arguments: `keras_gen.cli.main(argv)` in this process; usage errors exit 2, bad input
  exits 1, and stderr is exactly one `keras-gen...: error: ...` line (a few end to end, in a
  fresh process, to prove no traceback reaches a user);
- files: empty, truncated, random bytes, a plain-Keras `.keras`, a tampered zip, tampered zoo
  entries (copied to tmp_path, `zoo.load(name, zoo_dir=...)`);
- Python API arguments: wrong shape, dtype, range, NaN, batch 0, huge batch, bad sizes in
  constructors, empty training data: `KerasGenError` naming what was expected;
- exported signatures (wrong shape or dtype, negative or huge `batch_size`, negative seed):
  an InvalidArgumentError with a message that names what is allowed.

Everything runs on tiny models built once per module; nothing trains beyond a step.
"""
import json
import shutil
import zipfile

import numpy as np
import pytest
from conftest import run_cli, tiny_cgan, tiny_dcgan, tiny_pixelcnn

from keras_gen import cli, zoo
from keras_gen.errors import KerasGenError
from keras_gen.seeds import MAX_SAMPLES, MAX_SEED

TOO_MANY = MAX_SAMPLES + 1


# -- files -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and broken model files, and places to write to, shared by the file and CLI cases."""
    import keras

    root = tmp_path_factory.mktemp("fuzz")
    model = tiny_dcgan()
    model.compile()
    good = root / "tiny.keras"
    model.save(good)
    data = good.read_bytes()
    (root / "run").mkdir()
    shutil.copy(good, root / "run" / "model.keras")
    shutil.copy(good, root / "tiny-model.png")  # a model that happens to be named .png
    (root / "empty.keras").write_bytes(b"")
    (root / "truncated.keras").write_bytes(data[: len(data) // 2])
    (root / "head.keras").write_bytes(data[:200])
    (root / "random.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "text.keras").write_text("this is not a model\n")
    (root / "fake-zip.keras").write_bytes(b"PK\x03\x04 this is not a keras archive")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(root / "plain.keras")
    with zipfile.ZipFile(good) as src:
        members = {name: src.read(name) for name in src.namelist()}
        info = src.getinfo("model.weights.h5")
    tampered = bytearray(data)  # members are stored: flip a byte inside the weights
    tampered[info.header_offset + 200 + info.compress_size // 2] ^= 0xFF
    (root / "tampered.keras").write_bytes(bytes(tampered))

    def write_zip(name, replace=None, drop=()):
        with zipfile.ZipFile(root / name, "w") as out:
            for member, content in members.items():
                if member not in drop:
                    out.writestr(member, (replace or {}).get(member, content))

    write_zip("no-config.keras", drop=("config.json",))
    write_zip("bad-json.keras", replace={"config.json": b"{not json"})
    write_zip("list-config.keras", replace={"config.json": b"[1, 2, 3]"})
    config = json.loads(members["config.json"])
    write_zip("unknown-class.keras", replace={"config.json": json.dumps(
        {**config, "class_name": "StyleGAN9", "registered_name": "keras_gen>StyleGAN9"}).encode()})
    write_zip("bad-shape.keras", replace={"config.json": json.dumps(
        {**config, "config": {**config["config"], "image_shape": [7, 7, 1]}}).encode()})
    write_zip("no-weights.keras", drop=("model.weights.h5",))
    (root / "folder.keras").mkdir()
    (root / "not-a-png.png").write_text("precious notes\n")
    (root / "a-file").write_text("x")
    (root / "run.json").write_text('{"recipe": {"model": "dcgan"}, "history": {}}\n')  # a run's record
    return root


BROKEN_FILES = {
    "empty.keras": "empty",
    "truncated.keras": "not a .keras model file",
    "head.keras": "not a .keras model file",
    "random.keras": "not a .keras model file",
    "text.keras": "not a .keras model file",
    "fake-zip.keras": "not a .keras model file",
    "plain.keras": "holds a Sequential, not a keras-gen model",
    "tampered.keras": "corrupt",
    "no-config.keras": "without config.json",
    "bad-json.keras": "not valid JSON",
    "list-config.keras": "not a keras-gen model",
    "unknown-class.keras": "cannot load",
    "bad-shape.keras": "cannot load",
    "no-weights.keras": "cannot load",
    "folder.keras": "is a folder",
    "missing.keras": "does not exist",
    "not-a-png.png": "not a .keras model file",
}


@pytest.mark.parametrize("name, message", sorted(BROKEN_FILES.items()))
def test_broken_model_files_are_one_line_errors(files, name, message):
    from keras_gen.saving import load_keras_file

    with pytest.raises(KerasGenError, match=message) as info:
        load_keras_file(files / name)
    assert "\n" not in str(info.value) and "File not found" not in str(info.value)


def _tamper_metadata_list(folder):
    (folder / "metadata.json").write_text("[1, 2]")


def _tamper(file, text):
    return lambda folder: (folder / file).write_text(text)


def _tamper_json(file, **changes):
    def tamper(folder):
        content = json.loads((folder / file).read_text())
        content.update(changes)
        (folder / file).write_text(json.dumps(content))

    return tamper


def _truncate_weights(folder):
    weights = folder / zoo.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])


ZOO_TAMPERING = {
    "metadata is a list": (_tamper_metadata_list, "must be JSON objects"),
    "metadata not json": (_tamper("metadata.json", "{"), "not valid JSON"),
    "metadata empty": (_tamper("metadata.json", ""), "not valid JSON"),
    "metadata no sha": (_tamper("metadata.json", "{}"), "records no valid weights_sha256"),
    "metadata wrong sha": (_tamper_json("metadata.json", weights_sha256="0" * 64), "does not match"),
    "config is a list": (_tamper("config.json", "[]"), "must be JSON objects"),
    "config not json": (_tamper("config.json", "{'a': 1}"), "not valid JSON"),
    "config image_shape text": (_tamper_json("config.json", image_shape="abc"), "image_shape"),
    "config image_shape 2d": (_tamper_json("config.json", image_shape=[4, 4]), "image_shape"),
    "config image_shape zero": (_tamper_json("config.json", image_shape=[0, 4, 1]), "image_shape"),
    "config latent_dim 0": (_tamper_json("config.json", latent_dim=0), "latent_dim"),
    "config latent_dim text": (_tamper_json("config.json", latent_dim="big"), "latent_dim"),
    "config unknown key": (_tamper_json("config.json", frobnicate=1), "does not build"),
    "config other widths": (_tamper_json("config.json", filters=8), "weights do not fit"),
    "weights truncated": (_truncate_weights, "does not match"),
    "weights missing": (lambda folder: (folder / zoo.WEIGHTS).unlink(), "has no weights"),
    "recipe not json": (_tamper("recipe.json", "model: pixelcnn"), "recipe"),
}


@pytest.mark.parametrize("case", sorted(ZOO_TAMPERING))
def test_tampered_zoo_entries_are_one_line_errors(tmp_path, case):
    tamper, message = ZOO_TAMPERING[case]
    shutil.copytree(zoo.entry_dir("pixelcnn-mnist5k"), tmp_path / "pixelcnn-mnist5k")
    tamper(tmp_path / "pixelcnn-mnist5k")
    with pytest.raises(KerasGenError, match=message) as info:
        zoo.load("pixelcnn-mnist5k", zoo_dir=tmp_path)
    assert "\n" not in str(info.value)


# -- CLI arguments (in this process) ---------------------------------------------------------------
ZOO_OUT = "{zoo}/dcgan-mnist5k/samples.png"

CLI_CASES = [
    # usage errors: exit 2
    ([], 2, "required"),
    (["train", "dcgan", "--batch-size", "99999999999999999999"], 1, "batch_size must be a whole number from 1 to"),
    (["train", "dcgan", "--set", "epochs=10000000000"], 1, "epochs must be a whole number from 1 to"),
    (["train", "--resume", ""], 1, "the run folder to resume is an empty name"),  # was taken as "."
    (["train", "dcgan", "--out", "{files}/tiny.keras/run"], 1, "it or a folder above it is a file"),
    # steps_per_execution: 0 and strings were tracebacks, -1 trained no step and said it had.
    *[(["train", "dcgan", "--data", "digits", "--epochs", "1", "--set", f"compile.steps_per_execution={value}"], 1,
       "steps_per_execution must be a whole number from 1 to 1000") for value in ("0", "-1", '"2"', "2.5", "1001")],
    (["train", "dcgan", "--data", "digits", "--epochs", "1", "--set", "compile.run_eagerly=2"], 1,
     "run_eagerly must be true or false"),
    (["frobnicate"], 2, "invalid choice"),
    (["sample"], 2, "required: source"),
    (["sample", "dcgan-mnist5k", "--n"], 2, "expected one argument"),
    (["sample", "dcgan-mnist5k", "--n", "0"], 2, "must be at least 1"),
    (["sample", "dcgan-mnist5k", "--n", "-3"], 2, "must be at least 1"),
    (["sample", "dcgan-mnist5k", "--n", "2.5"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--n", "abc"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--n", ""], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--n", "1e3"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--n", "0x10"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--seed", "-1"], 2, "seed must be a whole number from 0"),
    (["sample", "dcgan-mnist5k", "--seed", str(MAX_SEED + 1)], 2, "seed must be a whole number from 0"),
    (["sample", "dcgan-mnist5k", "--seed", str(2**32 + 3)], 2, "seed must be a whole number from 0"),
    (["sample", "dcgan-mnist5k", "--seed", "9" * 40], 2, "seed must be a whole number from 0"),
    (["sample", "dcgan-mnist5k", "--seed", "1.5"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--seed", "nan"], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--seed", ""], 2, "not a whole number"),
    (["sample", "dcgan-mnist5k", "--temperature", "0"], 2, "must be a positive number"),
    (["sample", "dcgan-mnist5k", "--temperature", "-1"], 2, "must be a positive number"),
    (["sample", "dcgan-mnist5k", "--temperature", "nan"], 2, "must be a positive number"),
    (["sample", "dcgan-mnist5k", "--temperature", "inf"], 2, "must be a positive number"),
    # Outside the models' own bounds: a usage error too, as 0 is (it was exit 1, from the model).
    (["sample", "pixelcnn-mnist5k", "--temperature", "1e-31"], 2, "must be a positive number from 1e-30 to 1e+30"),
    (["complete", "pixelcnn-mnist5k", "--temperature", "2e30"], 2, "must be a positive number from 1e-30 to 1e+30"),
    (["sample", "dcgan-mnist5k", "--temperature", "warm"], 2, "not a number"),
    (["complete", "pixelcnn-mnist5k", "--temperature", ""], 2, "not a number"),
    (["sample", "dcgan-mnist5k", "--frobnicate"], 2, "unrecognized arguments"),
    (["sample", "a", "b"], 2, "unrecognized arguments"),
    (["export", "dcgan-mnist5k"], 2, "required: --out"),
    (["export", "--out", "x"], 2, "required: source"),
    (["export", "dcgan-mnist5k", "--out", "x", "--version", "0"], 2, "must be at least 1"),
    (["export", "dcgan-mnist5k", "--out", "x", "--version", "-1"], 2, "must be at least 1"),
    (["export", "dcgan-mnist5k", "--out", "x", "--version", "one"], 2, "not a whole number"),
    (["export", "dcgan-mnist5k", "--out", "x", "--version", "1.0"], 2, "not a whole number"),
    (["train", "gan9000"], 2, "unknown model 'gan9000'"),
    (["train", "dcgan", "--epochs", "0"], 2, "must be at least 1"),
    (["train", "dcgan", "--batch-size", "0"], 2, "must be at least 1"),
    (["train", "dcgan", "--batch-size", "-64"], 2, "must be at least 1"),
    (["train", "dcgan", "--seed", "-5"], 2, "seed must be"),
    (["train", "dcgan", "--data", "cifar"], 2, "unknown dataset"),
    (["train", "dcgan", "--precision", "float8"], 2, "invalid choice"),
    (["interpolate", "dcgan-mnist5k", "--rows", "0"], 2, "must be at least 1"),
    (["interpolate", "dcgan-mnist5k", "--method", "cubic"], 2, "invalid choice"),
    (["neighbours", "dcgan-mnist5k", "--k", "-1"], 2, "must be at least 1"),
    (["zoo"], 2, "required"),
    (["zoo", "frobnicate"], 2, "invalid choice"),
    # bad values: exit 1, before any work
    (["sample", "dcgan-mnist5k", "--n", str(TOO_MANY), "--out", "g.png"], 1, f"at most {MAX_SAMPLES}"),
    (["sample", "dcgan-mnist5k", "--n", "10000000", "--out", "g.png"], 1, f"at most {MAX_SAMPLES}"),
    (["sample", "dcgan-mnist5k", "--n", "9" * 20, "--out", "g.png"], 1, f"at most {MAX_SAMPLES}"),
    (["sample", "dcgan-mnist5k", "--temperature", "0.5", "--out", "g.png"], 1, "DCGAN takes no --temperature"),
    (["sample", "dcgan-mnist5k", "--out", "g.gif"], 1, "ending in"),
    (["sample", "dcgan-mnist5k", "--out", "g"], 1, "ending in"),
    (["sample", "dcgan-mnist5k", "--out", ""], 1, "ending in"),
    (["sample", "dcgan-mnist5k", "--out", "{files}/run/model.keras"], 1, "ending in"),
    (["sample", "{files}/run", "--out", "{files}/run/model.keras"], 1, "ending in"),
    (["sample", "{files}/tiny-model.png", "--out", "{files}/tiny-model.png"], 1, "the model"),
    (["sample", "dcgan-mnist5k", "--out", "{files}/tiny-model.png"], 1, "refusing to overwrite"),
    (["sample", "dcgan-mnist5k", "--out", "{files}/not-a-png.png"], 1, "refusing to overwrite"),
    (["sample", "dcgan-mnist5k", "--out", "{files}"], 1, "is a folder"),
    (["sample", "dcgan-mnist5k", "--out", "{files}/a-file/g.png"], 1, "cannot create output folder"),
    (["sample", "dcgan-mnist5k", "--out", "/proc/x.png"], 1, "cannot be written"),
    (["sample", "dcgan-mnist5k", "--out", "/proc/no-such-dir/x.png"], 1, "cannot create output folder"),
    (["sample", "dcgan-mnist5k", "--out", "g\0.png"], 1, "NUL"),
    (["sample", "dcgan-mnist5k", "--out", ZOO_OUT], 1, "inside the zoo"),
    (["sample", "dcgan-mnist5k", "--out", "{zoo}/dcgan-mnist5k/mine.png"], 1, "inside the zoo"),
    # another entry's card picture, a file of the zoo's own
    (["sample", "dcgan-mnist5k", "--out", "{zoo}/pixelcnn-mnist5k/samples.png"], 1, "inside the zoo"),
    (["interpolate", "dcgan-mnist5k", "--out", "{zoo}/cgan-mnist5k/new.png"], 1, "inside the zoo"),
    (["evaluate", "dcgan-mnist5k", "--json", "{zoo}/dcgan-mnist5k/recipe.json"], 1, "inside the zoo"),
    (["evaluate", "dcgan-mnist5k", "--json", "{files}/run.json"], 1, "not a keras-gen evaluate result"),
    (["evaluate", "dcgan-mnist5k", "--json", "/proc/x.json"], 1, "cannot be written"),
    (["interpolate", "dcgan-mnist5k", "--out", "/proc/x.png"], 1, "cannot be written"),
    (["neighbours", "dcgan-mnist5k", "--out", "{files}/not-a-png.png"], 1, "refusing to overwrite"),
    (["zoo", "build", "stylegan-mnist5k"], 1, "unknown zoo entry"),
    (["train"], 1, "name a model or give --recipe"),
    (["train", "--recipe", "{files}/missing.json"], 1, "does not exist"),
    (["train", "dcgan", "--out", ""], 1, "--out is empty"),
    (["train", "dcgan", "--epochs", "1", "--set", "epochs=2"], 1, "--set epochs=... and --epochs both set epochs"),
    (["train", "dcgan", "--data", "digits", "--set", 'data=["mnist5k"]'], 1, "and --data/--target both set data"),
    (["train", "dcgan", "--no-xla", "--set", "compile.jit_compile=true"], 1, "and --xla/--no-xla both set"),
    (["train", "--recipe", "{files}/text.keras"], 1, "recipe"),
    (["export", "dcgan-mnist5k", "--out", "{files}/a-file"], 1, "cannot create output folder"),
    (["export", "dcgan-mnist5k", "--out", "/proc/serving"], 1, "cannot create output folder"),
    (["export", "dcgan-mnist5k", "--out", "serving\0"], 1, "NUL"),
    (["export", "{files}/truncated.keras", "--out", "new/serving"], 1, "not a .keras model file"),
    (["sample", "{files}/truncated.keras", "--out", "new/folder/g.png"], 1, "not a .keras model file"),
    # bad sources: exit 1, before anything is written
    (["sample", "no-such-entry", "--out", "g.png"], 1, "neither a run folder"),
    (["sample", "", "--out", "g.png"], 1, "no model named"),
    (["export", " ", "--out", "serving"], 1, "no model named"),
    (["sample", "a\0b", "--out", "g.png"], 1, "NUL"),
    (["export", "a\0b", "--out", "serving"], 1, "NUL"),
    (["sample", "{files}", "--out", "g.png"], 1, "holds no model.keras"),
    (["sample", "{files}/missing.keras", "--out", "g.png"], 1, "does not exist"),
    (["export", "no-such-entry", "--out", "serving"], 1, "neither a run folder"),
    (["export", "{files}/tiny.keras", "--out", "serving", "--name", ""], 1, "export name ''"),
    (["export", "{files}/tiny.keras", "--out", "serving", "--name", "../escape"], 1, "export name"),
    (["export", "{files}/tiny.keras", "--out", "serving", "--name", ".hidden"], 1, "export name"),
    (["export", "{files}/tiny.keras", "--out", "serving", "--name", "a/b"], 1, "export name"),
    (["export", "{files}/tiny.keras", "--out", "serving", "--version", "9" * 30], 1, "version must be"),
] + [(["sample", f"{{files}}/{name}", "--out", "g.png"], 1, message) for name, message in sorted(BROKEN_FILES.items())
     if name != "not-a-png.png"] + [
    (["export", f"{{files}}/{name}", "--out", "serving"], 1, "cannot load") for name in
    ("empty.keras", "truncated.keras", "random.keras", "tampered.keras")
]


def _argv(argv, files):
    return [a.format(files=files, zoo=zoo.root()) if "{" in a else a for a in argv]


@pytest.mark.parametrize("argv, code, message", CLI_CASES, ids=[" ".join(c[0])[:60] or "<none>" for c in CLI_CASES])
def test_cli_bad_input_is_one_line(files, tmp_path, monkeypatch, capsys, argv, code, message):
    monkeypatch.chdir(tmp_path)
    argv = _argv(argv, files)
    before = {p: p.stat().st_mtime_ns for p in files.rglob("*") if p.is_file()}
    try:
        result = cli.main(argv)
    except SystemExit as exc:
        result = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert result == code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("keras-gen") and ": error: " in lines[0], lines[0]
    assert message in lines[0], lines[0]
    assert not list(tmp_path.iterdir()), "nothing is written on bad input"
    assert {p: p.stat().st_mtime_ns for p in files.rglob("*") if p.is_file()} == before


def test_cli_refuses_to_write_into_the_source(files, capsys):
    """The PNG beside the model is fine; the model itself (even named .png) never is."""
    original = (files / "tiny-model.png").read_bytes()
    assert cli.main(["sample", str(files / "tiny-model.png"), "--out", str(files / "tiny-model.png")]) == 1
    assert (files / "tiny-model.png").read_bytes() == original
    assert "samples from" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "dcgan-mnist5k", "--n", "10000000", "--out", "g.png"], f"at most {MAX_SAMPLES}"),
        (["sample", "dcgan-mnist5k", "--out", "/proc/x.png"], "cannot be written"),
        (["sample", "{files}/truncated.keras", "--out", "g.png"], "not a .keras model file"),
    ],
)
def test_cli_bad_input_end_to_end_has_no_traceback(files, tmp_path, argv, message):
    result = run_cli(*_argv(argv, files), cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("keras-gen: error: ") and message in lines[0], lines[0]
    assert not list(tmp_path.iterdir())


# -- Python API arguments --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models():
    from keras_gen.models.domain_adaptation import SourceOnly

    # A domain classifier on 8x8 RGB target images (grey source images are converted).
    classifier = SourceOnly(image_shape=(8, 8, 3), num_classes=3, filters=(4,), classifier_widths=(8,))
    built = {"dcgan": tiny_dcgan(), "cgan": tiny_cgan(), "pixelcnn": tiny_pixelcnn(), "source-only": classifier}
    for model in built.values():
        model.compile()
    return built


def _tf():
    import tensorflow as tf

    return tf


Z = np.zeros((2, 8), np.float32)
NAN_Z = np.where(np.eye(2, 8) > 0, np.nan, 0.0).astype(np.float32)  # 2 of 16 values
IMAGES = np.zeros((2, 4, 4, 1), np.uint8)
RGB = np.zeros((2, 8, 8, 3), np.uint8)
SEEDS_OUT_OF_RANGE = [-1, MAX_SEED + 1, 2**32 + 3, 2**63, -(2**31)]

API_CASES = {
    # sample(n): counts
    **{f"dcgan sample n={n!r}": ("dcgan", lambda m, n=n: m.sample(n), "at least 1")
       for n in [0, -1, -(10**9), np.int64(0)]},
    **{f"dcgan sample n={n!r}": ("dcgan", lambda m, n=n: m.sample(n), "whole number")
       for n in [2.5, 2.0, "2", None, True, np.float32(2), [2], b"2"]},
    **{f"dcgan sample n={n!r}": ("dcgan", lambda m, n=n: m.sample(n), f"at most {MAX_SAMPLES}")
       for n in [TOO_MANY, 10**7, 10**30, np.int64(10**12)]},
    **{f"pixelcnn sample n={n!r}": ("pixelcnn", lambda m, n=n: m.sample(n), "at least 1") for n in [0, -1]},
    **{f"pixelcnn sample n={n!r}": ("pixelcnn", lambda m, n=n: m.sample_uint8(n), f"at most {MAX_SAMPLES}")
       for n in [TOO_MANY, 10**7]},
    "pixelcnn sample n=2.5": ("pixelcnn", lambda m: m.sample(2.5), "whole number"),
    "cgan sample n=0": ("cgan", lambda m: m.sample(0), "at least 1"),
    "cgan sample n=huge": ("cgan", lambda m: m.sample(10**8), f"at most {MAX_SAMPLES}"),
    "dcgan latents n=0": ("dcgan", lambda m: m.latents(0), "at least 1"),
    "dcgan latents n=huge": ("dcgan", lambda m: m.latents(10**9), f"at most {MAX_SAMPLES}"),
    "dcgan interpolate steps=0": ("dcgan", lambda m: m.interpolate(Z[0], Z[1], steps=0), ">= 2"),
    "dcgan interpolate steps=huge": ("dcgan", lambda m: m.interpolate(Z[0], Z[1], steps=10**8), "at most"),
    # seeds: Python, NumPy and TensorFlow integers alike
    **{f"{name} seed={seed!r}": (name, lambda m, seed=seed: m.sample(1, seed=seed), "seed must be")
       for name in ("dcgan", "pixelcnn", "cgan") for seed in SEEDS_OUT_OF_RANGE},
    **{f"dcgan seed=np.int64({seed})": ("dcgan", lambda m, seed=seed: m.sample(1, seed=np.int64(seed)), "seed must be")
       for seed in [-1, 2**32 + 3]},
    **{f"pixelcnn seed=np.int64({seed})": ("pixelcnn", lambda m, seed=seed: m.sample(1, seed=np.int64(seed)),
                                           "seed must be") for seed in [-1, 2**32 + 3]},
    "dcgan seed=tf int64 2**32+3": ("dcgan", lambda m: m.sample(1, seed=_tf().constant(2**32 + 3, "int64")), "seed must"),
    "pixelcnn seed=tf -1": ("pixelcnn", lambda m: m.sample(1, seed=_tf().constant(-1)), "seed must be"),
    **{f"dcgan seed={seed!r}": ("dcgan", lambda m, seed=seed: m.sample(1, seed=seed), "seed must be")
       for seed in [1.5, 3.0, "3", None, True, [3], np.float64(3)]},
    "dcgan latents seed=-1": ("dcgan", lambda m: m.latents(2, seed=-1), "seed must be"),
    # generate(z): shape, dtype, values, batch
    "dcgan z latent 7": ("dcgan", lambda m: m.generate(np.zeros((2, 7), np.float32)), r"\[batch, 8\]"),
    "dcgan z latent 9": ("dcgan", lambda m: m.generate(np.zeros((2, 9), np.float32)), r"\[batch, 8\]"),
    "dcgan z rank 1": ("dcgan", lambda m: m.generate(np.zeros(8, np.float32)), r"\[batch, 8\]"),
    "dcgan z rank 3": ("dcgan", lambda m: m.generate(np.zeros((2, 1, 8), np.float32)), r"\[batch, 8\]"),
    "dcgan z scalar": ("dcgan", lambda m: m.generate(0.0), r"\[batch, 8\]"),
    "dcgan z None": ("dcgan", lambda m: m.generate(None), r"\[batch, 8\]"),
    "dcgan z string": ("dcgan", lambda m: m.generate("zzzz"), r"\[batch, 8\]"),
    "dcgan z strings": ("dcgan", lambda m: m.generate(np.full((2, 8), "a")), "float32"),
    "dcgan z bool": ("dcgan", lambda m: m.generate(np.zeros((2, 8), bool)), "float32"),
    "dcgan z complex": ("dcgan", lambda m: m.generate(np.zeros((2, 8), np.complex64)), "float32"),
    "dcgan z objects": ("dcgan", lambda m: m.generate(np.full((2, 8), None)), "float32"),
    "dcgan z ragged": ("dcgan", lambda m: m.generate([[0.0] * 8, [0.0] * 7]), r"\[batch, 8\]"),
    "dcgan z tf wrong": ("dcgan", lambda m: m.generate(_tf().zeros([3, 4])), r"\[batch, 8\]"),
    "dcgan z nan": ("dcgan", lambda m: m.generate(NAN_Z), "2 non-finite values"),
    "dcgan z all nan": ("dcgan", lambda m: m.generate(np.full((2, 8), np.nan, np.float32)), "16 non-finite"),
    "dcgan z inf": ("dcgan", lambda m: m.generate(np.full((1, 8), np.inf, np.float32)), "8 non-finite"),
    "dcgan z -inf": ("dcgan", lambda m: m.generate(np.full((1, 8), -np.inf, np.float64)), "non-finite"),
    "dcgan z tf nan": ("dcgan", lambda m: m.generate(_tf().fill([1, 8], np.nan)), "non-finite"),
    "dcgan z batch 0": ("dcgan", lambda m: m.generate(np.zeros((0, 8), np.float32)), "got 0"),
    "dcgan z batch huge": ("dcgan", lambda m: m.generate(np.zeros((TOO_MANY, 8), np.float32)), "in chunks"),
    "dcgan call wrong z": ("dcgan", lambda m: m(np.zeros((2, 3), np.float32)), r"\[batch, 8\]"),
    "dcgan generate labels": ("dcgan", lambda m: m.generate(Z, labels=[0, 1]), "unconditional"),
    "dcgan sample labels": ("dcgan", lambda m: m.sample(2, labels=1), "unconditional"),
    "dcgan truncation": ("dcgan", lambda m: m.sample(2, truncation=0.5), "truncation"),
    "dcgan latents truncation -1": ("dcgan", lambda m: m.latents(2, truncation=-1.0), "truncation"),
    "dcgan interpolate bad z": ("dcgan", lambda m: m.interpolate(np.zeros(8), np.zeros(7)), "size"),
    # labels (conditional)
    "cgan no labels": ("cgan", lambda m: m.generate(Z), "give labels"),
    "cgan labels out of range": ("cgan", lambda m: m.generate(Z, [0, 3]), r"0\.\.2"),
    "cgan labels negative": ("cgan", lambda m: m.sample(2, labels=-1), r"0\.\.2"),
    "cgan labels float": ("cgan", lambda m: m.sample(2, labels=[0.5, 1.0]), "2 ints"),
    "cgan labels count": ("cgan", lambda m: m.sample(2, labels=[0, 1, 2]), "2 ints"),
    "cgan labels 2d": ("cgan", lambda m: m.sample(2, labels=[[0, 1]]), "2 ints"),
    "cgan labels string": ("cgan", lambda m: m.sample(2, labels="cat"), "2 ints"),
    "cgan z wrong": ("cgan", lambda m: m.generate(np.zeros((2, 4), np.float32), [0, 1]), r"\[batch, 8\]"),
    "cgan call without labels": ("cgan", lambda m: m(Z), r"\[z, labels\]"),
    # images in (log_prob, features): shape, dtype, batch
    "pixelcnn images float": ("pixelcnn", lambda m: m.log_prob(IMAGES.astype(np.float32)), "uint8"),
    "pixelcnn images int64": ("pixelcnn", lambda m: m.log_prob(IMAGES.astype(np.int64)), "uint8"),
    "pixelcnn images bool": ("pixelcnn", lambda m: m.log_prob(IMAGES.astype(bool)), "uint8"),
    "pixelcnn images shape": ("pixelcnn", lambda m: m.log_prob(np.zeros((2, 5, 4, 1), np.uint8)), r"\[batch, 4, 4, 1\]"),
    "pixelcnn images channels": ("pixelcnn", lambda m: m.log_prob(np.zeros((2, 4, 4, 3), np.uint8)), r"\[batch, 4, 4, 1\]"),
    "pixelcnn images unbatched": ("pixelcnn", lambda m: m.log_prob(IMAGES[0]), r"\[batch, 4, 4, 1\]"),
    "pixelcnn images list": ("pixelcnn", lambda m: m.log_prob([[1, 2], [3]]), r"\[batch, 4, 4, 1\]"),
    "pixelcnn images None": ("pixelcnn", lambda m: m.log_prob(None), r"\[batch, 4, 4, 1\]"),
    "pixelcnn images batch 0": ("pixelcnn", lambda m: m.log_prob(IMAGES[:0]), "at least one image"),
    "pixelcnn images huge": ("pixelcnn", lambda m: m.log_prob(np.zeros((TOO_MANY, 4, 4, 1), np.uint8)), "in chunks"),
    "pixelcnn pixel_log_prob batch 0": ("pixelcnn", lambda m: m.pixel_log_prob(IMAGES[:0]), "at least one"),
    "dcgan features float": ("dcgan", lambda m: m.discriminator_features(np.zeros((2, 8, 8, 1))), "uint8"),
    "dcgan features batch 0": ("dcgan", lambda m: m.discriminator_features(np.zeros((0, 8, 8, 1), np.uint8)),
                               "at least one"),
    "dcgan evaluate float": ("dcgan", lambda m: m.evaluate(np.zeros((2, 8, 8, 1)), verbose=0), "uint8"),
    "dcgan evaluate batch 0": ("dcgan", lambda m: m.evaluate(np.zeros((0, 8, 8, 1), np.uint8), verbose=0),
                               "at least one"),
    # training data
    "dcgan fit empty array": ("dcgan", lambda m: m.fit(np.zeros((0, 8, 8, 1), np.uint8), verbose=0), "at least one"),
    "pixelcnn fit empty array": ("pixelcnn", lambda m: m.fit(IMAGES[:0], verbose=0), "at least one"),
    "dcgan fit empty dataset": ("dcgan", lambda m: m.fit(_tf().data.Dataset.from_tensor_slices(
        np.zeros((0, 8, 8, 1), np.uint8)).batch(4), verbose=0), "empty"),
    "dcgan fit take(0)": ("dcgan", lambda m: m.fit(_tf().data.Dataset.from_tensor_slices(
        np.zeros((4, 8, 8, 1), np.uint8)).batch(2).take(0), verbose=0), "empty"),
    "pixelcnn fit filtered to nothing": ("pixelcnn", lambda m: m.fit(_tf().data.Dataset.from_tensor_slices(
        IMAGES).filter(lambda x: False).batch(2), verbose=0), "empty"),
    "dcgan fit float": ("dcgan", lambda m: m.fit(np.zeros((4, 8, 8, 1), np.float32), verbose=0), "uint8"),
    "dcgan fit wrong shape": ("dcgan", lambda m: m.fit(np.zeros((4, 9, 9, 1), np.uint8), verbose=0), r"8, 8, 1"),
    "dcgan fit unbatched": ("dcgan", lambda m: m.fit(_tf().data.Dataset.from_tensor_slices(
        np.zeros((4, 8, 8, 1), np.uint8)), verbose=0), "batch the dataset"),
    "cgan fit bad labels": ("cgan", lambda m: m.fit(np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 2, 9]),
                                                    verbose=0), r"0\.\.2"),
    "cgan fit float labels": ("cgan", lambda m: m.fit(np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4), verbose=0),
                              "integers"),
    # domain classifiers: classify and labelled training data
    "source-only classify float": ("source-only", lambda m: m.classify(RGB.astype(np.float32)), "uint8"),
    "source-only classify shape": ("source-only", lambda m: m.classify(np.zeros((2, 9, 8, 3), np.uint8)),
                                   r"\[batch, 8, 8, 3\]"),
    "source-only classify 2 channels": ("source-only", lambda m: m.classify(np.zeros((2, 8, 8, 2), np.uint8)),
                                        r"\[batch, 8, 8, 3\]"),
    "source-only classify batch 0": ("source-only", lambda m: m.classify(RGB[:0]), "at least one"),
    "source-only classify unbatched": ("source-only", lambda m: m.classify(RGB[0]), r"\[batch, 8, 8, 3\]"),
    "source-only fit no labels": ("source-only", lambda m: m.fit(RGB, verbose=0), "give the labels too"),
    "source-only fit bad labels": ("source-only", lambda m: m.fit(RGB, np.array([0, 3]), verbose=0), r"0\.\.2"),
    "source-only fit float images": ("source-only", lambda m: m.fit(RGB.astype(np.float32), np.array([0, 1]),
                                                                    verbose=0), "uint8"),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_bad_arguments_are_one_line_errors(models, case):
    name, call, message = API_CASES[case]
    with pytest.raises(KerasGenError, match=message) as info:
        call(models[name])
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def _dcgan(**kwargs):
    from keras_gen.models import DCGAN

    return DCGAN(**{"image_shape": (8, 8, 1), "latent_dim": 8, "generator_widths": (16, 8),
                    "discriminator_widths": (8, 16), **kwargs})


def _pixelcnn(**kwargs):
    from keras_gen.models import PixelCNN

    return PixelCNN(**{"image_shape": (4, 4, 1), "filters": 4, "num_layers": 0, "first_kernel_size": 3, **kwargs})


def _gan(**kwargs):
    from keras_gen.models import GAN

    return GAN(**{"image_shape": (4, 4, 1), "latent_dim": 4, "generator_units": (8,), "discriminator_units": (8,),
                  **kwargs})


def _cgan(**kwargs):
    from keras_gen.models import CGAN

    return CGAN(**{"image_shape": (8, 8, 1), "latent_dim": 8, "generator_widths": (16, 8),
                   "discriminator_widths": (8, 16), "embed_dim": 4, **kwargs})


CONSTRUCTOR_CASES = {
    **{f"dcgan latent_dim={v!r}": (_dcgan, {"latent_dim": v}, "latent_dim") for v in [0, -1, 2.5, "8", None, True]},
    **{f"dcgan image_shape={v!r}": (_dcgan, {"image_shape": v}, "image_shape")
       for v in [(8, 8), (8, 8, 1, 1), (0, 8, 1), (-8, 8, 1), (8.5, 8, 1), "abc", None, 8]},
    "dcgan image not divisible": (_dcgan, {"image_shape": (6, 6, 1)}, "divisible"),
    **{f"dcgan generator_widths={v!r}": (_dcgan, {"generator_widths": v}, "generator_widths")
       for v in [(), (0, 8), (-16, 8), (16.5, 8), "16", None]},
    **{f"dcgan discriminator_widths={v!r}": (_dcgan, {"discriminator_widths": v}, "discriminator_widths")
       for v in [(), (0,), (8, -1)]},
    "dcgan precision": (_dcgan, {"precision": "float8"}, "precision"),
    "dcgan ema_decay": (_dcgan, {"ema_decay": 1.5}, "ema_decay"),
    **{f"pixelcnn filters={v!r}": (_pixelcnn, {"filters": v}, "filters") for v in [0, -4, 4.5]},
    "pixelcnn filters not per channel": (_pixelcnn, {"image_shape": (4, 4, 3), "filters": 4}, "multiple"),
    **{f"pixelcnn num_layers={v!r}": (_pixelcnn, {"num_layers": v}, "num_layers") for v in [-1, 1.5]},
    **{f"pixelcnn kernel_size={v!r}": (_pixelcnn, {"kernel_size": v}, "kernel_size") for v in [0, -3, 2, 4]},
    **{f"pixelcnn first_kernel_size={v!r}": (_pixelcnn, {"first_kernel_size": v}, "kernel") for v in [0, 2]},
    **{f"gan units={v!r}": (_gan, {"generator_units": v}, "generator_units") for v in [(), (0,), (-8,)]},
    **{f"gan dropout={v!r}": (_gan, {"discriminator_dropout": v}, "discriminator_dropout")
       for v in [1.0, -0.1, "0.3", None]},
    **{f"cgan num_classes={v!r}": (_cgan, {"num_classes": v}, "num_classes") for v in [1, 0, -3, 2.5]},
    "cgan embed_dim=0": (_cgan, {"num_classes": 3, "embed_dim": 0}, "embed_dim"),
}


@pytest.mark.parametrize("case", list(CONSTRUCTOR_CASES))
def test_bad_constructor_arguments_are_one_line_errors(case):
    make, kwargs, message = CONSTRUCTOR_CASES[case]
    with pytest.raises(KerasGenError, match=message) as info:
        make(**kwargs)
    assert "\n" not in str(info.value)


# -- exported signatures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signatures(models, tmp_path_factory):
    """The signatures of each tiny model's export, loaded as any TF client loads them."""
    import tensorflow as tf

    from keras_gen import export

    base = tmp_path_factory.mktemp("serving")
    return {name: tf.saved_model.load(str(export.export(model, base, name))).signatures
            for name, model in models.items()}


def _i32(value):
    return np.asarray(value, np.int32)


BATCH = f"batch_size must be from 1 to {MAX_SAMPLES}"
SEED = f"seed must be from 0 to {MAX_SEED}"
SIGNATURE_CASES = {
    # latent models: z
    "dcgan z latent 7": ("dcgan", "serving_default", {"z": np.zeros((2, 7), np.float32)}, r"expected shape \[\?,8\]"),
    "dcgan z latent 80": ("dcgan", "serving_default", {"z": np.zeros((2, 80), np.float32)}, r"expected shape \[\?,8\]"),
    "dcgan z rank 1": ("dcgan", "serving_default", {"z": np.zeros(8, np.float32)}, r"expected shape \[\?,8\]"),
    "dcgan z rank 3": ("dcgan", "serving_default", {"z": np.zeros((1, 2, 8), np.float32)}, r"expected shape \[\?,8\]"),
    "dcgan z scalar": ("dcgan", "serving_default", {"z": np.float32(0)}, r"expected shape \[\?,8\]"),
    "dcgan z float64": ("dcgan", "serving_default", {"z": np.zeros((2, 8))}, "float"),
    "dcgan z int32": ("dcgan", "serving_default", {"z": np.zeros((2, 8), np.int32)}, "float"),
    "dcgan z nan": ("dcgan", "serving_default", {"z": NAN_Z}, "z must be finite"),
    "dcgan z inf": ("dcgan", "serving_default", {"z": np.full((1, 8), np.inf, np.float32)}, "z must be finite"),
    "dcgan z batch 0": ("dcgan", "serving_default", {"z": np.zeros((0, 8), np.float32)}, "1 to"),
    "dcgan z huge": ("dcgan", "serving_default", {"z": np.zeros((TOO_MANY, 8), np.float32)}, f"1 to {MAX_SAMPLES}"),
    # sample: batch_size and seed
    **{f"{name} batch_size={n}": (name, "sample", {"batch_size": _i32(n), "seed": _i32(0)}, BATCH)
       for name in ("dcgan", "pixelcnn") for n in [-1, 0, -(2**31), TOO_MANY, 100_000, 2**31 - 1]},
    **{f"{name} seed={s}": (name, "sample", {"batch_size": _i32(1), "seed": _i32(s)}, SEED)
       for name in ("dcgan", "pixelcnn") for s in [-1, -(2**31)]},
    **{f"{name} batch_size vector": (name, "sample", {"batch_size": _i32([2]), "seed": _i32(0)},
                                     r"expected shape \[\]") for name in ("dcgan", "pixelcnn")},
    **{f"{name} seed vector": (name, "sample", {"batch_size": _i32(2), "seed": _i32([1, 2])}, r"expected shape \[\]")
       for name in ("dcgan", "pixelcnn")},
    **{f"{name} batch_size float": (name, "sample", {"batch_size": np.float32(2), "seed": _i32(0)}, "int32")
       for name in ("dcgan", "pixelcnn")},
    "dcgan seed int64": ("dcgan", "sample", {"batch_size": _i32(2), "seed": np.int64(1)}, "int32"),
    # conditional: labels
    "cgan labels out of range": ("cgan", "serving_default", {"z": Z, "labels": _i32([0, 3])}, r"labels must be in 0\.\.2"),
    "cgan labels negative": ("cgan", "serving_default", {"z": Z, "labels": _i32([-1, 0])}, r"labels must be in 0\.\.2"),
    "cgan labels count": ("cgan", "serving_default", {"z": Z, "labels": _i32([0, 1, 2])}, "one int32 label per row"),
    "cgan labels 2d": ("cgan", "serving_default", {"z": Z, "labels": _i32([[0], [1]])}, r"expected shape \[\?\]"),
    "cgan labels float": ("cgan", "serving_default", {"z": Z, "labels": np.zeros(2, np.float32)}, "int32"),
    "cgan z wrong": ("cgan", "serving_default", {"z": np.zeros((2, 3), np.float32), "labels": _i32([0, 1])},
                     r"expected shape \[\?,8\]"),
    "cgan sample no labels": ("cgan", "sample", {"labels": _i32([]), "seed": _i32(0)}, "the number of labels must be"),
    "cgan sample too many": ("cgan", "sample", {"labels": np.zeros(TOO_MANY, np.int32), "seed": _i32(0)},
                             "the number of labels must be"),
    "cgan sample bad label": ("cgan", "sample", {"labels": _i32([7]), "seed": _i32(0)}, r"labels must be in 0\.\.2"),
    "cgan sample seed -1": ("cgan", "sample", {"labels": _i32([0]), "seed": _i32(-1)}, SEED),
    # likelihood models: images
    "pixelcnn images shape": ("pixelcnn", "log_prob", {"images": np.zeros((2, 5, 4, 1), np.uint8)},
                              r"expected shape \[\?,4,4,1\]"),
    "pixelcnn images unbatched": ("pixelcnn", "serving_default", {"images": np.zeros((4, 4, 1), np.uint8)},
                                  r"expected shape \[\?,4,4,1\]"),
    "pixelcnn images float": ("pixelcnn", "log_prob", {"images": IMAGES.astype(np.float32)}, "uint8"),
    "pixelcnn images int32": ("pixelcnn", "log_prob", {"images": IMAGES.astype(np.int32)}, "uint8"),
    "pixelcnn images batch 0": ("pixelcnn", "log_prob", {"images": IMAGES[:0]}, "1 to"),
    "pixelcnn images huge": ("pixelcnn", "log_prob", {"images": np.zeros((TOO_MANY, 4, 4, 1), np.uint8)},
                             f"1 to {MAX_SAMPLES}"),
    # likelihood models: complete's images, mask and seed
    "pixelcnn complete mask batch": ("pixelcnn", "complete", {"images": IMAGES, "mask": np.ones((3, 4, 4, 1), bool),
                                                              "seed": _i32(0)}, "mask must be bool .* one per image"),
    "pixelcnn complete mask shape": ("pixelcnn", "complete", {"images": IMAGES, "mask": np.ones((2, 4, 4), bool),
                                                              "seed": _i32(0)}, r"expected shape \[\?,4,4,1\]"),
    "pixelcnn complete mask uint8": ("pixelcnn", "complete", {"images": IMAGES, "mask": np.ones((2, 4, 4, 1), np.uint8),
                                                              "seed": _i32(0)}, "bool"),
    "pixelcnn complete seed -1": ("pixelcnn", "complete", {"images": IMAGES, "mask": np.ones((2, 4, 4, 1), bool),
                                                           "seed": _i32(-1)}, SEED),
    "pixelcnn complete batch 0": ("pixelcnn", "complete", {"images": IMAGES[:0], "mask": np.ones((0, 4, 4, 1), bool),
                                                           "seed": _i32(0)}, "1 to"),
    # domain classifiers: images
    "source-only images shape": ("source-only", "classify", {"images": np.zeros((2, 9, 8, 3), np.uint8)},
                                 r"expected shape \[\?,8,8,3\]"),
    "source-only images grey": ("source-only", "classify", {"images": np.zeros((2, 8, 8, 1), np.uint8)},
                                r"expected shape \[\?,8,8,3\]"),
    "source-only images unbatched": ("source-only", "serving_default", {"images": RGB[0]},
                                     r"expected shape \[\?,8,8,3\]"),
    "source-only images float": ("source-only", "classify", {"images": RGB.astype(np.float32)}, "uint8"),
    "source-only images batch 0": ("source-only", "classify", {"images": RGB[:0]}, "1 to"),
    "source-only images huge": ("source-only", "classify", {"images": np.zeros((TOO_MANY, 8, 8, 3), np.uint8)},
                                f"1 to {MAX_SAMPLES}"),
}


@pytest.mark.parametrize("case", list(SIGNATURE_CASES))
def test_exported_signatures_refuse_bad_inputs_clearly(signatures, case):
    import tensorflow as tf

    name, signature, inputs, message = SIGNATURE_CASES[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signatures[name][signature](**{k: tf.constant(v) for k, v in inputs.items()})


def test_exported_signatures_still_answer_good_inputs(signatures):
    import tensorflow as tf

    assert signatures["dcgan"]["sample"](batch_size=tf.constant(3), seed=tf.constant(MAX_SEED))["images"].shape[0] == 3
    assert signatures["cgan"]["sample"](labels=tf.constant([0, 2]), seed=tf.constant(0))["images"].shape[0] == 2
    assert signatures["pixelcnn"]["log_prob"](images=tf.constant(IMAGES))["log_prob"].shape == (2,)
    known = np.arange(IMAGES.size).reshape(IMAGES.shape) % 3 > 0
    completed = signatures["pixelcnn"]["complete"](images=tf.constant(IMAGES), mask=tf.constant(known),
                                                   seed=tf.constant(1))["images"].numpy()
    np.testing.assert_array_equal(completed[known], IMAGES[known])
    assert signatures["source-only"]["classify"](images=tf.constant(RGB))["probabilities"].shape == (2, 3)


def test_cli_refuses_to_overwrite_a_runs_own_grids(tmp_path, capsys):
    """A run's samples/epoch_NNN.png is its training record: a PNG, yet not to be replaced by
    another model's samples (it was, silently). A new name in that folder is fine."""
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "recipe.json").write_text("{}")
    grid = run / "samples" / "epoch_001.png"
    grid.write_bytes(b"\x89PNG\r\n\x1a\n" + b"record")
    assert cli.main(["sample", "dcgan-mnist5k", "--n", "4", "--out", str(grid)]) == 1
    assert "its training record; refusing to overwrite it" in capsys.readouterr().err
    assert grid.read_bytes() == b"\x89PNG\r\n\x1a\n" + b"record"
    assert cli.main(["sample", "dcgan-mnist5k", "--n", "4", "--out", str(run / "samples" / "mine.png")]) == 0
