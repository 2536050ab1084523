"""A battery of corrupt and hostile inputs: each gets a clear message, nothing is lost."""

from __future__ import annotations

import os

import pytest
from helpers.bad_files import make_bad
from PIL import Image

from vpr.data.datasets import RetrievalSet, TrainPlaces
from vpr.data.images import BadImageError, check_image_header, list_images, open_rgb
from vpr.inputs.transforms import eval_transform, train_transform


@pytest.mark.parametrize("kind", ["truncated_jpeg", "zero_bytes", "text_named_jpg", "bomb"])
def test_bad_files_are_caught_by_the_header_check(tmp_path, kind):
    path = make_bad(kind, tmp_path / "x.jpg")
    problem = check_image_header(path)
    assert problem, kind
    with pytest.raises(BadImageError, match="x.jpg"):
        open_rgb(path)


def test_png_named_jpg_is_read(tmp_path):
    path = make_bad("png_named_jpg", tmp_path / "x.jpg")
    assert check_image_header(path) is None
    assert open_rgb(path).size == (8, 8)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16", "P"])
def test_unusual_modes_become_rgb(tmp_path, mode):
    image = Image.new(mode, (10, 6))
    path = tmp_path / ("x.png" if mode in ("RGBA", "I;16", "P") else "x.jpg")
    image.save(path)
    assert check_image_header(path) is None
    converted = open_rgb(path)
    assert converted.mode == "RGB" and converted.size == (10, 6)


@pytest.mark.parametrize("kind", ["truncated_jpeg", "zero_bytes", "text_named_jpg", "bomb"])
def test_evaluation_stops_before_work_and_names_the_file(tiny_retrieval, kind):
    bad = make_bad(kind, tiny_retrieval / "queries" / "@500000.00@4000000.00@@@@@@@@@@@@bad@.jpg")
    before = bad.read_bytes()
    with pytest.raises(BadImageError) as info:
        RetrievalSet(tiny_retrieval, eval_transform())
    assert bad.name in str(info.value) and "skip_bad_images" in str(info.value)
    assert bad.read_bytes() == before  # nothing of the user's is touched
    skipping = RetrievalSet(tiny_retrieval, eval_transform(), skip_bad_images=True)
    assert skipping.queries_num == 3 and list(skipping.bad_images) == [bad]


def test_training_skips_and_counts_a_truncated_image(tiny_train):
    dataset = TrainPlaces(tiny_train, train_transform((16, 16)), img_per_place=2,
                          min_img_per_place=4)
    make_bad("truncated_jpeg", dataset.images_per_place[1][0])
    skipped = sum(dataset[(1, seed)][2] for seed in range(12))
    assert skipped > 0


def test_empty_queries_folder(tiny_retrieval):
    for path in (tiny_retrieval / "queries").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match="queries: no images"):
        RetrievalSet(tiny_retrieval, eval_transform())


def test_symlink_loop_does_not_hang(tmp_path):
    (tmp_path / "set" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "set" / "a" / "@1@2@p@.jpg")
    os.symlink("..", tmp_path / "set" / "a" / "loop")
    assert [p.name for p in list_images(tmp_path / "set")] == ["@1@2@p@.jpg"]


def test_unreadable_file_is_named(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = tmp_path / "x.jpg"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    with pytest.raises(BadImageError, match="x.jpg"):
        open_rgb(path)


def test_a_permission_error_is_named_even_as_root(tmp_path, monkeypatch):
    # Root reads any file, so the chmod test above skips there: raise the error an
    # unprivileged user would get, at the call that would get it.
    import errno

    from vpr.data import images

    path = tmp_path / "locked.jpg"
    Image.new("RGB", (4, 4)).save(path)

    def denied(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(images.Image, "open", denied)
    assert "Permission denied" in check_image_header(path)
    with pytest.raises(BadImageError, match=r"locked\.jpg.*Permission denied"):
        open_rgb(path)
