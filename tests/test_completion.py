"""Completion of occluded images and per-pixel NLL heatmaps: API, CLI and zoo-card pictures."""
import types

import numpy as np
import pytest
from conftest import digits8, run_cli_here, run_python, tiny_dcgan

from keras_gen import analysis
from keras_gen.errors import KerasGenError


def tiny_pixelcnn8():
    """An untrained PixelCNN on 8x8x1 images: near-uniform draws, so seeds differ."""
    from keras_gen.models import PixelCNN

    return PixelCNN(image_shape=(8, 8, 1), filters=8, num_layers=1)


@pytest.fixture(scope="module")
def pixelcnn():
    return tiny_pixelcnn8()


def first_unknown(known):
    """Raster index (row, column) of the first unknown pixel."""
    flat = np.flatnonzero(~known.all(axis=-1).reshape(-1))
    return divmod(int(flat[0]), known.shape[1])


# -- masks -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 8, 1), (7, 6, 3)])
def test_occlusion_masks_say_which_pixels_are_known(shape):
    h, w, c = shape
    rows, columns = np.indices((h, w))
    bottom = analysis.occlusion_mask("bottom-half", shape)
    right = analysis.occlusion_mask("right-half", shape)
    centre = analysis.occlusion_mask("centre", shape)
    for mask in (bottom, right, centre):
        assert mask.shape == shape and mask.dtype == bool
        assert (mask == mask[..., :1]).all()  # a pixel's channels are known together
        assert mask[0, 0].all()  # something known comes before the unknown pixels in raster order
    np.testing.assert_array_equal(bottom[..., 0], rows < h // 2)
    np.testing.assert_array_equal(right[..., 0], columns < w // 2)
    side = min(h, w) // 2
    assert (~centre[..., 0]).sum() == side * side
    unknown_rows, unknown_columns = np.nonzero(~centre[..., 0])
    # Centred: as many known rows (columns) above (left of) the square as below (right), +-1.
    assert abs(unknown_rows.min() - (h - 1 - unknown_rows.max())) <= 1
    assert abs(unknown_columns.min() - (w - 1 - unknown_columns.max())) <= 1
    assert first_unknown(centre) == (unknown_rows.min(), unknown_columns.min())


def test_occlusions_that_leave_nothing_known_first_are_refused():
    for kind in ("top-half", "left-half", "Bottom-Half"):
        with pytest.raises(KerasGenError, match="can complete: bottom-half, right-half, centre"):
            analysis.occlusion_mask(kind, (8, 8, 1))
    for shape in [(8, 8), (1, 8, 1), "8x8"]:
        with pytest.raises(KerasGenError, match="image_shape must be"):
            analysis.occlusion_mask("bottom-half", shape)


# -- completion grids --------------------------------------------------------------------
def test_completion_grid_keeps_known_pixels_and_draws_the_others_per_seed(pixelcnn):
    images = digits8(3)
    known = analysis.occlusion_mask("centre", pixelcnn.image_shape)  # known pixels after unknown ones too
    grid = analysis.completion_grid(pixelcnn, images, known, samples=2, seed=4)
    assert grid.shape == (3 * 4, 8, 8, 1) and grid.dtype == np.uint8
    rows = grid.reshape(3, 4, 8, 8, 1)
    np.testing.assert_array_equal(rows[:, 0], images)
    occluded = rows[:, 1]
    np.testing.assert_array_equal(occluded[:, known], images[:, known])
    assert set(np.unique(occluded[:, ~known])) == set(analysis.UNKNOWN_CHECKER)  # a visible checkerboard
    for k in (2, 3):
        np.testing.assert_array_equal(rows[:, k][:, known], images[:, known])
    assert (rows[:, 2][:, ~known] != rows[:, 3][:, ~known]).any()  # two seeds, two completions
    # Completion k is what the model's own `complete` gives with seed + k.
    np.testing.assert_array_equal(rows[:, 3], np.asarray(pixelcnn.complete(images, known, seed=5)))


class RecordingCompleter:
    """Duck-typed `complete`: fills unknown sub-pixels with the seed; records every call."""

    def __init__(self):
        self.calls = []

    def complete(self, images, mask, seed=0, labels=None):
        self.calls.append((len(images), seed, None if labels is None else np.asarray(labels)))
        return np.where(mask, images, np.uint8(seed % 256))


def test_completion_grid_calls_complete_once_per_seed_with_every_image():
    model = RecordingCompleter()
    images = digits8(5)
    known = analysis.occlusion_mask("bottom-half", (8, 8, 1))
    grid = analysis.completion_grid(model, images, known, samples=3, seed=10, labels=[1, 2, 3, 4, 5])
    assert [(n, seed) for n, seed, _ in model.calls] == [(5, 10), (5, 11), (5, 12)]
    for _, _, labels in model.calls:
        np.testing.assert_array_equal(labels, [1, 2, 3, 4, 5])
    rows = grid.reshape(5, 5, 8, 8, 1)
    assert (rows[:, 4, 4:] == 12).all() and (rows[:, 2, 4:] == 10).all()  # column 2 + k is seed + k
    with pytest.raises(KerasGenError, match="does not broadcast"):
        analysis.completion_grid(model, images, np.ones((4, 4, 1), bool))
    with pytest.raises(KerasGenError, match="mask must be bool"):
        analysis.completion_grid(model, images, known.astype(np.uint8))
    with pytest.raises(KerasGenError, match="samples must be"):
        analysis.completion_grid(model, images, known, samples=0)
    with pytest.raises(KerasGenError, match="seed \\+ samples - 1 must be at most 2147483647"):
        analysis.completion_grid(model, images, known, samples=2, seed=2**31 - 1)


# -- heatmaps ----------------------------------------------------------------------------
def test_nll_heatmap_sums_to_the_images_negative_log_likelihood(pixelcnn, monkeypatch):
    images = digits8(5)
    nll = analysis.nll_heatmap(pixelcnn, images)
    assert nll.shape == (5, 8, 8) and nll.dtype == np.float32 and (nll > 0).all()
    log_prob = np.asarray(pixelcnn.log_prob(images))
    np.testing.assert_allclose(nll.sum(axis=(1, 2)), -log_prob, rtol=1e-6, atol=1e-4)
    monkeypatch.setattr(analysis, "HEATMAP_BATCH", 2)  # in chunks: the same values, in order
    np.testing.assert_allclose(analysis.nll_heatmap(pixelcnn, images), nll, rtol=1e-6)


class LabelledLogProb:
    """Duck-typed `pixel_log_prob` of a conditional model: every sub-pixel has log p = -label."""

    def pixel_log_prob(self, images, labels=None):
        labels = np.broadcast_to(np.asarray(labels, np.float32), (len(images),))
        return np.broadcast_to(-labels[:, None, None, None], images.shape).astype(np.float32)


def test_nll_heatmap_gives_each_chunk_its_own_labels(monkeypatch):
    monkeypatch.setattr(analysis, "HEATMAP_BATCH", 2)
    images = np.zeros((5, 2, 3, 2), np.uint8)  # two channels: a pixel's NLL sums both
    nll = analysis.nll_heatmap(LabelledLogProb(), images, labels=[1, 2, 3, 4, 5])
    np.testing.assert_array_equal(nll[:, 0, 0], [2, 4, 6, 8, 10])
    np.testing.assert_array_equal(analysis.nll_heatmap(LabelledLogProb(), images, labels=3), np.full((5, 2, 3), 6))
    with pytest.raises(KerasGenError, match="labels must be one class or 5"):
        analysis.nll_heatmap(LabelledLogProb(), images, labels=[1, 2])
    with pytest.raises(KerasGenError, match="non-empty batch"):
        analysis.nll_heatmap(LabelledLogProb(), images[0])


def test_heatmap_colours_grow_brighter_with_nll():
    nll = np.linspace(-1.0, 7.0, 401)
    colours = analysis.nll_colours(nll, max_nats=6.0).astype(int)
    brightness = colours.sum(axis=-1)
    assert (np.diff(brightness) >= 0).all() and (np.diff(colours, axis=0) >= 0).all()  # every channel too
    inside = (nll > 0) & (nll < 6.0)
    assert (np.diff(brightness[inside]) > 0).all()  # strictly, between black and white
    assert colours[nll <= 0].max() == 0 and colours[nll >= 6.0].min() == 255  # black, white (clipped)
    np.testing.assert_array_equal(analysis.nll_colours(np.array([2.0, 4.0]), 6.0), [[255, 0, 0], [255, 255, 0]])
    with pytest.raises(KerasGenError, match="max_nats must be a positive number"):
        analysis.nll_colours(nll, 0.0)


def test_heatmap_grid_pairs_each_image_with_its_heatmap_on_one_scale():
    images = digits8(3)
    nll = np.random.default_rng(0).uniform(0.0, 5.0, size=(3, 8, 8)).astype(np.float32)
    grid = analysis.heatmap_grid(images, nll, columns=2, scale=1)
    # Two bands of 2 columns (images above heatmaps): 4 rows of 10-px cells, 2 px padding.
    assert grid.shape == (4 * 10 + 2, 2 * 10 + 2, 3) and grid.dtype == np.uint8

    def cell(row, column):
        return grid[2 + 10 * row:10 + 10 * row, 2 + 10 * column:10 + 10 * column]

    np.testing.assert_array_equal(cell(0, 1), np.repeat(images[1], 3, axis=-1))  # grey drawn as RGB
    np.testing.assert_array_equal(cell(2, 0), np.repeat(images[2], 3, axis=-1))
    assert (cell(2, 1) == 255).all() and (cell(3, 1) == 255).all()  # the short last band stays blank
    heat = cell(1, 1).astype(int).sum(axis=-1)
    order = np.argsort(nll[1].reshape(-1), kind="stable")
    assert (np.diff(heat.reshape(-1)[order]) >= 0).all()  # brighter where the NLL is higher
    # The default scale is fixed (8 bits per sub-pixel), not each grid's maximum: a pixel keeps
    # its colour whatever else is in the grid.
    np.testing.assert_array_equal(cell(3, 0), analysis.nll_colours(nll[2], analysis.uniform_pixel_nats(1)))
    louder = nll.copy()
    louder[0] += 100.0
    np.testing.assert_array_equal(analysis.heatmap_grid(images, louder, columns=2, scale=1)[22:], grid[22:])  # band 2
    with pytest.raises(KerasGenError, match="nll must be \\[3, 8, 8\\]"):
        analysis.heatmap_grid(images, nll[:, :4])


def test_a_bernoulli_heads_heatmap_shows_binarised_images_on_a_one_bit_scale():
    """A binary sub-pixel costs at most ln 2 under a uniform guess: on the 256 levels' scale
    (5.55 nats) its whole heatmap stayed dark red, above grey images it never saw."""
    from keras_gen.models import PixelCNN

    model = PixelCNN(image_shape=(8, 8, 1), filters=4, num_layers=1, first_kernel_size=3, head="bernoulli")
    images = digits8(2)
    grid, nll, scale = analysis.model_heatmap(model, images)
    assert scale == f"black 0 nats to white {np.log(2):.2f} nats = 1 bit per sub-pixel or more"
    binarised = np.asarray(model.observed(images))
    assert set(np.unique(binarised)) <= {0, 255}
    np.testing.assert_array_equal(grid, analysis.heatmap_grid(binarised, nll, max_nats=np.log(2)))
    categorical = PixelCNN(image_shape=(8, 8, 1), filters=4, num_layers=1, first_kernel_size=3)
    assert analysis.model_heatmap(categorical, images)[2].endswith("5.55 nats = 8 bits per sub-pixel or more")


# -- the command line --------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["complete", "--help"], ["heatmap", "--help"],
                                  ["complete", "x.keras", "--occlude", "top-half"]])
def test_help_and_argument_errors_do_not_import_tensorflow(argv):
    result = run_python(
        "import sys\nfrom keras_gen import cli\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n",
        *argv,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("exit 0" if "--help" in argv else "exit 2"), result.stdout[-500:]


def run_main(*argv):
    """`keras-gen ARGV` in this process: (exit code, stdout, stderr)."""
    result = run_cli_here(*argv)
    return result.returncode, result.stdout, result.stderr


def assert_one_line_error(result, pattern):
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("keras-gen: error: ") and pattern in lines[0], lines[0]


@pytest.fixture(scope="module")
def saved_pixelcnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model = tiny_pixelcnn8()
    model.compile()
    model.save(path)
    return path


def test_cli_complete_and_heatmap_write_pictures(saved_pixelcnn, tmp_path):
    from PIL import Image

    out = tmp_path / "pictures" / "completions.png"  # a missing folder is made
    code, stdout, err = run_main("complete", saved_pixelcnn, "--data", "digits", "--n", "3",
                                 "--samples", "2", "--occlude", "right-half", "--seed", "7", "--out", out)
    assert code == 0, err
    # 3 rows of original, occluded, 2 completions; 8-px images drawn at 56 px, 2 px padding.
    assert Image.open(out).size == (4 * 58 + 2, 3 * 58 + 2)
    assert "3 digits test images (right-half occluded), each with 2 completions (seeds 7 to 8)" in stdout
    picture = np.asarray(Image.open(out))
    tile = picture[2 + 58:2 + 58 + 56, 2 + 58:2 + 58 + 56]  # row 1's occluded input
    assert set(np.unique(tile[:, 28:])) == set(analysis.UNKNOWN_CHECKER)  # its right half

    heat = tmp_path / "heat.jpg"
    code, stdout, err = run_main("heatmap", saved_pixelcnn, "--data", "digits", "--n", "3", "--out", heat)
    assert code == 0, err
    assert heat.read_bytes().startswith(b"\xff\xd8\xff")  # JPEG, as the name says
    assert Image.open(heat).size == (3 * 58 + 2, 2 * 58 + 2) and Image.open(heat).mode == "RGB"
    bits = float(stdout.split("; ")[1].split(" bits/dim")[0])
    assert 0.0 < bits < 9.0  # untrained: near 8 bits per sub-pixel


def test_cli_samples_and_completes_at_a_temperature(saved_pixelcnn, tmp_path):
    """`--temperature T` draws from p^(1/T): the grid equals the API's at that temperature
    and differs from the model's own distribution (T = 1)."""
    import keras
    from PIL import Image

    from keras_gen import data
    from keras_gen.images import sample_grid

    model = keras.models.load_model(saved_pixelcnn)
    for temperature in ("0.5", "1"):
        out = tmp_path / f"t{temperature}.png"
        code, stdout, err = run_main("sample", saved_pixelcnn, "--n", "4", "--seed", "3",
                                     "--temperature", temperature, "--out", out)
        assert code == 0, err
        assert f"(seed 3, temperature {temperature})" in stdout
        np.testing.assert_array_equal(np.asarray(Image.open(out)).reshape(sample_grid(model, 4, 3).shape),
                                      sample_grid(model, 4, 3, temperature=float(temperature)))
    cool, own = (np.asarray(Image.open(tmp_path / f"t{t}.png")) for t in ("0.5", "1"))
    assert not np.array_equal(cool, own)
    code, _, err = run_main("sample", saved_pixelcnn, "--n", "4", "--seed", "3", "--out", tmp_path / "d.png")
    assert code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), own), err

    out = tmp_path / "completions.png"
    code, stdout, err = run_main("complete", saved_pixelcnn, "--data", "digits", "--n", "2", "--samples",
                                 "1", "--temperature", "0.5", "--out", out)
    assert code == 0 and "temperature 0.5" in stdout, err
    images, _ = data.load_arrays("digits", "test")
    chosen = images[np.linspace(0, len(images) - 1, 2).round().astype(int)]
    mask = analysis.occlusion_mask("bottom-half", model.image_shape)
    completed = model.complete(chosen, mask, seed=0, temperature=0.5)
    tiles = np.asarray(Image.open(out))[2:, 2:].reshape(2, 58, 3, 58)[:, :56, 2, :56]  # 8 px drawn at 56 px
    np.testing.assert_array_equal(tiles[:, ::7, ::7], np.asarray(completed)[..., 0])


def test_cli_refuses_what_it_cannot_draw(saved_pixelcnn, tmp_path):
    gan = tmp_path / "gan.keras"
    tiny_dcgan().save(gan)
    for command, capability in (("complete", "complete"), ("heatmap", "pixel_log_prob")):
        assert_one_line_error(run_main(command, gan, "--data", "digits", "--out", tmp_path / "x.png"),
                              f"DCGAN does not offer {capability}")
    before = saved_pixelcnn.read_bytes()
    for command in ("complete", "heatmap"):
        assert_one_line_error(run_main(command, saved_pixelcnn, "--out", saved_pixelcnn), "ending in .png")
        notes = tmp_path / "notes.png"
        notes.write_text("not a picture")
        assert_one_line_error(run_main(command, saved_pixelcnn, "--data", "digits", "--out", notes),
                              "not a PNG or JPEG picture")
        # No --data and a .keras file that does not say: mnist5k, whose 28x28 images do not fit.
        assert_one_line_error(run_main(command, saved_pixelcnn, "--out", tmp_path / "y.png"),
                              "mnist5k images are (28, 28, 1), the model takes (8, 8, 1)")
    assert saved_pixelcnn.read_bytes() == before and not (tmp_path / "y.png").exists()
    assert_one_line_error(run_main("complete", saved_pixelcnn, "--data", "digits", "--label", "3",
                                   "--out", tmp_path / "z.png"), "unconditional; it takes no --label")
    assert_one_line_error(run_main("heatmap", saved_pixelcnn, "--data", "digits", "--n", "400",
                                   "--out", tmp_path / "z.png"), "the digits test split has only 359 images")
    for command in ("complete", "heatmap"):  # over the samples' cap: the split is named, no "different seeds"
        assert_one_line_error(run_main(command, saved_pixelcnn, "--data", "digits", "--n", "100000",
                                       "--out", tmp_path / "z.png"), "--n 100000: the digits test split has only 359")


def test_cli_completes_a_conditional_model_given_each_images_class(tmp_path, monkeypatch):
    from keras_gen import data
    from keras_gen.models import GatedPixelCNN

    path = tmp_path / "gated.keras"
    model = GatedPixelCNN(image_shape=(8, 8, 1), num_classes=10, filters=4, num_layers=1)
    model.compile()
    model.save(path)
    seen = []
    real = analysis.completion_grid

    def recording(model, images, mask, samples, seed, labels, **options):
        seen.append(np.asarray(labels))
        return real(model, images, mask, samples, seed, labels, **options)

    monkeypatch.setattr(analysis, "completion_grid", recording)
    code, stdout, err = run_main("complete", path, "--data", "digits", "--n", "3", "--samples", "1",
                                 "--out", tmp_path / "own.png")
    assert code == 0, err
    images, labels = data.load_arrays("digits", "test")
    chosen = np.linspace(0, len(images) - 1, 3).round().astype(int)  # spread over the split
    np.testing.assert_array_equal(seen[-1], labels[chosen])
    assert "each given its own class" in stdout
    code, stdout, err = run_main("complete", path, "--data", "digits", "--n", "3", "--samples", "1",
                                 "--label", "4", "--out", tmp_path / "four.png")
    assert code == 0, err
    np.testing.assert_array_equal(seen[-1], [4, 4, 4])
    assert "given class 4" in stdout
    assert_one_line_error(run_main("complete", path, "--data", "digits", "--label", "12",
                                   "--out", tmp_path / "bad.png"), "labels must be in 0..9")


# -- zoo cards ---------------------------------------------------------------------------
def test_zoo_cards_of_likelihood_models_show_completions_and_a_heatmap(pixelcnn, tmp_path):
    from PIL import Image

    from keras_gen import zoo

    recipe = types.SimpleNamespace(data=["digits"], image_size=None)
    grids = zoo._write_grids(pixelcnn, recipe, tmp_path)
    assert "bottom half occluded" in grids["completions.png"] and "seeds 0, 1, 2" in grids["completions.png"]
    assert "8 bits per sub-pixel" in grids["heatmap.png"]
    assert Image.open(tmp_path / "completions.png").size == (5 * 58 + 2, 8 * 58 + 2)
    assert Image.open(tmp_path / "heatmap.png").size == (8 * 58 + 2, 2 * 58 + 2)
