"""The keras-gen command: help without TensorFlow, one-line errors, a whole run end to end."""
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli, run_cli_here, run_python


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "gan9000"], ["list"], ["zoo", "list"]])
def test_help_errors_and_lists_do_not_import_tensorflow(argv):
    result = run_python(
        "import sys\nfrom keras_gen import cli\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n",
        *argv,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["train", "gan9000"], "unknown model 'gan9000'"),
        (["train", "dcgan", "--data", "cifar"], "unknown dataset 'cifar'"),
        (["train", "dcgan", "--epochs", "0"], "must be at least 1"),
        (["sample"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
        (["train", "dcgan", "--seed", "-1"], "seed must be a whole number from 0 to 2147483647"),
        (["sample", "dcgan-mnist5k", "--seed", "x"], "'x' is not a whole number"),
        (["train", "dcgan", "--quiet", "--verbose"], "not allowed with argument --quiet"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(argv, pattern):
    assert_one_line_error(run_cli(*argv), pattern, code=2)


def test_list_names_models_and_zoo_entries():
    result = run_cli("list")
    assert result.returncode == 0
    for name in ("dcgan", "pixelcnn", "dcgan-mnist5k", "pixelcnn-mnist5k"):
        assert name in result.stdout


def test_bad_files_and_folders_are_one_line_errors(tmp_path):
    assert_one_line_error(run_cli("sample", tmp_path / "nothing.keras"), "does not exist")
    assert_one_line_error(run_cli_here("sample", "no-such-entry"), "neither a run folder")
    assert_one_line_error(run_cli_here("sample", tmp_path), "holds no model.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 this is not a keras archive")
    assert_one_line_error(run_cli_here("export", corrupt, "--out", tmp_path / "exp"), "cannot load")
    (tmp_path / "a-file").write_text("x")
    assert_one_line_error(run_cli_here("sample", "dcgan-mnist5k", "--out", tmp_path / "a-file" / "g.png"),
                          "cannot create")
    assert_one_line_error(run_cli_here("zoo", "build", "stylegan"), "unknown zoo entry")
    assert_one_line_error(run_cli_here("sample", "dcgan-mnist5k", "--out", tmp_path), "is a folder")
    import keras

    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(plain)
    assert_one_line_error(run_cli_here("sample", plain), "not a keras-gen model")
    assert_one_line_error(run_cli_here("train", "dcgan", "--data", "digits", "--image-size", "10",
                                       "--out", tmp_path / "r"), "divisible")


def test_train_sample_export_a_dcgan_run(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "dcgan", "--data", "digits", "--epochs", "2", "--batch-size", "64", "--out", run)
    assert result.returncode == 0, result.stderr[-3000:]
    # Piped: one plain line per epoch, no progress bar; the test figures as a table.
    lines = result.stdout.splitlines()
    assert [line.split(" - ")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"] and lines[0].endswith(" s")
    assert "\x1b" not in result.stdout and "\r" not in result.stdout and "{" not in result.stdout
    assert lines[2].startswith("trained dcgan for 2 epochs in ")
    assert lines[3].split() == ["figure", "held-out", "test", "split"] and lines[5].split()[0] == "d_fake"
    info = json.loads((run / "run.json").read_text())
    assert info["recipe"]["model"] == "dcgan" and info["recipe"]["epochs"] == 2 and len(info["history"]["d_loss"]) == 2
    assert (run / "model.keras").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.keras")) == ["epoch_001.keras", "epoch_002.keras"]
    assert any((run / "logs").rglob("events.out.tfevents.*"))

    grid = tmp_path / "grid.png"
    result = run_cli_here("sample", run, "--n", "9", "--seed", "3", "--out", grid)
    assert result.returncode == 0, result.stderr[-3000:]
    from PIL import Image

    assert Image.open(grid).size == (3 * 58 + 2, 3 * 58 + 2)  # 3x3 tiles of 8 px drawn at 56 px, 2 px padding
    # The tools search the data the run trained on (digits at 8x8), not mnist5k, unless told.
    result = run_cli_here("neighbours", run, "--n", "2", "--k", "2", "--out", tmp_path / "nn.png")
    assert result.returncode == 0 and "nearest digits training images" in result.stdout, result.stderr[-3000:]
    result = run_cli_here("probe", run)
    assert result.returncode == 0 and "discriminator features, digits:" in result.stdout, result.stderr[-3000:]
    assert_one_line_error(run_cli_here("probe", run, "--data", "mnist5k"), "give --data (and --image-size)")

    result = run_cli_here("export", run, "--out", tmp_path / "serving", "--name", "digits-gan")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "serving" / "digits-gan" / "1" / "saved_model.pb").is_file()
    assert "serving_default" in result.stdout and "sample" in result.stdout
    # A second export is version 2; asking for version 1 again fails and leaves it intact.
    before = (tmp_path / "serving" / "digits-gan" / "1" / "saved_model.pb").read_bytes()
    assert run_cli_here("export", run, "--out", tmp_path / "serving", "--name", "digits-gan").returncode == 0
    assert_one_line_error(
        run_cli_here("export", run, "--out", tmp_path / "serving", "--name", "digits-gan", "--version", "1"),
        "already exists",
    )
    assert (tmp_path / "serving" / "digits-gan" / "1" / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "serving" / "digits-gan").iterdir()) == ["1", "2"]


def test_train_a_pixelcnn_run_reports_test_bits_per_dim(tmp_path):
    run = tmp_path / "run"
    result = run_cli_here("train", "pixelcnn", "--data", "digits", "--epochs", "1", "--out", run, "--verbose")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith(
        "training pixelcnn on digits: 1 epoch, batch 64, seed 0, precision auto -> float32, XLA auto -> off, "
        "one device; CPU ")
    assert "bits_per_dim" in result.stdout.splitlines()[1]  # epoch 1/1 - ... - bits_per_dim ...
    info = json.loads((run / "run.json").read_text())
    assert 0.0 < info["test"]["bits_per_dim"] < 8.0
    assert np.isclose(info["test"]["bits_per_dim"], info["test"]["nll"] / (64 * np.log(2)), rtol=1e-4)


def test_train_from_a_recipe_file_with_overrides(tmp_path):
    recipe = {"model": "dcgan", "data": ["digits"], "hparams": {"latent_dim": 8, "generator_widths": [16, 8],
              "discriminator_widths": [8, 16]}, "compile": {"loss": "hinge"}, "epochs": 3, "batch_size": 64}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    run = tmp_path / "run"
    result = run_cli_here("train", "--recipe", tmp_path / "recipe.json", "--epochs", "1",
                          "--set", "compile.augment=[\"translation\"]", "--set", "hparams.latent_dim=4", "--out", run,
                          "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("trained dcgan for 1 epoch in ")  # --quiet: no epoch lines
    ran = json.loads((run / "run.json").read_text())["recipe"]
    assert ran["epochs"] == 1 and ran["hparams"]["latent_dim"] == 4 and ran["data"] == ["digits"]
    assert ran["compile"] == {"loss": "hinge", "augment": ["translation"]}
    assert_one_line_error(run_cli_here("train", "pixelcnn", "--recipe", tmp_path / "recipe.json"),
                          "trains dcgan, not pixelcnn")
    assert_one_line_error(run_cli_here("train", "dcgan", "--set", "compile.penalty=gp", "--out", tmp_path / "r2"),
                          "penalty must be")
    assert_one_line_error(run_cli_here("train", "dcgan", "--set", "hparams.latent_dims=3", "--out", tmp_path / "r3"),
                          "latent_dims")
    assert_one_line_error(run_cli_here("train"), "name a model or give --recipe")


def test_recipe_takes_a_zoo_entry_name_from_any_folder(tmp_path, monkeypatch):
    """The README's `--recipe cgan-mnist5k` works where no zoo/ folder is beside the user (an
    installed package); a file of that name in the folder still wins."""
    from keras_gen import cli, zoo

    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    recipe = cli.recipe_from_args(parser.parse_args(["train", "--recipe", "cgan-mnist5k", "--set", "epochs=5"]))
    assert recipe == zoo.recipe("cgan-mnist5k").with_overrides(["epochs=5"])
    (tmp_path / "cgan-mnist5k").write_text(json.dumps({"model": "dcgan", "epochs": 2}))
    assert cli.recipe_from_args(parser.parse_args(["train", "--recipe", "cgan-mnist5k"])).model == "dcgan"
    assert_one_line_error(run_cli_here("train", "--recipe", "cgan-mnist5", "--epochs", "1"),
                          "recipe 'cgan-mnist5' is neither a file nor a zoo entry (did you mean cgan-mnist5k")


def test_interpolate_neighbours_and_probe_on_the_zoo_gan(tmp_path):
    from PIL import Image

    result = run_cli_here("interpolate", "dcgan-mnist5k", "--rows", "2", "--steps", "5", "--out", tmp_path / "i.png")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "i.png").size == (5 * 58 + 2, 2 * 58 + 2)  # drawn at 2x
    result = run_cli_here("neighbours", "dcgan-mnist5k", "--n", "3", "--k", "4", "--out", tmp_path / "n.png")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "n.png").size == (5 * 58 + 2, 3 * 58 + 2) and "(pixels)" in result.stdout
    result = run_cli_here("neighbours", "dcgan-mnist5k", "--n", "2", "--k", "2", "--space", "features",
                          "--out", tmp_path / "f.png")
    assert result.returncode == 0 and "(features)" in result.stdout, result.stderr[-2000:]
    result = run_cli_here("neighbours", "dcgan-mnist5k", "--data", "digits", "--image-size", "28", "--n", "2",
                          "--k", "2", "--space", "features", "--out", tmp_path / "d.png")  # in digits28's feature space
    assert result.returncode == 0 and "digits training images (features)" in result.stdout, result.stderr[-2000:]
    result = run_cli_here("probe", "dcgan-mnist5k")
    assert result.returncode == 0, result.stderr[-2000:]
    accuracy = float(result.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.8  # the discriminator's features separate digits far above chance (0.1)
    assert_one_line_error(run_cli_here("probe", "pixelcnn-mnist5k"), "does not offer discriminator_features")
    assert_one_line_error(run_cli_here("interpolate", "dcgan-mnist5k", "--label", "3", "--out", tmp_path / "x.png"),
                          "unconditional")


def test_pictures_never_overwrite_what_is_not_a_png(tmp_path):
    precious = tmp_path / "model.keras"
    precious.write_bytes(b"PK\x03\x04 a model we must keep")
    assert_one_line_error(run_cli_here("sample", "dcgan-mnist5k", "--out", precious), "ending in .png")
    fake_png = tmp_path / "notes.png"
    fake_png.write_text("my notes, not a picture")
    assert_one_line_error(run_cli_here("sample", "dcgan-mnist5k", "--out", fake_png), "not a PNG or JPEG picture")
    assert precious.read_bytes() == b"PK\x03\x04 a model we must keep"
    assert fake_png.read_text() == "my notes, not a picture"
    result = run_cli_here("sample", "cgan-mnist5k", "--n", "20", "--out", tmp_path / "grid.jpg")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "grid.jpg").read_bytes().startswith(b"\xff\xd8\xff")  # a JPEG, as the name says


def test_the_closing_line_names_what_the_run_folder_holds(tmp_path):
    from keras_gen.cli import run_folder_line

    (tmp_path / "gan" / "samples").mkdir(parents=True)
    assert run_folder_line(tmp_path / "gan", {"stages": None}) == (
        f"run folder: {tmp_path / 'gan'} (run.json, model.keras, samples/, logs/, checkpoints/)")
    adda = {"stages": [{"stage": 1, "epochs": 2, "model": "stage1.keras"}, {"stage": 2, "epochs": 3, "model": "stage2.keras"}]}
    assert run_folder_line(tmp_path / "adda", adda) == (
        f"run folder: {tmp_path / 'adda'} (run.json, model.keras, stage1.keras, stage2.keras, logs/, checkpoints/)")


def test_the_kept_line_says_what_picked_the_epoch():
    from keras_gen.cli import kept_line

    assert kept_line({"epoch": 98, "fid": 4.5213}) == \
        "kept epoch 98, the best by the fid of its samples against the training split (4.521)"
    assert kept_line({"epoch": 3, "classes_covered": 10}) == \
        "kept epoch 3, the best by the classes covered of its samples against the training split (10)"


def test_the_trained_line_counts_both_of_addas_stages():
    """ADDA's epoch lines run "stage 2, epoch 5/5": the closing line said "for 3 epochs" (stage 2's alone)."""
    from keras_gen.cli import trained_line

    assert trained_line({"recipe": {"model": "dcgan", "epochs": 1}, "train_seconds": 9.6}) == \
        "trained dcgan for 1 epoch in 10 s"
    adda = {"recipe": {"model": "adda", "epochs": 3}, "train_seconds": 63.2,
            "stages": [{"stage": 1, "epochs": 2, "model": "stage1.keras"}, {"stage": 2, "epochs": 3, "model": "stage2.keras"}]}
    assert trained_line(adda) == "trained adda for 5 epochs (stage 1: 2, stage 2: 3) in 63 s"


def test_sample_says_how_many_it_drew(tmp_path):
    """A conditional model draws n // classes per class (one row each): the message said
    "wrote 7 samples" for a grid of 10."""
    from PIL import Image

    from keras_gen import zoo

    result = run_cli_here("sample", "cgan-mnist5k", "--n", "25", "--out", tmp_path / "c.png")
    assert result.returncode == 0, result.stderr
    assert "wrote 20 samples, 2 per class in 10 rows (seed 0)" in result.stdout
    grid = np.asarray(Image.open(tmp_path / "c.png"))
    model = zoo.load("cgan-mnist5k", compile=False)
    from keras_gen.images import make_grid, readable_scale
    expected = make_grid(model.sample(20, 0, labels=np.repeat(np.arange(10), 2)), columns=2,
                         scale=readable_scale(model.image_shape), row_labels=range(10))
    assert grid.shape == expected.shape[:2]  # 10 rows of 2, as drawn
    result = run_cli_here("sample", "dcgan-mnist5k", "--n", "1", "--out", tmp_path / "one.png")
    assert result.returncode == 0 and "wrote 1 sample (seed 0)" in result.stdout, result.stderr


def test_failed_picture_and_json_commands_leave_no_folders_they_made(tmp_path):
    """interpolate, neighbours and evaluate --json made their output's folders before loading
    the model, and left them when the load failed (sample, complete and heatmap did not)."""
    for command, out in (("interpolate", ["--out", tmp_path / "a" / "b" / "i.png"]),
                         ("neighbours", ["--out", tmp_path / "c" / "d" / "n.png"]),
                         ("evaluate", ["--json", tmp_path / "e" / "f" / "r.json"])):
        assert_one_line_error(run_cli_here(command, tmp_path / "no-such-model.keras", *out), "no-such-model")
    assert list(tmp_path.iterdir()) == []


def test_evaluate_asks_for_enough_samples_for_recall():
    assert_one_line_error(run_cli_here("evaluate", "dcgan-mnist5k", "--n", "3"), "--n must be at least 4")
