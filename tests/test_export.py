"""SavedModel export: TF Serving layout, named signatures, identical outputs in a process without keras_gen."""
import keras
import numpy as np
import pytest
from conftest import call_in_serving_process

from keras_gen import export
from keras_gen.errors import KerasGenError
from keras_gen.models import DCGAN, PixelCNN

def test_dcgan_export_layout_and_outputs(tmp_path):
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8))
    model.compile()
    model.fit(np.zeros((16, 8, 8, 1), np.uint8), batch_size=8, epochs=1, verbose=0)  # BN stats move
    path = export.export(model, tmp_path / "serving", "gan")
    assert path == tmp_path / "serving" / "gan" / "1"
    assert (path / "saved_model.pb").is_file()
    z = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    out, stdout = call_in_serving_process(
        path,
        [("serving_default", {"z": z}), ("sample", {"batch_size": np.int32(3), "seed": np.int32(11)})],
        tmp_path,
    )
    assert "'sample'" in stdout and "'serving_default'" in stdout
    expected = np.round(keras.ops.convert_to_numpy(model.generate(z)) * 255).astype(np.uint8)
    assert out["0/images"].dtype == np.uint8
    np.testing.assert_array_equal(out["0/images"], expected)
    expected_sample = np.round(keras.ops.convert_to_numpy(model.sample(3, 11)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(out["1/images"], expected_sample)


def test_pixelcnn_export_log_prob_and_sample(tmp_path):
    model = PixelCNN(image_shape=(4, 4, 1), filters=8, num_layers=1, first_kernel_size=3)
    model.compile()
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 1), dtype=np.uint8)
    model.fit(images, batch_size=3, epochs=1, verbose=0)
    path = export.export(model, tmp_path, "pixelcnn")
    out, stdout = call_in_serving_process(
        path,
        [
            ("log_prob", {"images": images}),
            ("serving_default", {"images": images}),
            ("sample", {"batch_size": np.int32(2), "seed": np.int32(4)}),
        ],
        tmp_path,
    )
    log_prob = keras.ops.convert_to_numpy(model.log_prob(images))
    np.testing.assert_allclose(out["0/log_prob"], log_prob, rtol=1e-5)
    np.testing.assert_allclose(out["0/bits_per_dim"], -log_prob / (16 * np.log(2)), rtol=1e-5)
    np.testing.assert_allclose(out["1/log_prob"], log_prob, rtol=1e-5)  # log_prob is the default
    np.testing.assert_array_equal(out["2/images"], model.sample_uint8(2, 4).numpy())


def test_an_export_traces_each_signature_once(tmp_path, monkeypatch):
    """Keras lists a signature's variables by tracing it, and `tf.saved_model.save` traced it
    again (TensorFlow keys its trace cache on being inside a save): the samplers' graphs,
    seconds each to build, were built twice (`bench/export_time.py`)."""
    model = PixelCNN(image_shape=(4, 4, 1), filters=8, num_layers=1, first_kernel_size=3)
    model.compile()
    traced = []
    fill_graph = type(model)._fill_graph

    def counted(self, *args, **kwargs):
        traced.append(kwargs.get("cached", True))
        return fill_graph(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "_fill_graph", counted)
    path = export.export(model, tmp_path, "pixelcnn")
    assert len(traced) == 2, traced  # `sample` and `complete`, once each
    out, _ = call_in_serving_process(path, [("sample", {"batch_size": np.int32(2), "seed": np.int32(4)})], tmp_path)
    np.testing.assert_array_equal(out["0/images"], model.sample_uint8(2, 4).numpy())


def test_versions_count_up_and_leave_no_temporaries(tmp_path):
    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    first = export.export(model, tmp_path, "m")
    second = export.export(model, tmp_path, "m")
    assert (first.name, second.name) == ("1", "2")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
    assert export.export(model, tmp_path, "m", version=7).name == "7"
    with pytest.raises(KerasGenError, match="already exists"):
        export.export(model, tmp_path, "m", version=7)
    with pytest.raises(KerasGenError, match="export name"):
        export.export(model, tmp_path, "../escape")
    # '.' is allowed inside a name, not first: the message says so (".." was refused as if '.' never was).
    with pytest.raises(KerasGenError, match=r"export name '\.\.' must be .* or '\.', beginning with a letter or digit"):
        export.export(model, tmp_path, "..")
    assert export.export(model, tmp_path, "m.v2").parent.name == "m.v2"


def test_an_export_is_synced_before_it_is_published_and_a_killed_ones_leftovers_go(tmp_path, monkeypatch):
    """The files of an export reach the disk before the rename that publishes it, and the
    rename after it. A killed export's temporary folder (its process gone) is removed by the
    next export into the folder; a live writer's, and one of another host, stay."""
    import os
    import subprocess
    import sys

    from keras_gen import files

    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    base = tmp_path / "m"
    base.mkdir()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = files._host()
        killed = base / f".m.tmp-{host}-{int(ended.stdout)}-abc"
        running = base / f".m.tmp-{host}-{live.pid}-def"
        elsewhere = base / f".m.tmp-otherhost-{int(ended.stdout)}-ghi"
        for leftover in (killed, running, elsewhere):
            (leftover / "variables").mkdir(parents=True)
        events = []
        real_fsync, real_rename = os.fsync, os.rename
        monkeypatch.setattr(files.os, "fsync",
                            lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd))
        monkeypatch.setattr(files.os, "rename", lambda a, b: events.append(("rename", str(b))) or real_rename(a, b))
        path = export.export(model, tmp_path, "m")
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in base.iterdir()) == sorted(["1", running.name, elsewhere.name])
    renamed = events.index(("rename", str(path)))
    synced_before = {p for kind, p in events[:renamed] if kind == "fsync"}
    assert any(p.endswith("saved_model.pb") for p in synced_before)
    assert any(p.endswith(".data-00000-of-00001") for p in synced_before)  # the variables
    assert ("fsync", str(base)) in events[renamed:]


def test_a_version_taken_meanwhile_goes_to_the_next_free_number(tmp_path, monkeypatch):
    """Two exports that both saw version 1 free (a race): the rename that publishes a version
    is also its claim, so the second takes 2 and the first stays intact."""
    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    first = export.export(model, tmp_path, "m")
    before = (first / "saved_model.pb").read_bytes()
    monkeypatch.setattr(export, "next_version", lambda base: 1)  # what the racing export saw
    second = export.export(model, tmp_path, "m")
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").read_bytes() == before and (second / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no temporaries left
    with pytest.raises(KerasGenError, match="already exists"):  # a version the user names is never moved
        export.export(model, tmp_path, "m", version=2)
    with pytest.raises(KerasGenError, match="version must be"):
        export.export(model, tmp_path, "m", version=2**63)


def test_simultaneous_exports_to_one_folder_each_get_a_version(tmp_path):
    """Two processes export at the same moment (they wait for each other first): before the
    rename became the claim, the second failed with "'.../1' is an existing folder" every time."""
    import subprocess
    import sys

    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    model.save(tmp_path / "m.keras")
    code = (
        "import os, sys, time\n"
        "from keras_gen import export\nfrom keras_gen.saving import load_keras_file\n"
        "model, barrier = load_keras_file(sys.argv[1]), sys.argv[3]\n"
        "open(os.path.join(barrier, str(os.getpid())), 'w').close()\n"
        "while len(os.listdir(barrier)) < 2:\n    time.sleep(0.001)\n"
        "print(export.export(model, sys.argv[2], 'm'))\n"
    )
    (tmp_path / "barrier").mkdir()
    args = [sys.executable, "-c", code, str(tmp_path / "m.keras"), str(tmp_path / "serving"), str(tmp_path / "barrier")]
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()[-2000:]) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    versions = sorted(p.name for p in (tmp_path / "serving" / "m").iterdir())
    assert versions == ["1", "2"]
    assert all((tmp_path / "serving" / "m" / v / "saved_model.pb").is_file() for v in versions)


def test_signatures_say_their_bounds():
    from keras_gen.seeds import MAX_SAMPLES

    from keras_gen.models import ACGAN, DANN, GatedPixelCNN
    from keras_gen.seeds import MAX_SEED

    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    assert f"batch_size int32 (1 to {MAX_SAMPLES})" in export.describe(model)
    # Every signature that takes images says how many, and every seed its range.
    models = [model, GatedPixelCNN(image_shape=(3, 3, 1), filters=4, num_layers=1, num_classes=2),
              ACGAN(image_shape=(8, 8, 1), num_classes=2, latent_dim=4, generator_widths=(8, 4),
                    discriminator_widths=(4, 8), embed_dim=4),
              DANN(image_shape=(28, 28, 3), filters=(4, 6), classifier_widths=(8,))]
    for m in models:
        for endpoint in m.serving_endpoints():
            names = [spec.name for spec in endpoint.input_signature]
            if "images" in names:
                assert f"(1 to {MAX_SAMPLES} images)" in endpoint.doc, (type(m).__name__, endpoint.name)
            if "seed" in names:
                assert f"seed int32 (0 to {MAX_SEED})" in endpoint.doc, (type(m).__name__, endpoint.name)


KILLED_EXPORT = r"""
import os, signal, sys
from keras_gen import export, files
from keras_gen.models import PixelCNN

def killed(path):  # the export is written, not yet published
    os.kill(os.getpid(), signal.SIGKILL)

files.fsync_tree = killed
export.export(PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3), sys.argv[1], "m")
"""


def test_an_export_killed_before_it_is_published_leaves_no_version_and_the_next_one_cleans_up(tmp_path):
    """SIGKILL after the SavedModel is written but before the rename: TF Serving sees no
    version (only a hidden temporary folder), and the next export takes version 1 and removes
    the killed one's folder."""
    import signal
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    (leftover,) = (tmp_path / "m").iterdir()
    assert leftover.name.startswith(".m.tmp-") and (leftover / "saved_model.pb").is_file()
    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    assert export.export(model, tmp_path, "m").name == "1"
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["1"]


def test_keras_model_export_writes_the_named_signatures_to_the_folder_given(tmp_path):
    """Keras' own call, `model.export(path)`, failed on a keras-gen model ("never called")."""
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8))
    path = model.export(tmp_path / "gan")
    assert path == tmp_path / "gan" and (path / "saved_model.pb").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["gan"]  # no temporary left beside it
    z = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    (tmp_path / "io").mkdir()
    out, stdout = call_in_serving_process(path, [("serving_default", {"z": z})], tmp_path / "io")
    assert "'sample'" in stdout
    expected = np.round(keras.ops.convert_to_numpy(model.generate(z)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(out["0/images"], expected)
    before = sorted(p.name for p in path.rglob("*"))
    with pytest.raises(KerasGenError, match="already exists"):
        model.export(path)
    assert sorted(p.name for p in path.rglob("*")) == before
    with pytest.raises(KerasGenError, match="format='tf_saved_model', not 'onnx'"):
        model.export(tmp_path / "other", format="onnx")
    with pytest.raises(KerasGenError, match="takes no input_signature"):
        model.export(tmp_path / "other", input_signature=[])
    assert not (tmp_path / "other").exists()


def test_an_export_is_readable_by_other_users_as_the_umask_allows(tmp_path):
    """mkdtemp's private mode survived the rename into place: a TF Serving running as another
    user could not read the export (0o700)."""
    import os
    import stat

    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    old = os.umask(0o022)
    try:
        version = export.export(model, tmp_path, "m")
        assert stat.S_IMODE(version.stat().st_mode) == 0o755
        os.umask(0o077)
        private = export.export(model, tmp_path, "m")
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        os.umask(0o022)
        (tmp_path / "k").mkdir()
        model.export(str(tmp_path / "k" / "served"))
        assert stat.S_IMODE((tmp_path / "k" / "served").stat().st_mode) == 0o755
    finally:
        os.umask(old)


def test_versions_are_the_folders_tf_serving_reads_and_stop_at_its_largest(tmp_path):
    model = PixelCNN(image_shape=(2, 2, 1), filters=4, num_layers=0, first_kernel_size=3)
    base = tmp_path / "m"
    for name in ("²", "٣", "0", "x9"):  # digits to str.isdigit, not to TF Serving; 0 is no version
        (base / name).mkdir(parents=True)
    assert export.export(model, tmp_path, "m").name == "1"
    (base / "5").mkdir()  # an empty folder named by the user is no version yet: it is filled
    assert export.export(model, tmp_path, "m", version=5).name == "5"
    assert any((base / "5").iterdir())
    assert export.export(model, tmp_path, "m").name == "6"
    (base / str(export.MAX_VERSION)).mkdir()
    before = sorted(p.name for p in base.iterdir())
    with pytest.raises(KerasGenError, match=f"holds version {export.MAX_VERSION}, the largest TF Serving reads"):
        export.export(model, tmp_path, "m")
    assert sorted(p.name for p in base.iterdir()) == before  # nothing written, no temporaries
    assert export.export(model, tmp_path, "m", version=7).name == "7"  # a free number still goes
