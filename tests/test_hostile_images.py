"""Hostile and awkward image files: decompression bombs (huge dimensions in a file of a few hundred bytes) in five
formats, a large image that is allowed, and photos stored sideways with an EXIF orientation.

Every bomb is refused by name -- file, width x height, limit, the argument that raises it -- before a pixel is
decoded, by ``predict``, the datasets and the command line, and Pillow's own DecompressionBombError/Warning never
escape. Tiled prediction of a large image holds one band of rows as float, measured in a subprocess. EXIF
orientations are checked against a NumPy restatement of the EXIF specification's table."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from PIL import Image

import encdec
from encdec.cli import main
from encdec.datasets import CorruptImageError, DogImages, VOCSegmentation, read_mask, read_rgb
from encdec.image_files import MAX_PIXELS, ImageTooLargeError, UnreadableImageError, open_image

try:  # tests/ as a package, or tests/ on sys.path
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fixtures import trees

TINY = (4, 8, 16, 32, 64)


# ---------------------------------------------------------------------------------------------- generated bombs


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit gray PNG whose header claims ``width x height``; its data is a few rows of zeros."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * ((width + 7) // 8 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _saved(mode: str, fmt: str) -> bytearray:
    buffer = io.BytesIO()
    Image.new(mode, (8, 8)).save(buffer, fmt)
    return bytearray(buffer.getvalue())


def jpeg_bomb(width: int, height: int) -> bytes:
    data = _saved("L", "JPEG")
    at = data.index(b"\xff\xc0")  # start of frame: precision, height, width
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_bomb(width: int, height: int) -> bytes:
    data = _saved("P", "GIF")
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    at = data.index(b"\x2c")  # the image descriptor: left, top, width, height
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_bomb(width: int, height: int) -> bytes:
    data = _saved("L", "BMP")
    data[18:26] = struct.pack("<ii", width, height)  # BITMAPINFOHEADER width, height
    return bytes(data)


def tiff_bomb(width: int, height: int) -> bytes:
    data = _saved("L", "TIFF")
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (256, 257):  # ImageWidth, ImageLength as LONG
            data[entry + 2 : entry + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)
    return bytes(data)


BOMBS = {"png": png_bomb, "jpg": jpeg_bomb, "gif": gif_bomb, "bmp": bmp_bomb, "tif": tiff_bomb}
#: Above Pillow's error threshold (2 x MAX_PIXELS: Pillow raises), between it and MAX_PIXELS (Pillow only warns),
#: and a long thin one.
SIZES = [(40000, 40000), (10000, 10000), (60000, 1600)]


def _bomb(tmp_path: Path, fmt: str, size=(40000, 40000)) -> Path:
    path = tmp_path / f"bomb.{fmt}"
    path.write_bytes(BOMBS[fmt](*size))
    assert path.stat().st_size < 2000  # a tiny file claiming gigabytes
    return path


def _named(error: BaseException, path: Path, size) -> None:
    text = str(error)
    assert str(path) in text and f"{size[0]}x{size[1]}" in text, text
    assert f"{MAX_PIXELS:,} pixels" in text and "max_pixels=" in text and "--max-pixels" in text, text


@pytest.mark.parametrize("fmt", sorted(BOMBS))
@pytest.mark.parametrize("size", SIZES)
def test_a_decompression_bomb_is_refused_by_name_before_decoding(tmp_path, fmt, size):
    path = _bomb(tmp_path, fmt, size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLargeError) as info:
            open_image(path)
    assert (info.value.width, info.value.height, info.value.limit) == (*size, MAX_PIXELS)
    _named(info.value, path, size)
    assert not [w for w in caught if issubclass(w.category, PIL.Image.DecompressionBombWarning)]


@pytest.mark.parametrize("frame, named", [((40000, 40000), "1,600,000,000 pixels"),
                                          ((10000, 10000), "10000x10000 (100,000,000 pixels)")])
def test_a_gif_frame_larger_than_its_screen_is_refused(tmp_path, frame, named):
    data = bytearray(gif_bomb(*frame))
    data[6:10] = struct.pack("<HH", 8, 8)  # a small logical screen: the size is only known from the frame
    path = tmp_path / "frame.gif"
    path.write_bytes(bytes(data))
    for max_pixels in (MAX_PIXELS, 1000):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ImageTooLargeError, match=re.escape(f"frame.gif: the image is {named}, above the")):
                open_image(path, max_pixels)


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_predict_and_the_datasets_refuse_a_bomb_by_name(tmp_path, fmt):
    path = _bomb(tmp_path, fmt)
    model = encdec.unet(num_classes=2, widths=TINY)
    for call in (lambda: encdec.predict(model, path), lambda: encdec.predict(model, [str(path)], tile=64),
                 lambda: read_rgb(path)):
        with pytest.raises(ImageTooLargeError) as info:
            call()
        _named(info.value, path, (40000, 40000))
    if fmt in ("png", "gif", "bmp", "tif"):  # mask formats
        with pytest.raises(ImageTooLargeError):
            read_mask(path)


def test_a_pil_image_handed_to_predict_is_checked_before_it_is_decoded(tmp_path):
    path = _bomb(tmp_path, "png", (10000, 10000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
        lazy = Image.open(path)  # Pillow opens it lazily: nothing decoded yet
    with lazy, pytest.raises(ImageTooLargeError, match=r"image 1: the image is 10000x10000"):
        encdec.predict(encdec.unet(num_classes=2, widths=TINY), lazy)


def test_max_pixels_alone_decides(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (30, 20), (200, 10, 10)).save(path)
    model = encdec.unet(num_classes=2, widths=TINY)
    with pytest.raises(ImageTooLargeError, match=r"30x20 \(600 pixels\), above the limit of 599 pixels"):
        encdec.predict(model, path, max_pixels=599)
    assert encdec.predict(model, path, max_pixels=600, size=None).shape == (20, 30)
    # Pillow's own limit lowered far below the image: encdec's limit still decides, without Pillow's error or warning
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(path).size == (30, 20)
        assert encdec.predict(model, path, max_pixels=None, size=None).shape == (20, 30)
        assert read_rgb(path).shape == (3, 20, 30)
    dogs = trees.write_dog_tree(tmp_path / "dogs", {"n1-a": 1}, junk=False)
    for bad in (0, -1, 1.5, "1000", True):
        with pytest.raises(ValueError, match="max_pixels must be a positive number of pixels or None"):
            encdec.predict(model, path, max_pixels=bad)
        with pytest.raises(ValueError, match="max_pixels must be"):
            DogImages(dogs, "all", max_pixels=bad)


def _dogs_with_a_bomb(tmp_path: Path) -> Path:
    root = trees.write_dog_tree(tmp_path / "dogs", {"n1-a": 2, "n2-b": 2}, junk=False)
    bomb = root / "n2-b" / "n2-b_1.jpg"
    bomb.write_bytes(jpeg_bomb(40000, 40000))
    return bomb


def test_a_dataset_refuses_a_bomb_or_skips_it_when_asked(tmp_path):
    bomb = _dogs_with_a_bomb(tmp_path)
    dogs = DogImages(bomb.parent.parent, "all")
    index = [p for p, _ in dogs.samples].index(bomb)
    with pytest.raises(ImageTooLargeError) as info:
        dogs[index]
    _named(info.value, bomb, (40000, 40000))
    skipping = DogImages(bomb.parent.parent, "all", skip_corrupt=True)
    with pytest.warns(RuntimeWarning, match="skipping unreadable file"):
        image, _ = skipping[index]
    assert image.shape == (3, 16, 20) and skipping.skipped == [str(bomb)]
    assert DogImages(bomb.parent.parent, "all", max_pixels=None).max_pixels is None
    voc = trees.write_voc_tree(tmp_path / "voc")
    (voc / "SegmentationClass" / "2007_000032.png").write_bytes(png_bomb(30000, 30000))
    with pytest.raises(ImageTooLargeError, match=r"2007_000032.png: the image is 30000x30000"):
        VOCSegmentation(voc, "train")[0]


def _weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return encdec.save_pretrained(encdec.unet(num_classes=2, widths=TINY), tmp_path / "run")


def test_the_command_line_names_a_bomb_and_exits_1_without_a_traceback(tmp_path, capsys):
    weights = _weights(tmp_path)
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30)).save(good)
    for fmt in sorted(BOMBS):
        bomb = _bomb(tmp_path, fmt)
        code = main(["predict", "--weights", str(weights), str(bomb), str(good), "--out", str(tmp_path / "out"),
                     "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert f"{bomb}: the image is 40000x40000" in err and "--max-pixels" in err and "Traceback" not in err
        assert "max_pixels=" not in err  # the command line names its own option
        assert (tmp_path / "out" / "good_mask.png").is_file()  # the other images are still written
    # --max-pixels sets the limit (0: none)
    code = main(["predict", "--weights", str(weights), str(good), "--out", str(tmp_path / "o2"), "--device", "cpu",
                 "--max-pixels", "1000"])
    assert code == 1 and "40x30 (1,200 pixels), above the limit of 1,000 pixels" in capsys.readouterr().err
    code = main(["predict", "--weights", str(weights), str(good), "--out", str(tmp_path / "o3"), "--device", "cpu",
                 "--max-pixels", "0"])
    assert code == 0, capsys.readouterr().err


def test_encdec_train_and_eval_name_a_bomb_in_their_data(tmp_path, capsys):
    bomb = _dogs_with_a_bomb(tmp_path)
    data = f"dogs:{bomb.parent.parent}"
    code = main(["train", "--model", "custom_cnn", "--data", data, "--size", "32", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"{bomb}: the image is 40000x40000" in err and "--max-pixels" in err and "Traceback" not in err
    weights = encdec.save_pretrained(encdec.custom_cnn(num_classes=2), tmp_path / "cnn")
    code = main(["eval", "--weights", str(weights), "--data", data, "--split", "all", "--device", "cpu",
                 "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"{bomb}: the image is 40000x40000" in err and "raise it with --max-pixels" in err
    assert "max_pixels=" not in err and "Traceback" not in err
    code = main(["eval", "--weights", str(weights), "--data", data, "--split", "all", "--device", "cpu",
                 "--workers", "0", "--max-pixels", "100"])  # now every image is above the limit
    assert code == 1 and "20x16 (320 pixels), above the limit of 100 pixels" in capsys.readouterr().err


def test_a_dataloader_worker_passes_the_error_on_by_name(tmp_path):
    bomb = _dogs_with_a_bomb(tmp_path)
    dogs = DogImages(bomb.parent.parent, "all")
    loader = torch.utils.data.DataLoader(dogs, batch_size=1, num_workers=1)
    with pytest.raises(ImageTooLargeError) as info:
        list(loader)
    assert str(info.value).startswith(f"{bomb}: the image is 40000x40000") and "Traceback" not in str(info.value)


# ---------------------------------------------------------------------------------------------- damaged files


def damaged_images(count: int, seed: int = 0):
    """``count`` damaged variants of small images in seven formats and modes: truncated, bit-flipped, zeroed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    originals = []
    for fmt, mode in [("PNG", "RGB"), ("PNG", "P"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"),
                      ("WEBP", "RGB")]:
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, fmt)
        originals.append(buffer.getvalue())
    for i in range(count):
        data = bytearray(originals[i % len(originals)])
        kind = i // len(originals) % 3
        if kind == 0:
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 9))):
                data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        else:
            at = int(rng.integers(len(data)))
            data[at : at + 16] = bytes(len(data[at : at + 16]))
        yield bytes(data)


def test_damaged_images_are_read_or_refused_by_name(tmp_path):
    outcomes = {"read": 0, "refused": 0}
    for i, data in enumerate(damaged_images(420)):
        path = tmp_path / f"damaged{i}.img"
        path.write_bytes(data)
        try:
            image = open_image(path)
        except UnreadableImageError as error:  # whatever Pillow raised, named
            assert str(error).startswith(f"{path}: cannot decode the image (") and error.reason, error
            with pytest.raises(CorruptImageError, match=f"cannot decode image file {path}: "):
                read_rgb(path)
            outcomes["refused"] += 1
            continue
        assert read_rgb(path).shape == (3, image.size[1], image.size[0])
        outcomes["read"] += 1
    assert min(outcomes.values()) >= 50, outcomes  # both outcomes are exercised
    (tmp_path / "broken.png").write_bytes(next(damaged_images(1)))
    with pytest.raises(UnreadableImageError, match="broken.png: cannot decode the image"):
        encdec.predict(encdec.unet(num_classes=2, widths=TINY), tmp_path / "broken.png")


# ---------------------------------------------------------------------------------------------- memory, measured

_MEMORY = r"""
import json, sys
import numpy as np, torch
import encdec
from PIL import Image
torch.set_num_threads(1)

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

def growth(call):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident size (VmHWM) to the current one
    before = status("VmRSS:")
    try:
        result = call()
    except Exception as error:
        result = error
    return status("VmHWM:") - before, result

model = torch.nn.Conv2d(3, 4, 1)  # the plumbing of predict is under test, not a model
warm, large, bomb = sys.argv[1:4]
encdec.predict(model, warm, tile=128, size=None, precision="fp32")
bomb_growth, error = growth(lambda: encdec.predict(model, bomb, tile=128, size=None, precision="fp32"))
tiled_growth, labels = growth(lambda: encdec.predict(model, large, tile=128, size=None, precision="fp32"))
print(json.dumps({"bomb": bomb_growth, "error": type(error).__name__, "tiled": tiled_growth,
                  "labels": list(labels.shape), "label_bytes": labels.numel() * labels.element_size()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures the peak resident size on Linux")
def test_tiled_prediction_holds_a_band_of_rows_not_the_image_as_float(tmp_path):
    height, width = 12000, 500
    pattern = (np.arange(height * width) % 7).astype(np.uint8).reshape(height, width)
    Image.fromarray(pattern, "L").convert("P").save(tmp_path / "large.png")  # 6 million pixels, palette
    Image.new("P", (40, 300)).save(tmp_path / "warm.png")
    bomb = _bomb(tmp_path, "png")
    done = subprocess.run([sys.executable, "-c", _MEMORY, str(tmp_path / "warm.png"), str(tmp_path / "large.png"),
                           str(bomb)], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] == "ImageTooLargeError" and result["bomb"] < 20e6  # 1.6 billion pixels claimed
    assert result["labels"] == [height, width]
    whole_as_float = 3 * height * width * 4  # 72 MB: what converting the image first used to hold
    decoded = height * width  # the palette image, one byte a pixel
    beyond = result["tiled"] - result["label_bytes"] - decoded  # besides the returned labels and the decoded file
    assert beyond < whole_as_float / 2, result


def test_bands_cut_from_a_palette_image_equal_the_rgb_array(monkeypatch):
    import encdec._image_inputs

    monkeypatch.setattr(encdec._image_inputs, "_CROP_PIXELS", 100)  # every band cut in several pieces
    stored = np.random.default_rng(0).integers(0, 256, (50, 70), dtype=np.uint8)
    image = Image.fromarray(stored, "L").convert("P")
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 4, 3, padding=1)
    rgb = np.asarray(image.convert("RGB"))
    for tile in (16, None):
        assert torch.equal(encdec.predict(model, image, tile=tile, tta=tile is None, size=None),
                           encdec.predict(model, rgb, tile=tile, tta=tile is None, size=None))


# ---------------------------------------------------------------------------------------------- EXIF orientation

#: The EXIF specification's orientations: how a viewer turns the stored pixels to show them (NumPy, rows first).
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise to view
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, 1),  # turned 90 degrees anticlockwise to view
}


def _with_orientation(array: np.ndarray, orientation: int, path: Path, **save) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(array)).save(path, exif=exif, **save)


def _stored(path: Path) -> np.ndarray:
    """The pixels as stored, orientation ignored."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB") if image.mode not in ("RGB", "L", "P") else image)


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_every_exif_orientation_is_applied_as_the_specification_says(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    _with_orientation(stored, orientation, path)
    upright = UPRIGHT[orientation](stored)
    assert np.array_equal(np.asarray(open_image(path)), upright)
    assert np.array_equal(read_rgb(path).permute(1, 2, 0).numpy(), upright)
    mask = np.random.default_rng(orientation).integers(0, 5, (20, 30), dtype=np.uint8)
    _with_orientation(mask, orientation, tmp_path / "mask.png")
    assert np.array_equal(read_mask(tmp_path / "mask.png"), UPRIGHT[orientation](mask))


def test_an_exif_block_pillow_cannot_parse_leaves_the_pixels_as_stored(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "odd-exif.png"
    Image.fromarray(pixels).save(path, exif=b"Exif\x00\x00" + b"garbage" * 3)
    with Image.open(path) as image, pytest.raises(SyntaxError):
        image.getexif()  # Pillow's own reader refuses the block (ImageOps.exif_transpose would raise)
    assert np.array_equal(np.asarray(open_image(path)), pixels)
    assert np.array_equal(read_rgb(path).permute(1, 2, 0).numpy(), pixels)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_predict_sees_an_exif_rotated_photo_upright(tmp_path, suffix):
    upright = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    path = tmp_path / f"sideways{suffix}"
    _with_orientation(np.rot90(upright, 1), 6, path, **({"quality": 95} if suffix == ".jpg" else {}))
    expected_pixels = UPRIGHT[6](_stored(path))  # JPEG is lossy: the stored pixels, turned by the table
    if suffix == ".png":
        assert np.array_equal(expected_pixels, upright)
    torch.manual_seed(0)
    model = encdec.unet(num_classes=3, widths=TINY)
    options = {"size": None, "precision": "fp32", "device": "cpu", "optimize": False}
    labels = encdec.predict(model, path, **options)
    assert labels.shape == (24, 40)
    assert torch.equal(labels, encdec.predict(model, np.ascontiguousarray(expected_pixels), **options))
    assert torch.equal(encdec.predict(model, path, tile=16, **options),
                       encdec.predict(model, np.ascontiguousarray(expected_pixels), tile=16, **options))


def test_datasets_and_the_command_line_read_exif_rotated_images_upright(tmp_path, capsys):
    voc = trees.write_voc_tree(tmp_path / "voc", size=(20, 28))
    image_path = voc / "JPEGImages" / "2007_000032.jpg"
    mask_path = voc / "SegmentationClass" / "2007_000032.png"
    plain_image, plain_mask = VOCSegmentation(voc, "train")[0]
    # the same photo and mask stored sideways with orientation 6, as a phone writes them
    _with_orientation(np.rot90(plain_image.permute(1, 2, 0).numpy(), 1), 6, image_path, quality=95)
    with Image.open(mask_path) as mask:
        palette = mask.getpalette()
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(plain_mask.numpy().astype(np.uint8), 1)), "P")
    sideways.putpalette(palette)
    sideways.save(mask_path, exif=exif)
    image, mask = VOCSegmentation(voc, "train")[0]
    assert torch.equal(image, torch.from_numpy(UPRIGHT[6](_stored(image_path)).copy()).permute(2, 0, 1))
    assert torch.equal(mask, plain_mask)  # the mask turned with its photo (lossless: exactly the upright mask)
    dogs = trees.write_dog_tree(tmp_path / "dogs", {"n1-a": 1}, junk=False)
    dog = next((dogs / "n1-a").iterdir())
    plain = DogImages(dogs, "all")[0][0]
    _with_orientation(np.rot90(plain.permute(1, 2, 0).numpy(), -1), 8, dog.with_suffix(".png"))
    dog.unlink()
    assert torch.equal(DogImages(dogs, "all")[0][0], plain)
    weights = _weights(tmp_path)
    code = main(["predict", "--weights", str(weights), str(image_path), "--out", str(tmp_path / "out"),
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    with Image.open(tmp_path / "out" / "2007_000032_mask.png") as written:
        assert written.size == (28, 20)  # width x height of the upright photo
