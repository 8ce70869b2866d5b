"""The zoo: entries load offline by name, weights are verified, figures on the card hold."""
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli_here, run_python

from keras_gen import data, zoo
from keras_gen.errors import KerasGenError
from keras_gen.images import to_uint8
from keras_gen.models import ADDA, DCGAN, PixelCNN


GAN_ENTRIES = ["biggan-mnist5k", "cgan-mnist5k", "dcgan-mnist5k", "gan-mnist5k", "wgan-gp-mnist5k"]
LIKELIHOOD_ENTRIES = ["gated-pixelcnn-mnist5k", "pixelcnn-large-mnist5k", "pixelcnn-mnist5k", "pixelcnnpp-mnist5k",
                      "pixelrnn-diagonal-mnist5k", "pixelrnn-mnist5k"]
DOMAIN_ENTRIES = ["adda-mnist5k-mnistm5k", "dann-mnist5k-mnistm5k"]


def test_list():
    assert zoo.list() == sorted(GAN_ENTRIES + LIKELIHOOD_ENTRIES + DOMAIN_ENTRIES)


@pytest.mark.parametrize("name", GAN_ENTRIES + LIKELIHOOD_ENTRIES + DOMAIN_ENTRIES)
def test_entries_are_complete_and_small(name):
    folder = zoo.entry_dir(name)
    pictures = {**dict.fromkeys(GAN_ENTRIES, ("samples.png", "interpolation.png", "neighbours.png")),
                **dict.fromkeys(LIKELIHOOD_ENTRIES, ("samples.png", "completions.png", "heatmap.png")),
                **dict.fromkeys(DOMAIN_ENTRIES, ())}[name]
    for file in ("recipe.json", "config.json", "metadata.json", "README.md", zoo.WEIGHTS, *pictures):
        assert (folder / file).is_file(), file
    assert (folder / zoo.WEIGHTS).stat().st_size <= 10 * 2**20
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["weights_sha256"] == zoo.sha256(folder / zoo.WEIGHTS)
    # Class-conditional generation only: the domain-adaptation classifiers are not "conditional".
    config = json.loads((folder / "config.json").read_text())
    assert metadata.get("conditional", False) == (name not in DOMAIN_ENTRIES and bool(config.get("num_classes")))
    card = (folder / "README.md").read_text()
    assert metadata["weights_sha256"] in card
    assert zoo.recipe(name).description in card  # the card is written from the recipe that trained it


def test_the_readme_zoo_table_and_cards_are_the_entries_metadata():
    """The README's table and each card are written from the entries' metadata (`keras-gen zoo
    table --readme README.md`, `zoo evaluate`): rescoring an entry without rewriting them
    leaves stale figures."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start, end = zoo.README_TABLE
    assert readme.split(start)[1].split(end)[0].strip() == zoo.results_table().strip()
    for name in zoo.list():
        metadata = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())
        assert (zoo.entry_dir(name) / "README.md").read_text() == zoo._card(name, zoo.recipe(name), metadata), name


@pytest.mark.parametrize("name", GAN_ENTRIES)
def test_gan_entries_reproduce_their_sample_grid_and_fid(name):
    from PIL import Image

    from keras_gen import metrics
    from keras_gen.images import sample_grid

    model = zoo.load(name)
    card_grid = np.asarray(Image.open(zoo.entry_dir(name) / "samples.png"))
    grid = sample_grid(model, zoo.SAMPLE_GRID_SIZE, 0, label_rows=bool(model.num_classes))
    # Another CPU may pick other oneDNN kernels: allow rounding to the neighbouring grey level.
    assert np.abs(grid[..., 0].astype(int) - card_grid).max() <= 1
    figures = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())["figures"]
    (fid_key,) = [k for k in figures if k.startswith("fid ")]
    samples = to_uint8(keras.ops.convert_to_numpy(model.sample(1000, 0)))
    assert metrics.evaluate_samples(samples)["fid"] == pytest.approx(figures[fid_key], rel=1e-2, abs=0.05)


def test_conditional_entries_draw_one_row_per_class():
    from PIL import Image

    for name in ("cgan-mnist5k", "biggan-mnist5k", "gated-pixelcnn-mnist5k"):
        grid = np.asarray(Image.open(zoo.entry_dir(name) / "samples.png"))
        height, width = grid.shape[:2]
        # 10 classes x 6 samples of 28 px drawn at 2x, beside a margin of row numbers
        assert (height - 2) // 58 == 10 and (width - 2) // 58 == 6 and (width - 2) % 58 > 0, name
        margin = grid[:, :(width - 2) % 58]
        assert (margin < 128).any() and (margin == 255).mean() > 0.5, name  # dark digits on white
        metadata = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())
        assert metadata["grids"]["samples.png"].startswith("10 x 6 samples"), name


# Rows of tiles in each card picture (samples: 10 for a conditional model, one per class).
PICTURE_ROWS = {"samples.png": 8, "interpolation.png": 8, "neighbours.png": 8, "completions.png": 8,
                "heatmap.png": 2}


@pytest.mark.parametrize("name", GAN_ENTRIES + LIKELIHOOD_ENTRIES)
def test_card_pictures_are_drawn_at_a_readable_size(name):
    """Every picture's 28 px digits are drawn at least 56 px a side (`images.readable_scale`),
    and every caption is filled in."""
    from PIL import Image

    metadata = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())
    assert set(metadata["grids"]) <= set(PICTURE_ROWS) and "samples.png" in metadata["grids"]
    conditional = metadata["grids"]["samples.png"].startswith("10 x")
    for picture, caption in metadata["grids"].items():
        rows = 10 if conditional and picture == "samples.png" else PICTURE_ROWS[picture]
        height = Image.open(zoo.entry_dir(name) / picture).size[1]
        assert (height - 2) // rows - 2 >= 56, (name, picture)
        assert "{" not in caption and "}" not in caption, (name, picture)


@pytest.mark.parametrize("name", LIKELIHOOD_ENTRIES)
def test_likelihood_entries_reproduce_their_test_bits_per_dim(name):
    from keras_gen.models.autoregressive import AutoregressiveModel

    # "auto" for an entry trained in bfloat16: its own precision where the CPU has native
    # bfloat16, float32 elsewhere, where emulated bfloat16 would take minutes. The float32
    # figures of the three bfloat16 entries are within 1.2e-3 of their cards' (Xeon, AMX,
    # 2026-11-27: gated 1.15257 against 1.1528, large 1.11840 against 1.1186, PixelCNN++
    # 1.18237 against 1.1835).
    model = zoo.load(name, precision="auto" if zoo.recipe(name).precision == "mixed_bfloat16" else None)
    assert isinstance(model, AutoregressiveModel)
    if name == "pixelcnn-mnist5k":
        assert isinstance(model, PixelCNN)
    metadata = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())
    x_test, y_test = data.load_arrays("mnist5k", "test")
    labels = np.split(y_test, 10) if model.conditional else [None] * 10
    nll = -np.mean(np.concatenate([keras.ops.convert_to_numpy(model.log_prob(b, *([y] if y is not None else [])))
                                   for b, y in zip(np.split(x_test, 10), labels)]))
    bits = nll / (28 * 28 * np.log(2))
    assert bits == pytest.approx(metadata["figures"]["test bits_per_dim"], abs=2e-3)
    assert bits < 2.0  # far below the 8 bits of a uniform model


@pytest.mark.parametrize("name", DOMAIN_ENTRIES)
def test_domain_entries_reproduce_their_target_accuracy_beside_their_baselines(name):
    """`classify` of the loaded entry on the whole mnistm5k test split gives the card's
    accuracy; the card also gives the source-only floor and the oracle ceiling of its build."""
    model = zoo.load(name)
    figures = json.loads((zoo.entry_dir(name) / "metadata.json").read_text())["figures"]
    x_test, y_test = data.load_arrays("mnistm5k", "test")
    probabilities, labels = model.classify(x_test)
    assert np.asarray(probabilities).shape == (1000, 10)
    assert np.mean(np.asarray(labels) == y_test) == pytest.approx(figures["test accuracy"], abs=1e-4)
    floor, ceiling = (next(v for k, v in figures.items() if k.startswith(f"test accuracy of {b} (")) for b in zoo.BASELINES)
    assert 0.1 < floor < ceiling <= 1.0  # above chance, below the oracle


def corrupt_copy(tmp_path, name):
    shutil.copytree(zoo.entry_dir(name), tmp_path / name)
    return tmp_path / name


def test_weights_that_do_not_match_their_sha256_are_refused(tmp_path):
    folder = corrupt_copy(tmp_path, "dcgan-mnist5k")
    weights = bytearray((folder / zoo.WEIGHTS).read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    (folder / zoo.WEIGHTS).write_bytes(bytes(weights))
    with pytest.raises(KerasGenError, match="sha256"):
        zoo.load("dcgan-mnist5k", zoo_dir=tmp_path)


def test_missing_pieces_are_clear_errors(tmp_path):
    folder = corrupt_copy(tmp_path, "pixelcnn-mnist5k")
    (folder / zoo.WEIGHTS).unlink()
    with pytest.raises(KerasGenError, match="no weights"):
        zoo.load("pixelcnn-mnist5k", zoo_dir=tmp_path)
    (folder / "metadata.json").write_text("{not json")
    with pytest.raises(KerasGenError, match="not valid JSON"):
        zoo.load("pixelcnn-mnist5k", zoo_dir=tmp_path)
    shutil.copy(zoo.entry_dir("pixelcnn-mnist5k") / zoo.WEIGHTS, folder / zoo.WEIGHTS)
    (folder / "metadata.json").write_text("[1, 2]")
    with pytest.raises(KerasGenError, match="must be JSON objects"):
        zoo.load("pixelcnn-mnist5k", zoo_dir=tmp_path)
    with pytest.raises(KerasGenError, match="unknown zoo entry"):
        zoo.load("stylegan-ffhq")


def test_load_from_another_directory_in_a_fresh_process(tmp_path):
    """What a user of the installed package gets: no source tree on the path, no network."""
    result = run_python(
        "import keras_gen.zoo as z; m = z.load('dcgan-mnist5k'); "
        "print(z.root()); print(m.sample(2, 0).shape)",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(2, 28, 28, 1)" in result.stdout


def write_recipe(zoo_dir, name, **overrides):
    recipe = {
        "model": "dcgan",
        "description": "A tiny DCGAN on 8x8 digits, for testing the build.",
        "data": "digits",
        "hparams": {"latent_dim": 8, "generator_widths": [16, 8], "discriminator_widths": [8, 16]},
        "epochs": 1,
        "batch_size": 128,
        "seed": 0,
        **overrides,
    }
    (zoo_dir / name).mkdir(parents=True)
    (zoo_dir / name / "recipe.json").write_text(json.dumps(recipe))


def test_the_cli_builds_and_reads_a_zoo_of_ones_own(tmp_path):
    """`--zoo-dir` on the zoo commands, and an entry's folder as the source of the others: the
    same entry read by its folder draws what it draws by name; the package's zoo is untouched."""
    from PIL import Image

    mine = tmp_path / "my-zoo"
    shutil.copytree(zoo.entry_dir("dcgan-mnist5k"), mine / "my-gan")
    by_folder = run_cli_here("sample", mine / "my-gan", "--n", "4", "--seed", "3", "--out", tmp_path / "a.png")
    by_name = run_cli_here("sample", "dcgan-mnist5k", "--n", "4", "--seed", "3", "--out", tmp_path / "b.png")
    assert by_folder.returncode == by_name.returncode == 0, by_folder.stderr[-2000:]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    assert run_cli_here("zoo", "list", "--zoo-dir", mine).stdout == "my-gan\n"
    table = run_cli_here("zoo", "table", "--zoo-dir", mine).stdout
    assert "`my-gan`" in table and "dcgan-mnist5k" not in table
    assert_one_line_error(run_cli_here("zoo", "build", "dcgan-mnist5k", "--zoo-dir", mine),
                          "unknown zoo entry 'dcgan-mnist5k'; entries: my-gan")
    assert_one_line_error(run_cli_here("zoo", "list", "--zoo-dir", tmp_path / "none"), "is not a folder", code=2)
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli_here("zoo", "table", "--zoo-dir", tmp_path / "empty"), "holds no zoo entries")
    assert_one_line_error(run_cli_here("zoo", "list", "--zoo-dir", mine / "my-gan"), "is itself an entry")
    # A run killed before its model.keras holds a recipe.json too: still a run folder, not an entry.
    killed = tmp_path / "killed-run"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy(mine / "my-gan" / "recipe.json", killed / "recipe.json")
    assert_one_line_error(run_cli_here("sample", killed, "--out", tmp_path / "c.png"),
                          "is a run that has not finished (no model.keras yet): resume it with keras-gen train --resume")
    assert_one_line_error(run_cli_here("sample", tmp_path, "--out", tmp_path / "c.png"), "nor recipe.json")
    weights = mine / "my-gan" / zoo.WEIGHTS
    tampered = bytearray(weights.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    weights.write_bytes(bytes(tampered))
    assert_one_line_error(run_cli_here("sample", mine / "my-gan", "--out", tmp_path / "c.png"), "sha256")

    write_recipe(mine, "tiny-gan")  # 8x8 digits, 1 epoch
    assert_one_line_error(run_cli_here("sample", mine / "tiny-gan", "--out", tmp_path / "c.png"),
                          f"is not built yet (no weights, no metadata.json in {mine / 'tiny-gan'}); build it with "
                          f"`keras-gen zoo build tiny-gan --zoo-dir {mine}`")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "tiny-gan").symlink_to(mine / "tiny-gan")
    assert_one_line_error(run_cli_here("zoo", "build", "tiny-gan", "--zoo-dir", tmp_path / "linked"),
                          f"is a symbolic link ({tmp_path / 'linked' / 'tiny-gan'} -> {mine / 'tiny-gan'})")
    built = run_cli_here("zoo", "build", "tiny-gan", "--zoo-dir", mine)
    assert built.returncode == 0 and f"rebuilt {mine / 'tiny-gan'}" in built.stdout, built.stderr[-2000:]
    assert "tiny-gan" not in zoo.list()
    # The commands that search training data take the entry's (digits), not mnist5k.
    found = run_cli_here("neighbours", mine / "tiny-gan", "--n", "2", "--k", "2", "--out", tmp_path / "n.png")
    assert found.returncode == 0 and "nearest digits training images" in found.stdout, found.stderr[-2000:]


def test_build_writes_an_entry_that_loads(tmp_path, capsys):
    from PIL import Image

    import subprocess
    import sys

    from keras_gen import files

    write_recipe(tmp_path, "tiny-gan")
    assert zoo.list(tmp_path) == ["tiny-gan"]
    # What a build killed while writing its entry leaves: removed by the next build.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f".tiny-gan.tmp-{files._host()}-{int(ended.stdout)}-x" / "half").mkdir(parents=True)
    folder = zoo.build("tiny-gan", zoo_dir=tmp_path)  # verbose "auto": stdout is no terminal here
    out = capsys.readouterr().out
    assert [line.split(" - ")[0] for line in out.splitlines()] == ["epoch 1/1"] and "\x1b" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-gan"]  # no staging left behind
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["weights_sha256"] == zoo.sha256(folder / zoo.WEIGHTS)
    assert metadata["conditional"] is False  # a DCGAN draws no classes
    assert "train d_loss (last epoch)" in metadata["figures"] and metadata["train_seconds"] > 0
    card = (folder / "README.md").read_text()
    assert "A tiny DCGAN" in card and metadata["weights_sha256"] in card
    assert card == zoo._card("tiny-gan", zoo.recipe("tiny-gan", tmp_path), metadata, tmp_path)  # as evaluate would
    # Its code loads it from this zoo ("tiny-gan" alone is no entry of the package's), and it
    # says what "auto" chose.
    assert f'keras_gen.zoo.load("tiny-gan", zoo_dir="{tmp_path}")' in card
    assert f"`keras-gen zoo build tiny-gan --zoo-dir {tmp_path}`" in card
    assert metadata["precision"] in ("float32", "mixed_bfloat16")
    assert f"seed 0, auto ({metadata['precision']} on that machine) |" in card
    for picture in ("samples.png", "interpolation.png", "neighbours.png"):
        assert (folder / picture).is_file() and f"]({picture})" in card
        height = np.asarray(Image.open(folder / picture)).shape[0]
        assert (height - 2) // 8 - 2 == 8 * 7, picture  # 8 rows of 8 px digits drawn 7x (56 px)
    table = zoo.results_table(tmp_path, links_from=tmp_path)  # links relative to a README beside the entries
    assert "[`tiny-gan`](tiny-gan/README.md) | `dcgan` | 1 epoch, " in table
    assert "[`tiny-gan`](../tiny-gan/README.md)" in zoo.results_table(tmp_path, links_from=tmp_path / "docs")
    assert "[`tiny-gan`](zoo/tiny-gan/README.md)" not in table  # the package zoo's link, not this one's
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- zoo-table -->\nold\n<!-- /zoo-table -->\nafter\n")
    zoo.write_readme_table(readme, tmp_path)
    assert readme.read_text() == f"# x\n<!-- zoo-table -->\n{table}\n<!-- /zoo-table -->\nafter\n"
    picture = (folder / "samples.png").read_bytes()
    with pytest.raises(KerasGenError, match="samples.png is not a UTF-8 text file"):
        zoo.write_readme_table(folder / "samples.png", tmp_path)
    assert (folder / "samples.png").read_bytes() == picture
    model = zoo.load("tiny-gan", zoo_dir=tmp_path)
    assert isinstance(model, DCGAN) and model.latent_dim == 8
    assert keras.ops.convert_to_numpy(model.sample(3, 0)).shape == (3, 8, 8, 1)


def test_a_failed_build_leaves_the_entry_as_it_was(tmp_path):
    write_recipe(tmp_path, "bad-gan", hparams={"generator_widths": [16, 8, 4, 2]})  # 8 is not divisible by 2^4
    before = (tmp_path / "bad-gan" / "recipe.json").read_bytes()
    with pytest.raises(KerasGenError, match="divisible"):
        zoo.build("bad-gan", zoo_dir=tmp_path, verbose=0)
    assert [p.name for p in (tmp_path / "bad-gan").iterdir()] == ["recipe.json"]
    assert (tmp_path / "bad-gan" / "recipe.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-gan"]


def test_an_interrupted_swap_puts_the_old_entry_back(tmp_path, monkeypatch):
    import os

    from keras_gen import zoo as zoo_module

    write_recipe(tmp_path, "tiny-gan")
    zoo.build("tiny-gan", zoo_dir=tmp_path, verbose=0)
    good = zoo.sha256(tmp_path / "tiny-gan" / zoo.WEIGHTS)
    real_replace = os.replace

    def failing_replace(src, dst):
        # Only the new build moving into place fails (os is global: training's own atomic
        # writes, elsewhere, go through).
        if Path(src).parent == tmp_path and ".tmp-" in Path(src).name:
            raise OSError("disk went away")
        return real_replace(src, dst)

    monkeypatch.setattr(zoo_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk went away"):
        zoo.build("tiny-gan", zoo_dir=tmp_path, verbose=0)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-gan"]
    assert zoo.sha256(tmp_path / "tiny-gan" / zoo.WEIGHTS) == good
    zoo.load("tiny-gan", zoo_dir=tmp_path)


def test_a_recipe_without_what_a_build_needs_is_a_clear_error(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "recipe.json").write_text(json.dumps({"model": "dcgan", "data": "digits"}))
    with pytest.raises(KerasGenError, match=r'lacks epochs, batch_size: .* add e.g. "epochs": \d+, "batch_size": \d+ '
                                            r"\(the model's defaults\) to .*half/recipe.json"):
        zoo.build("half", zoo_dir=tmp_path, verbose=0)
    write_recipe(tmp_path, "unknown-key", epoch=3)
    with pytest.raises(KerasGenError, match="unknown key.*epoch"):
        zoo.build("unknown-key", zoo_dir=tmp_path, verbose=0)
    write_recipe(tmp_path, "typo", hparams={"latent_dims": 8})
    with pytest.raises(KerasGenError, match="latent_dims"):
        zoo.build("typo", zoo_dir=tmp_path, verbose=0)


def test_card_figures_of_a_conditional_model_include_its_label_accuracy():
    from keras_gen.models import CGAN
    from keras_gen.recipe import Recipe

    model = CGAN(image_shape=(28, 28, 1), num_classes=10, latent_dim=8, generator_widths=(16, 8),
                 discriminator_widths=(8, 16), embed_dim=4)
    figures, how = zoo._evaluated_figures(model, Recipe(model="cgan", data=("mnist5k",)))
    (key,) = [k for k in figures if k.startswith("label accuracy")]
    assert "0.9880" in key and 0.0 <= figures[key] <= 1.0
    assert any(k.startswith("fid (1,000 samples vs test; real train vs test: ") for k in figures)
    assert how["function"] == "keras_gen.metrics.evaluate(model, 'mnist5k', n=1000, seed=0)"


def test_evaluate_rescores_an_entry_and_keeps_its_weights_and_training_figures(tmp_path, capsys):
    from keras_gen import cli

    write_recipe(tmp_path, "tiny-mnist", data="mnist5k", batch_size=256)
    folder = zoo.build("tiny-mnist", zoo_dir=tmp_path, verbose=0)
    before = json.loads((folder / "metadata.json").read_text())
    assert any(k.startswith("fid (1,000 samples") for k in before["figures"])
    # An entry built before a picture existed: evaluate draws it, the same as a build.
    neighbours = (folder / "neighbours.png").read_bytes()
    (folder / "neighbours.png").unlink()
    (folder / "metadata.json").write_text(json.dumps({**before, "figures": {
        k: v for k, v in before["figures"].items() if not k.startswith("fid")}, "evaluated": None,
        "grids": {k: v for k, v in before["grids"].items() if k != "neighbours.png"}}, sort_keys=True))
    zoo.evaluate("tiny-mnist", zoo_dir=tmp_path)
    after = json.loads((folder / "metadata.json").read_text())
    assert after["figures"] == before["figures"]  # the same weights score the same figures
    assert after["grids"] == before["grids"] and (folder / "neighbours.png").read_bytes() == neighbours
    card = (folder / "README.md").read_text()
    # Pictures in the card's order whatever was redrawn, figures in name order, as at build.
    assert card.index("](samples.png)") < card.index("](interpolation.png)") < card.index("](neighbours.png)")
    rows = [line.split(" | ")[0][2:] for line in card.split("| figure | value |\n| --- | --- |\n")[1].splitlines()
            if line.startswith("| ")]
    assert rows == sorted(after["figures"])
    assert after["weights_sha256"] == before["weights_sha256"] == zoo.sha256(folder / zoo.WEIGHTS)
    assert after["evaluated"]["function"].startswith("keras_gen.metrics.evaluate(model, 'mnist5k'")
    assert "(`keras-gen zoo evaluate`)" in (folder / "README.md").read_text()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["recipe.json", "config.json", "metadata.json", "README.md", zoo.WEIGHTS, "samples.png",
         "interpolation.png", "neighbours.png"])  # no temporary files left
    # 8x8 digits: no feature network reads them and a GAN has no likelihood.
    from keras_gen.models import DCGAN
    from keras_gen.recipe import Recipe

    tiny = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16))
    assert zoo._evaluated_figures(tiny, Recipe(model="dcgan", data=("digits",))) == ({}, None)
    assert cli.main(["zoo", "evaluate", "no-such-entry"]) == 1
    assert "unknown zoo entry" in capsys.readouterr().err


def test_build_from_a_finished_run_of_the_recipe_takes_its_model(tmp_path):
    """`zoo build ENTRY --from-run RUN`: the entry holds the run's weights, without training
    again; a run of another recipe is refused with one line."""
    from keras_gen import training

    zoo_dir = tmp_path / "zoo"
    write_recipe(zoo_dir, "tiny-pixelcnn", model="pixelcnn", hparams={"filters": 4, "num_layers": 1})
    entry_recipe = zoo.recipe("tiny-pixelcnn", zoo_dir)
    trained, _ = training.train(entry_recipe, tmp_path / "run", verbose=0)
    folder = zoo.build("tiny-pixelcnn", zoo_dir=zoo_dir, from_run=tmp_path / "run")
    loaded = zoo.load("tiny-pixelcnn", zoo_dir=zoo_dir)
    for a, b in zip(trained.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    figures = json.loads((folder / "metadata.json").read_text())["figures"]
    assert "test bits_per_dim" in figures
    for picture in ("samples.png", "completions.png", "heatmap.png"):
        assert (folder / picture).is_file()
    write_recipe(zoo_dir, "other", model="pixelcnn", hparams={"filters": 8, "num_layers": 1})
    with pytest.raises(KerasGenError, match=r"another recipe than the entry's \(hparams \{.*\"filters\": 4.*\} in the "
                                              r"run, \{.*\"filters\": 8.*\} in the entry\)"):
        zoo.build("other", zoo_dir=zoo_dir, from_run=tmp_path / "run")
    with pytest.raises(KerasGenError, match="not a finished keras-gen run"):
        zoo.build("other", zoo_dir=zoo_dir, from_run=tmp_path)


def test_a_domain_adaptation_entry_carries_its_target_accuracy_beside_its_floor_and_ceiling(tmp_path):
    """A DANN entry: the build trains source-only and the oracle with the entry's data, seed,
    network and epochs; the card gives the three target test accuracies; the loaded entry's
    `classify` on the target test split gives the card's figure; `zoo evaluate` re-scores it."""
    network = {"filters": [4, 6], "classifier_widths": [8]}
    write_recipe(tmp_path, "tiny-dann", model="dann", description="A tiny DANN, for testing the build.",
                 data=["mnist5k", "mnistm5k"], hparams={**network, "discriminator_widths": [8]}, batch_size=500)
    entry_recipe = zoo.recipe("tiny-dann", tmp_path)
    baselines = zoo.baseline_recipes(entry_recipe, None)
    assert sorted(baselines) == ["source-only", "target-oracle"]
    for baseline in baselines.values():
        assert baseline.hparams == network and baseline.epochs == 1 and baseline.data == ("mnist5k", "mnistm5k")
        assert (baseline.seed, baseline.batch_size, baseline.precision) == (0, 500, entry_recipe.precision)
    folder = zoo.build("tiny-dann", zoo_dir=tmp_path, verbose=0)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["conditional"] is False  # a classifier of 10 classes does not draw by class
    figures = metadata["figures"]
    floor, ceiling = (next(v for k, v in figures.items() if k.startswith(
        f"test accuracy of {name} (same data, seed, network and precision; 1 epoch, ")) for name in zoo.BASELINES)
    assert 0 <= floor <= 1 and 0 <= ceiling <= 1
    model = zoo.load("tiny-dann", zoo_dir=tmp_path)
    x, y = data.load_arrays("mnistm5k", "test")
    accuracy = float(np.mean(np.asarray(model.classify(x)[1]) == y))
    assert figures["test accuracy"] == pytest.approx(accuracy, abs=1e-4)
    card = (folder / "README.md").read_text()
    assert "source `mnist5k` train split with its labels; target `mnistm5k` train split, images only" in card
    assert "test accuracy of source-only" in card and "test accuracy of target-oracle" in card
    table = zoo.results_table(tmp_path)
    assert f"test accuracy {figures['test accuracy']}" in table and f"test accuracy of source-only {floor}" in table
    zoo.evaluate("tiny-dann", zoo_dir=tmp_path)
    after = json.loads((folder / "metadata.json").read_text())
    assert after["figures"] == figures  # the baselines are kept, the model re-scored to the same figure
    assert after["evaluated"]["function"] == "DANN.classify on the mnistm5k test split (1,000 images)"
    # ADDA's baselines train as many epochs as its stage 1; its card names each stage's epochs,
    # and which stage a figure of only one stage is from.
    adda = type(entry_recipe)(model="adda", data=("mnist5k", "digits"), hparams={"source_epochs": 3}, epochs=2)
    trained = ADDA(source_epochs=3)
    assert zoo.baseline_recipes(adda, trained)["source-only"].epochs == 3
    assert zoo._training_epochs(adda, {"stages": [{"stage": 1, "epochs": 3}, {"stage": 2, "epochs": 2}]}) == \
        "stage 1: 3 epochs, stage 2: 2 epochs"
    assert [zoo._when_logged(k, trained) for k in ("accuracy", "d_loss", "loss", "val_accuracy")] == [
        "last epoch of stage 1", "last epoch of stage 2", "last epoch", "last epoch"]
    assert zoo._when_logged("accuracy", model) == "last epoch" and "train accuracy (last epoch)" in figures
    assert zoo.baseline_recipes(zoo.recipe("dcgan-mnist5k"), None) == {}


def test_an_entry_loads_in_another_precision_on_request():
    """`precision=` rebuilds an entry in another policy with the same float32 weights: its
    log-likelihoods agree up to bfloat16 rounding; None keeps the entry's own."""
    x_test, _ = data.load_arrays("mnist5k", "test")
    own = zoo.load("pixelcnn-mnist5k")
    other = zoo.load("pixelcnn-mnist5k", precision="mixed_bfloat16")
    assert own.precision == "float32" and other.precision == "mixed_bfloat16"
    for a, b in zip(own.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    a, b = (keras.ops.convert_to_numpy(m.log_prob(x_test[:50])) for m in (own, other))
    np.testing.assert_allclose(b, a, rtol=0.02)
    with pytest.raises(KerasGenError, match="precision must be None"):
        zoo.load("pixelcnn-mnist5k", precision="float16")


def test_the_readme_table_changes_nothing_but_its_block(tmp_path):
    """Before: a CRLF README came back LF, a symlinked README became a regular file (its
    target kept the old table), mode 664 became 644, and markers in the wrong order gave a
    ValueError traceback (after `zoo evaluate --readme` had re-scored every entry)."""
    import os
    import stat

    table = zoo.results_table()
    target = tmp_path / "docs" / "README.md"
    target.parent.mkdir()
    target.write_bytes(b"# x\r\n<!-- zoo-table -->\r\nold\r\n<!-- /zoo-table -->\r\nafter\r\n")
    os.chmod(target, 0o664)
    link = tmp_path / "README.md"
    link.symlink_to(target)
    zoo.write_readme_table(link)
    assert link.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o664
    crlf = table.replace("\n", "\r\n")
    assert target.read_bytes() == f"# x\r\n<!-- zoo-table -->\r\n{crlf}\r\n<!-- /zoo-table -->\r\nafter\r\n".encode()
    reversed_markers = tmp_path / "reversed.md"
    reversed_markers.write_text("a\n<!-- /zoo-table -->\nb\n<!-- zoo-table -->\n")
    for args in (["zoo", "table", "--readme", reversed_markers], ["zoo", "evaluate", "--readme", reversed_markers]):
        done = run_cli_here(*args)  # evaluate refuses before scoring anything (it would take minutes)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "marker comes before <!-- zoo-table -->" in done.stderr
    assert reversed_markers.read_text() == "a\n<!-- /zoo-table -->\nb\n<!-- zoo-table -->\n"


def test_an_entrys_config_must_agree_with_its_recipe(tmp_path):
    """Only the weights are hashed: a recipe naming another model loaded the dcgan entry as a
    WGANGP without a word, a config in precision "auto" was taken, and a recipe's
    mixed_bfloat16 beside a float32 config loaded in float32 under a card that said bf16."""
    folder = corrupt_copy(tmp_path, "dcgan-mnist5k")
    recipe_text, config_text = (folder / "recipe.json").read_text(), (folder / "config.json").read_text()
    changes = [("recipe.json", "model", "wgan-gp", "is a 'dcgan' model but recipe.json names 'wgan-gp'"),
               ("config.json", "precision", "auto", "precision must be float32 or mixed_bfloat16"),
               ("recipe.json", "precision", "mixed_bfloat16", "built in float32 but recipe.json says mixed_bfloat16")]
    for file, key, value, message in changes:
        (folder / "recipe.json").write_text(recipe_text)
        (folder / "config.json").write_text(config_text)
        changed = json.loads((folder / file).read_text())
        (folder / file).write_text(json.dumps({**changed, key: value}))
        with pytest.raises(KerasGenError, match=message):
            zoo.load("dcgan-mnist5k", zoo_dir=tmp_path)
    (folder / "recipe.json").write_text(recipe_text)
    (folder / "config.json").write_text(config_text)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({k: v for k, v in metadata.items() if k != "weights_sha256"}))
    with pytest.raises(KerasGenError, match="records no valid weights_sha256 \\(got 'None'\\)"):
        zoo.load("dcgan-mnist5k", zoo_dir=tmp_path)  # it said "does not match the recorded None"


def test_weights_of_another_architecture_say_why_they_do_not_fit(tmp_path):
    """Keras' first line ends in "Example error message for object ...:"; the cause after it
    was cut off."""
    folder = corrupt_copy(tmp_path, "dcgan-mnist5k")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "latent_dim": config["latent_dim"] + 1}))
    with pytest.raises(KerasGenError, match="weights do not fit its config") as refused:
        zoo.load("dcgan-mnist5k", zoo_dir=tmp_path)
    message = str(refused.value)
    assert "\n" not in message and not message.rstrip(")").endswith(":")
    assert len(message.split("Example error message", 1)[-1]) > 40, message


def test_unknown_names_suggest_the_entries_they_resemble():
    for asked, suggested in (("dcgan", "dcgan-mnist5k"), ("DCGAN-mnist5k", "dcgan-mnist5k"),
                             ("pixelcnn-large", "pixelcnn-large-mnist5k")):
        with pytest.raises(KerasGenError, match=f"did you mean {suggested}"):
            zoo.load(asked)
        done = run_cli_here("sample", asked, "--n", "4")
        assert done.returncode == 1 and f"did you mean {suggested}" in done.stderr
    with pytest.raises(KerasGenError) as refused:
        zoo.load("stylegan-ffhq")
    assert "did you mean" not in str(refused.value)
