"""EXIF orientation: every reader gives a sideways-stored phone photo's upright pixels.

Each file stores an upright pattern turned the way a camera would store it for Orientation
1-8 (hand-written numpy turns below), with the tag that says how to turn it back; every
reader must give back the upright pattern.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import utm
from helpers.places import ZONE, save_tiny_checkpoint
from helpers.textures import texture
from PIL import Image, ImageOps

from vpr.data.geotag import GeoTag, format_filename
from vpr.data.images import open_rgb, read_image_header
from vpr.datatools.convert.writer import _re_encode
from vpr.eval.predictions import _load_tile
from vpr.inputs.cache import CachedReader
from vpr.inputs.decode import UInt8Reader, read_uint8
from vpr.inputs.device_decode import EncodedBatch, EncodedReader
from vpr.inputs.orientation import opencv_turn, orient_tensor, torch_turn
from vpr.locate import LocationIndex, locate
from vpr.locate.evidence import image_size
from vpr.rerank.options import build_reranker
from vpr.serve.decoding import UploadDecoder
from vpr.serve.uploads import UploadError

# The upright pattern: 3 x 2 cells of 16 pixels, six colours, so that every one of the
# eight turns (and the swap of width and height) shows. Cells are aligned to JPEG's 16-pixel
# blocks in both orientations, so inside each cell the JPEG keeps the colour.
CELL = 16
COLOURS = np.array([[[230, 20, 20], [20, 200, 20], [20, 20, 230]],
                    [[240, 240, 30], [30, 220, 220], [200, 30, 200]]], np.uint8)
UPRIGHT = np.repeat(np.repeat(COLOURS, CELL, axis=0), CELL, axis=1)  # (32, 48, 3)
HEIGHT, WIDTH = UPRIGHT.shape[:2]


def stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for ``orientation``: the tag's turn undoes this one."""
    turns = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],                         # undone by a left-right mirror
        3: lambda a: a[::-1, ::-1],                      # upside down
        4: lambda a: a[::-1],                            # undone by a top-bottom mirror
        5: lambda a: a.transpose(1, 0, 2),               # mirrored on the main diagonal
        6: lambda a: np.rot90(a, 1),                     # undone by 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),   # mirrored on the anti-diagonal
        8: lambda a: np.rot90(a, -1),                    # undone by 90 degrees anticlockwise
    }
    return np.ascontiguousarray(turns[orientation](upright))


def save_oriented(path: Path, upright: np.ndarray, orientation: int, **options) -> Path:
    """Saves ``upright`` stored as for ``orientation``, with that EXIF Orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored(upright, orientation)).save(path, exif=exif, **options)
    return path


def cell_colours(pixels: np.ndarray, cell: int = CELL, margin: int = 4) -> np.ndarray:
    """The mean colour inside each cell (``margin`` pixels from its edges), (rows, cols, 3)."""
    rows, cols = pixels.shape[0] // cell, pixels.shape[1] // cell
    return np.array([[pixels[r * cell + margin:(r + 1) * cell - margin,
                             c * cell + margin:(c + 1) * cell - margin].reshape(-1, 3).mean(0)
                      for c in range(cols)] for r in range(rows)])


def assert_upright(pixels: np.ndarray, cell: int = CELL, margin: int = 4) -> None:
    """``pixels`` (H, W, 3) show the upright pattern: its size and each cell's colour."""
    assert pixels.shape == (HEIGHT * cell // CELL, WIDTH * cell // CELL, 3)
    assert np.abs(cell_colours(pixels, cell, margin) - COLOURS).max() <= 12


def as_array(image) -> np.ndarray:
    """A Pillow image or a (3, H, W) tensor as an (H, W, 3) array."""
    if isinstance(image, Image.Image):
        return np.asarray(image)
    return image.permute(1, 2, 0).numpy()


ORIENTATIONS = range(1, 9)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("oriented")
    return {value: save_oriented(folder / f"orientation{value}.jpg", UPRIGHT, value,
                                 quality=95) for value in ORIENTATIONS}


def test_the_fabricated_files_are_what_pillow_shows_upright(photos):
    for value, path in photos.items():
        with Image.open(path) as image:
            assert image.getexif()[0x0112] == value
            assert image.size == ((WIDTH, HEIGHT) if value < 5 else (HEIGHT, WIDTH))
            assert_upright(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_every_reader_gives_the_upright_pixels(photos, orientation):
    path = photos[orientation]
    pillow = np.asarray(open_rgb(path))
    assert_upright(pillow)
    # The same as Pillow's own exif_transpose, pixel for pixel.
    with Image.open(path) as image:
        assert np.array_equal(pillow, np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    # The fast uint8 reader, and the device decoder (on the CPU: libjpeg-turbo): the same.
    assert np.array_equal(as_array(read_uint8(path)), pillow)
    decoded = EncodedReader(None)(path).decode("cpu")
    assert decoded.shape == (1, 3, HEIGHT, WIDTH)
    assert np.array_equal(as_array(decoded[0]), pillow)
    # Resized readers turn before they resize: the pattern at half size.
    assert_upright(as_array(UInt8Reader((HEIGHT // 2, WIDTH // 2))(path)), CELL // 2, 2)
    assert_upright(as_array(EncodedReader((HEIGHT // 2, WIDTH // 2))(path).decode("cpu")[0]),
                   CELL // 2, 2)
    # The cache holds what its reader returns: upright.
    cached = CachedReader([path], UInt8Reader((HEIGHT, WIDTH)), (HEIGHT, WIDTH))
    for _ in range(2):  # filled, then read back
        assert np.array_equal(as_array(cached(path)), pillow)
    # Header reads: the displayed size (the divisors of keypoint fractions).
    assert read_image_header(path).orientation == orientation
    assert image_size(path) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_torch_and_opencv_turns_are_pillows(orientation):
    # torch's turn is what a GPU batch gets (nvjpeg's output), OpenCV's a CPU image's: both
    # must undo the stored turn exactly, in either memory layout torchvision may return.
    pixels = stored(UPRIGHT, orientation)
    channels_first = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    channels_last = torch.from_numpy(pixels).permute(2, 0, 1)
    for image in (channels_first, channels_last):
        assert np.array_equal(as_array(torch_turn(image, orientation)), UPRIGHT)
        assert np.array_equal(as_array(orient_tensor(image, orientation)), UPRIGHT)
        if orientation >= 5:
            assert np.array_equal(as_array(opencv_turn(image, orientation)), UPRIGHT)
    # A batch (N, 3, H, W) turns image by image alike.
    batch = torch.stack([channels_first, channels_first])
    assert torch.equal(orient_tensor(batch, orientation)[1],
                       torch.from_numpy(UPRIGHT).permute(2, 0, 1))


def test_orientations_travel_with_a_device_batch_between_processes(photos):
    batches = [EncodedReader(None)(photos[value]) for value in ORIENTATIONS]
    batch = pickle.loads(pickle.dumps(EncodedBatch.concat(batches)))
    assert batch.orientations == list(ORIENTATIONS)
    images = batch.decode("cpu")
    assert images.shape == (8, 3, HEIGHT, WIDTH)
    for value, image in zip(ORIENTATIONS, images):
        assert np.array_equal(as_array(image), np.asarray(open_rgb(photos[value])))


def test_a_png_with_exif_is_turned_too(tmp_path):
    path = save_oriented(tmp_path / "sideways.png", UPRIGHT, 6)
    assert np.array_equal(np.asarray(open_rgb(path)), UPRIGHT)  # lossless: exactly
    assert np.array_equal(as_array(read_uint8(path)), UPRIGHT)
    assert np.array_equal(as_array(EncodedReader(None)(path).decode("cpu")[0]), UPRIGHT)


@pytest.mark.parametrize("value", [0, 9, 300])
def test_an_invalid_orientation_leaves_the_pixels_as_stored(tmp_path, value):
    exif = Image.Exif()
    exif[0x0112] = value
    path = tmp_path / "odd.png"
    Image.fromarray(UPRIGHT).save(path, exif=exif)
    assert read_image_header(path).orientation == 1
    assert np.array_equal(np.asarray(open_rgb(path)), UPRIGHT)
    assert np.array_equal(as_array(read_uint8(path)), UPRIGHT)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_serve_checks_the_displayed_size_and_turns_what_it_shrinks(photos, orientation):
    data = photos[orientation].read_bytes()
    # A model of 16 x 24 keeps images up to 48 x 32 (width x height): the photo as displayed
    # fits, whichever way it is stored, so its bytes pass on untouched (with their EXIF).
    keep = UploadDecoder((HEIGHT // 2, WIDTH // 2))
    assert keep.prepare(data) == (data, "JPEG")
    # A model of 8 x 12 keeps 24 x 16: the JPEG is decoded at half scale (both sides still
    # at least the kept size, in the stored frame) and sent upright, without EXIF.
    shrink = UploadDecoder((HEIGHT // 4, WIDTH // 4))
    reduced, kind = shrink.prepare(data)
    assert kind == "JPEG"
    with Image.open(io.BytesIO(reduced)) as image:
        assert image.format == "PNG" and 0x0112 not in image.getexif()
        assert_upright(np.asarray(image.convert("RGB")), CELL // 2, 2)
    keep.close()
    shrink.close()


def test_serve_pixel_budget_counts_the_photo_whatever_its_orientation(photos):
    decoder = UploadDecoder(None, max_pixels=WIDTH * HEIGHT - 1)
    with pytest.raises(UploadError, match=f"{WIDTH} x {HEIGHT} pixels is too large"):
        decoder.prepare(photos[6].read_bytes())
    decoder.close()


def test_converted_and_prediction_images_are_upright(photos, tmp_path):
    # `vpr data convert` re-encoding a photo: the copy keeps no EXIF, so it is stored upright.
    copy = tmp_path / "copy.png"
    _re_encode(photos[8], copy)
    with Image.open(copy) as image:
        assert 0x0112 not in image.getexif()
        assert_upright(np.asarray(image.convert("RGB")))
    # A prediction row's tile: the photo as displayed (48 x 32) scaled to 16 pixels high.
    tile = _load_tile(photos[6], HEIGHT // 2, 0, (255, 255, 255))
    assert tile.size == (WIDTH // 2, HEIGHT // 2)
    assert_upright(np.asarray(tile), CELL // 2, 2)


# ---- locating a sideways phone photo of an indexed place

PLACES = [(395000.0 + 1000 * number, 4990000.0) for number in range(5)]


@pytest.fixture(scope="module")
def textured_index(tmp_path_factory) -> dict:
    """An index of five 160 x 120 textures, one per place 1 km apart."""
    root = tmp_path_factory.mktemp("textured")
    paths = []
    for number, (east, north) in enumerate(PLACES):
        latitude, longitude = utm.to_latlon(east, north, *ZONE)
        tag = GeoTag(utm_east=east, utm_north=north, utm_zone_number=ZONE[0],
                     utm_zone_letter=ZONE[1], latitude=float(latitude),
                     longitude=float(longitude), note=f"place{number}")
        (root / "database").mkdir(exist_ok=True)
        path = root / "database" / format_filename(tag, ".png")
        Image.fromarray(texture(40 + number)).save(path)
        paths.append(path)
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    index = LocationIndex.build(root / "index", ckpt, root / "database", device="cpu")
    return {"root": root, "paths": paths, "index": index}


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_sideways_copy_of_an_indexed_image_is_found_first(textured_index, orientation):
    index, target = textured_index["index"], textured_index["paths"][2]
    photo = save_oriented(textured_index["root"] / f"phone{orientation}.jpg",
                          texture(42), orientation, quality=95)
    [result] = locate(photo, index, top_k=5, device="cpu")
    assert result.matches[0].path == str(target.resolve())
    assert result.matches[0].similarity > 0.99


def test_keypoint_pairs_of_a_sideways_photo_are_in_its_displayed_frame(textured_index):
    # The photo is the indexed image itself, stored turned: displayed, each point lies where
    # it lies in the indexed image, so every pair's two points have the same fractions.
    index, target = textured_index["index"], textured_index["paths"][2]
    photo = save_oriented(textured_index["root"] / "phone_pairs.png", texture(42), 6)
    model = index.load_model()
    reranker = build_reranker({"top_k": 3, "method": "sift", "options": {}}, model)
    [result] = locate(photo, index, top_k=3, device="cpu", model=model, reranker=reranker)
    first = result.to_dict()["matches"][0]
    assert first["path"] == str(target.resolve()) and first["inliers"] >= 10
    pairs = np.array(first["keypoint_pairs"])
    assert np.abs(pairs[:, :2] - pairs[:, 2:]).max() <= 1.5 / 120
