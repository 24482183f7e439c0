"""image_io: every unusual-but-valid image decodes to uint8 RGB; every bad file is one DataError."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from mfjle_lib.data.image_io import _to_rgb_array, load_record_image, read_image
from mfjle_lib.data.records import FaceRecord
from mfjle_lib.errors import DataError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 8, 3), dtype=np.uint8)  # H=12, W=8: rotation is visible in the shape


def _check_rgb(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (*shape, 3)
    assert arr.flags.c_contiguous


def test_rgb_png_roundtrip(tmp_path: Path) -> None:
    Image.fromarray(RGB).save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png")
    _check_rgb(arr, (12, 8))
    np.testing.assert_array_equal(arr, RGB)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.dstack([RGB, np.zeros((12, 8), np.uint8)])
    rgba[0, 0, 3] = 255  # one opaque pixel keeps its colour
    rgba[0, 1, 3] = 128  # half transparent: halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png")
    _check_rgb(arr, (12, 8))
    np.testing.assert_array_equal(arr[0, 0], RGB[0, 0])
    expected = (RGB[0, 1].astype(float) * 128 + 255 * 127) / 255
    assert np.abs(arr[0, 1].astype(float) - expected).max() <= 1.5
    assert (arr[5:] == 255).all()  # fully transparent -> white


def test_palette_and_palette_alpha(tmp_path: Path) -> None:
    pal = Image.fromarray(RGB).convert("P")
    pal.save(tmp_path / "p.png")
    arr = read_image(tmp_path / "p.png")
    _check_rgb(arr, (12, 8))
    np.testing.assert_array_equal(arr, np.asarray(pal.convert("RGB")))
    # Palette with a transparent index: those pixels become white.
    idx = np.asarray(pal)[0, 0]
    pal.save(tmp_path / "pt.png", transparency=int(idx))
    arr_t = read_image(tmp_path / "pt.png")
    assert (arr_t[np.asarray(pal) == idx] == 255).all()
    # PA (palette + alpha) has no file format that stores it as such: convert in memory.
    pa = pal.convert("PA")
    assert pa.mode == "PA"
    _check_rgb(_to_rgb_array(pa), (12, 8))
    # A transparent GIF decodes as P with a transparency index.
    pal.save(tmp_path / "t.gif", transparency=int(idx))
    assert (read_image(tmp_path / "t.gif")[np.asarray(pal) == idx] == 255).all()


def test_16bit_grayscale_is_scaled_by_range(tmp_path: Path) -> None:
    gray16 = (np.arange(12 * 8).reshape(12, 8) * 10 + 30000).astype(np.uint16)  # narrow range, high values
    for name in ("g.png", "g.tiff"):
        Image.fromarray(gray16).save(tmp_path / name)
        assert Image.open(tmp_path / name).mode.startswith("I")
        arr = read_image(tmp_path / name)
        _check_rgb(arr, (12, 8))
        assert arr.min() == 0 and arr.max() == 255  # stretched, not clipped to 255 everywhere
        assert (np.diff(arr[..., 0].ravel().astype(int)) >= 0).all()  # order preserved
        np.testing.assert_array_equal(arr[..., 0], arr[..., 2])


def test_16bit_constant_image(tmp_path: Path) -> None:
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(tmp_path / "c.png")
    assert (read_image(tmp_path / "c.png") == 255).all()


def test_8bit_grayscale_and_tiff(tmp_path: Path) -> None:
    gray = RGB[..., 0]
    for name in ("g.png", "g.tif", "g.tiff"):
        Image.fromarray(gray, "L").save(tmp_path / name)
        arr = read_image(tmp_path / name)
        _check_rgb(arr, (12, 8))
        for c in range(3):
            np.testing.assert_array_equal(arr[..., c], gray)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[...] = (200, 40, 40)  # a flat red survives JPEG and CMYK conversion closely
    Image.fromarray(flat).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    arr = read_image(tmp_path / "c.jpg")
    _check_rgb(arr, (16, 16))
    assert np.abs(arr.astype(int) - flat).max() < 20


def test_exif_rotated_jpeg_is_transposed(tmp_path: Path) -> None:
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    arr = read_image(tmp_path / "r.jpg")
    _check_rgb(arr, (8, 12))  # width and height swapped


def test_one_pixel_image(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    arr = read_image(tmp_path / "one.png")
    _check_rgb(arr, (1, 1))
    assert arr[0, 0].tolist() == [10, 20, 30]


def test_other_modes(tmp_path: Path) -> None:
    Image.fromarray(RGB[..., 0] > 128).save(tmp_path / "bw.png")  # mode '1'
    _check_rgb(read_image(tmp_path / "bw.png"), (12, 8))
    la = Image.fromarray(RGB[..., 0], "L").convert("LA")
    la.save(tmp_path / "la.png")
    _check_rgb(read_image(tmp_path / "la.png"), (12, 8))


def test_zip_member(tmp_path: Path) -> None:
    Image.fromarray(RGB).save(tmp_path / "a.png")
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        zf.write(tmp_path / "a.png", "inner/a.png")
        zf.writestr("inner/bad.jpg", b"not an image at all")
    np.testing.assert_array_equal(read_image(tmp_path / "imgs.zip", "inner/a.png"), RGB)
    with pytest.raises(DataError, match="not found in zip archive"):
        read_image(tmp_path / "imgs.zip", "inner/missing.png")
    with pytest.raises(DataError, match="not an image") as exc:
        read_image(tmp_path / "imgs.zip", "inner/bad.jpg")
    assert "imgs.zip/inner/bad.jpg" in str(exc.value)
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "nope.zip", "inner/a.png")
    (tmp_path / "fake.zip").write_bytes(b"PK but not really")
    with pytest.raises(DataError, match="not a zip archive"):
        read_image(tmp_path / "fake.zip", "a.png")


# --------------------------------------------------------------------------- bad files


def test_random_bytes_with_image_suffix(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(1).bytes(600))
    with pytest.raises(DataError) as exc:
        read_image(path)
    assert exc.value.reason == "not an image"
    assert exc.value.path == str(path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is a text file\n")
    with pytest.raises(DataError) as exc:
        read_image(path)
    assert exc.value.reason == "not an image"
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image(tmp_path: Path, suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        read_image(cut)
    assert exc.value.reason == "truncated image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_path_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        read_image(tmp_path / "missing.jpg")
    assert exc.value.reason == "file not found"
    assert "missing.jpg" in str(exc.value)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        read_image(tmp_path / "empty.png")


# --------------------------------------------------------------------------- records


def test_load_record_image_from_memory_file_and_zip(tmp_path: Path) -> None:
    gray = RGB[..., 0]
    rec = FaceRecord(id="m", labels=np.zeros(6), image=gray)
    arr = load_record_image(rec)
    _check_rgb(arr, (12, 8))
    Image.fromarray(RGB).save(tmp_path / "a.png")
    np.testing.assert_array_equal(
        load_record_image(FaceRecord(id="f", labels=np.zeros(6), image_path=tmp_path / "a.png")), RGB
    )
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.write(tmp_path / "a.png", "a.png")
    zrec = FaceRecord(id="z", labels=np.zeros(6), image_path=tmp_path / "z.zip", zip_member="a.png")
    np.testing.assert_array_equal(load_record_image(zrec), RGB)
    with pytest.raises(DataError, match="no image"):
        load_record_image(FaceRecord(id="x", labels=np.zeros(6)))
    with pytest.raises(DataError, match="dtype"):
        load_record_image(FaceRecord(id="y", labels=np.zeros(6), image=np.zeros((4, 4, 3), np.float32)))
