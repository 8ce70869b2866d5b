"""Picture grids: readable sizes (nearest-neighbour scale), row labels, PNG or JPEG by name."""
import numpy as np
import pytest

from keras_gen.errors import KerasGenError
from keras_gen.images import make_grid, readable_scale, sample_grid, save_image

PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


def digits(n, h=28, w=28, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


class FakeModel:
    """What sample_grid asks of a model: its image shape, classes and seeded samples."""

    def __init__(self, image_shape=(28, 28, 1), num_classes=None):
        self.image_shape, self.num_classes = image_shape, num_classes

    def sample(self, n, seed, labels=None):
        return digits(n, *self.image_shape, seed=seed).astype(np.float32) / 255.0


def test_readable_scale_draws_a_digit_at_56_px_or_more():
    assert readable_scale((28, 28, 1)) == 2 and readable_scale((8, 8, 1)) == 7
    assert readable_scale((64, 64, 3)) == 1 and readable_scale((28, 56, 1)) == 2


def test_scale_enlarges_each_image_with_nearest_neighbour_pixels():
    images = digits(6)
    plain = make_grid(images, columns=3)
    assert plain.shape == (2 * 30 + 2, 3 * 30 + 2, 1)  # scale 1: as before
    big = make_grid(images, columns=3, scale=2)
    assert big.shape == (2 * 58 + 2, 3 * 58 + 2, 1)  # 56-px tiles, padding stays 2 px
    tile = big[2 + 58:2 + 58 + 56, 2 + 58:2 + 58 + 56]  # row 1, column 1: image 4
    np.testing.assert_array_equal(tile, images[4].repeat(2, axis=0).repeat(2, axis=1))
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(KerasGenError, match="scale must be"):
            make_grid(images, scale=bad)


def test_row_labels_are_written_in_a_margin_left_of_each_row():
    images = digits(6)
    grid = make_grid(images, columns=3, scale=2, row_labels=["3", "7"])
    plain = make_grid(images, columns=3, scale=2)
    margin = grid.shape[1] - plain.shape[1]
    assert grid.shape[0] == plain.shape[0] and margin > 0
    np.testing.assert_array_equal(grid[:, margin:], plain)  # the images are untouched
    for r in range(2):  # ink in each row's band of the margin, none in the padding between
        band = grid[2 + r * 58:2 + r * 58 + 56, :margin]
        assert band.min() < 128
    rgb = make_grid(digits(2, c=3), columns=1, row_labels=[0, 1])
    assert rgb.shape[-1] == 3
    with pytest.raises(KerasGenError, match="2 labels for a grid of 3 rows"):
        make_grid(digits(9), columns=3, row_labels=["a", "b"])


def test_sample_grids_are_drawn_readable_by_default():
    grid = sample_grid(FakeModel(), 64, 0)
    assert grid.shape == (8 * 58 + 2, 8 * 58 + 2, 1)
    assert sample_grid(FakeModel(), 64, 0, scale=1).shape == (8 * 30 + 2, 8 * 30 + 2, 1)  # the old size
    assert sample_grid(FakeModel((8, 8, 1)), 4, 0).shape == (2 * 58 + 2, 2 * 58 + 2, 1)
    conditional = FakeModel(num_classes=10)
    plain = sample_grid(conditional, 60, 0)
    assert plain.shape == (10 * 58 + 2, 6 * 58 + 2, 1)  # one row per class
    labelled = sample_grid(conditional, 60, 0, label_rows=True)
    assert labelled.shape[0] == plain.shape[0] and labelled.shape[1] > plain.shape[1]
    assert sample_grid(FakeModel(), 4, 0, label_rows=True).shape == sample_grid(FakeModel(), 4, 0).shape


def test_save_image_writes_png_or_jpeg_by_name(tmp_path):
    from PIL import Image

    grid = make_grid(digits(4), scale=2)
    save_image(tmp_path / "grid.png", grid)
    assert (tmp_path / "grid.png").read_bytes().startswith(PNG_MAGIC)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")), grid[..., 0])  # lossless
    for name in ("grid.jpg", "GRID.JPEG"):
        save_image(tmp_path / name, grid)
        assert (tmp_path / name).read_bytes().startswith(JPEG_MAGIC)
        back = np.asarray(Image.open(tmp_path / name)).astype(int)
        assert back.shape == grid.shape[:2] and np.abs(back - grid[..., 0]).mean() < 8  # lossy, close
    save_image(tmp_path / "rgb.jpg", make_grid(digits(4, c=3)))
    assert Image.open(tmp_path / "rgb.jpg").mode == "RGB"
    save_image(tmp_path / "grid.png", grid[::2])  # a picture may be written over a picture
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("name", ["grid.gif", "grid", "model.keras", "grid.png.bak"])
def test_save_image_refuses_other_names(tmp_path, name):
    with pytest.raises(KerasGenError, match="PNG or JPEG; give a name ending in .png, .jpg or .jpeg"):
        save_image(tmp_path / name, make_grid(digits(1)))
    assert not (tmp_path / name).exists()


def test_save_image_never_writes_over_what_is_not_a_picture(tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("my notes, not a picture")
    with pytest.raises(KerasGenError, match="not a PNG or JPEG picture; refusing to overwrite it"):
        save_image(notes, make_grid(digits(1)))
    assert notes.read_text() == "my notes, not a picture"
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(KerasGenError, match="is a folder"):
        save_image(tmp_path / "folder.png", make_grid(digits(1)))
    with pytest.raises(KerasGenError, match="uint8"):
        save_image(tmp_path / "float.png", np.zeros((4, 4, 1), np.float32))
