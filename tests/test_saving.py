"""keras_gen.saving: a model from what a user names, in its own precision or another."""
import keras
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli_here
from keras_gen import zoo
from keras_gen.errors import KerasGenError
from keras_gen.images import sample_grid
from keras_gen.models import PixelCNN
from keras_gen.saving import load_source, with_precision


def test_a_saved_model_loads_in_another_precision_with_the_same_weights(tmp_path):
    model = PixelCNN(image_shape=(6, 6, 1), filters=8, num_layers=1, precision="float32")
    model.compile()
    path = tmp_path / "m.keras"
    model.save(path)
    images = np.random.default_rng(0).integers(0, 256, (4, 6, 6, 1)).astype("uint8")
    own, _ = load_source(str(path))
    same, _ = load_source(str(path), "float32")
    other, name = load_source(str(path), "mixed_bfloat16")
    assert name == "m" and same.precision == own.precision == "float32" and other.precision == "mixed_bfloat16"
    for a, b in zip(own.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    a, b = (keras.ops.convert_to_numpy(m.log_prob(images)) for m in (own, same))
    np.testing.assert_array_equal(a, b)
    c = keras.ops.convert_to_numpy(other.log_prob(images))
    np.testing.assert_allclose(c, a, rtol=0.02)
    assert not np.array_equal(c, a)  # it really runs in bfloat16
    assert with_precision(own, None) is own and with_precision(own, "float32") is own
    with pytest.raises(KerasGenError, match="precision must be one of auto, float32, mixed_bfloat16"):
        with_precision(own, "fp32")


def test_the_cli_runs_a_zoo_entry_in_the_precision_asked(tmp_path):
    """Before: no command took --precision, so a bfloat16 entry on a CPU without bfloat16
    ran emulated, and the warning's advice (precision='auto') had no CLI form."""
    out = tmp_path / "bf16.png"
    done = run_cli_here("sample", "dcgan-mnist5k", "--n", "8", "--precision", "mixed_bfloat16", "--out", out)
    assert done.returncode == 0, done.stderr
    expected = sample_grid(zoo.load("dcgan-mnist5k", precision="mixed_bfloat16"), 8, 0)
    own = sample_grid(zoo.load("dcgan-mnist5k"), 8, 0)
    drawn = np.asarray(Image.open(out))
    assert np.array_equal(drawn.reshape(expected.shape), expected) and not np.array_equal(expected, own)
    refused = run_cli_here("sample", "dcgan-mnist5k", "--precision", "fp16", "--out", tmp_path / "x.png")
    assert refused.returncode == 2 and "invalid choice: 'fp16'" in refused.stderr


def test_a_folder_named_like_a_zoo_entry_says_what_it_hides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dcgan-mnist5k").mkdir()
    with pytest.raises(KerasGenError, match="holds no model.keras .* it hides the zoo entry 'dcgan-mnist5k'"):
        load_source("dcgan-mnist5k")
    (tmp_path / "other-folder").mkdir()
    with pytest.raises(KerasGenError, match="holds no model.keras") as refused:
        load_source("other-folder")
    assert "hides" not in str(refused.value)


def test_an_unfinished_run_says_to_resume_it_or_use_its_newest_checkpoint(tmp_path, monkeypatch):
    """An interrupted run's folder holds recipe.json and checkpoints but no model.keras yet:
    `sample`, `evaluate` and `export` said it held "no model.keras nor recipe.json"."""
    from keras_gen import resume

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "recipe.json").write_text("{}")
    with pytest.raises(KerasGenError, match=r"is a run that has not finished \(no model.keras yet\): resume it with "
                                            rf"keras-gen train --resume {run}$"):
        load_source(str(run))
    newest = run / "checkpoints" / "epoch_003.keras"
    monkeypatch.setattr(resume, "newest_checkpoint", lambda folder: newest if folder == run / "checkpoints" else None)
    result = run_cli_here("sample", run, "--out", tmp_path / "s.png")
    assert result.returncode == 1 and result.stderr.strip().endswith(f"or use its newest checkpoint, {newest}")
