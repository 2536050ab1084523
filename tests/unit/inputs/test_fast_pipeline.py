"""The fast input pipeline: uint8 decoding, the shared image cache, hardware defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.bad_files import make_bad
from PIL import Image
from torch.utils.data import DataLoader

from vpr import hardware
from vpr.data.datasets import TrainPlaces
from vpr.data.images import BadImageError, list_images
from vpr.hardware import default_precision
from vpr.inputs.cache import CachedReader
from vpr.inputs.decode import UInt8Reader, read_uint8
from vpr.inputs.transforms import eval_transform
from vpr.training.pipeline import InputPipeline, resolve_pipeline


def test_uint8_decode_matches_pillow(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)
    png = tmp_path / "x.png"
    Image.fromarray(pixels).save(png)
    assert torch.equal(read_uint8(png), torch.from_numpy(pixels).permute(2, 0, 1))
    jpg = tmp_path / "x.jpg"
    Image.fromarray(pixels).save(jpg, quality=90)
    decoded = read_uint8(jpg).int()
    pillow = torch.from_numpy(np.array(Image.open(jpg).convert("RGB"))).permute(2, 0, 1).int()
    assert decoded.shape == (3, 20, 30)
    assert (decoded - pillow).abs().max() <= 2  # both libjpeg-turbo; IDCT rounding at most


@pytest.mark.parametrize("kind", ["truncated_jpeg", "zero_bytes", "text_named_jpg", "bomb"])
def test_bad_files_are_named_before_decoding(tmp_path, kind):
    path = make_bad(kind, tmp_path / "bad.jpg")
    with pytest.raises(BadImageError, match="bad.jpg"):
        read_uint8(path)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16", "P"])
def test_unusual_modes_become_rgb_uint8(tmp_path, mode):
    path = tmp_path / ("x.png" if mode in ("RGBA", "I;16", "P") else "x.jpg")
    Image.new(mode, (10, 6)).save(path)
    image = read_uint8(path)
    assert image.dtype == torch.uint8 and image.shape == (3, 6, 10)


def test_reader_resizes_like_the_float_pipeline(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (40, 60, 3), np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(pixels).save(path)
    fast = UInt8Reader((20, 30))(path)
    assert fast.shape == (3, 20, 30) and fast.dtype == torch.uint8
    seed = eval_transform((20, 30))(Image.open(path).convert("RGB"))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    seed_pixels = (seed * std[:, None, None] + mean[:, None, None]) * 255
    assert (fast.float() - seed_pixels).abs().mean() < 1.0  # same antialiased resize


def _count_calls(path):
    _count_calls.calls += 1
    return UInt8Reader((8, 8))(path)


def test_cache_reads_each_image_once_and_is_shared_by_workers(tiny_train):
    paths = list_images(tiny_train)
    cache = CachedReader(paths, _count_calls, (8, 8))
    _count_calls.calls = 0
    first = cache(paths[0])
    again = cache(paths[0])
    assert torch.equal(first, again) and _count_calls.calls == 1
    dataset = TrainPlaces(tiny_train, None, img_per_place=4, reader=cache)
    for _ in DataLoader(dataset, batch_size=2, num_workers=2):  # workers fill it
        pass
    images = sum(map(len, dataset.images_per_place))
    assert int(cache.filled.sum()) == images  # the workers' reads are seen here
    calls = _count_calls.calls
    for index in range(len(dataset)):
        dataset[index]
    assert _count_calls.calls == calls  # served from the cache, nothing decoded again


def test_cache_refuses_what_does_not_fit(tiny_train):
    with pytest.raises(MemoryError, match="^cache_images needs"):
        CachedReader(list_images(tiny_train), _count_calls, (64, 64), max_bytes=1000)


def test_fast_train_set_yields_uint8_at_the_image_size(tiny_train):
    dataset = InputPipeline("fast", (16, 24), randaugment_ops=3).train_set(tiny_train, 4, 4)
    images, labels, skipped = dataset[(0, 123)]
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 16, 24)
    assert torch.equal(images, dataset[(0, 123)][0])  # the same seed, the same images


def test_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "_has_other_device", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert default_precision("auto", "fast") == "bf16-mixed"
    assert default_precision("auto", "seed") == "32-true"
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert default_precision("cpu", "fast") == "32-true"
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware.torch.cuda, "is_bf16_supported", lambda: False)
    assert default_precision("auto", "fast") == "16-mixed"
    assert default_precision("gpu", "seed") == "16-mixed"


def test_pipeline_flags():
    chosen = resolve_pipeline("seed", [32, 32], channels_last=None, cache_images=False,
                              randaugment_ops=3)
    assert chosen.name == "seed" and not chosen.channels_last
    assert resolve_pipeline("auto", None).channels_last
    with pytest.raises(ValueError, match="fast pipeline only"):
        resolve_pipeline("seed", None, cache_images=True)


def test_compile_failure_falls_back_to_eager(monkeypatch, caplog):
    from vpr.inputs.batch_augment import InputTransform
    from vpr.training.module import VPRModule

    def broken_compile(model):
        def run(images):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    module = VPRModule(agg_arch="GeM", descriptors_dim=16, image_size=(32, 32), pretrained="none")
    module.eval()
    images = torch.rand(2, 3, 32, 32)
    eager = module.model(images)
    module.configure_input(InputTransform(channels_last=True), compile_model=True)
    assert torch.allclose(module(images), eager, atol=1e-5)
    assert "torch.compile failed" in caplog.text
    assert not module._compiled  # later batches go straight to eager


def test_training_with_the_cache_and_batched_augmentation(capsys, tiny_train, tiny_retrieval,
                                                          tmp_path, monkeypatch):
    from vpr.cli import main as vpr_main
    from vpr.training import pipeline as pipeline_module

    caches = []

    class CountingCache(CachedReader):
        """The real cache, counting what it serves and what it had to decode."""

        def __init__(self, paths, reader, *args, **kwargs):
            self.served = self.decoded = 0

            def decode(path):
                self.decoded += 1
                return reader(path)

            super().__init__(paths, decode, *args, **kwargs)
            caches.append(self)

        def __call__(self, path):
            self.served += 1
            return super().__call__(path)

    monkeypatch.setattr(pipeline_module, "CachedReader", CountingCache)
    code = vpr_main(["train", "--train_path", str(tiny_train), "--val_path", str(tiny_retrieval),
                     "--log_dir", str(tmp_path), "--exp_name", "cached", "--image_size", "32",
                     "--pretrained", "none", "--num_workers", "0", "--no-progress_bar",
                     "--batch_size", "2", "--img_per_place", "2", "--max_epochs", "3",
                     "--cache_images", "--randaugment_ops", "3", "--descriptors_dim", "16"])
    assert code == 0, capsys.readouterr().err
    [cache] = caches
    # 5 places x 2 images a step, 3 epochs: 30 reads; at most the 20 distinct images of the
    # 5 places were decoded, the rest came from the cache.
    assert cache.served == 30
    assert cache.decoded <= 20 and cache.decoded < cache.served
    assert int(cache.filled.sum()) == cache.decoded


def test_fast_training_set_skips_and_counts_a_truncated_image(tiny_train):
    dataset = InputPipeline("fast", (16, 16), randaugment_ops=0).train_set(tiny_train, 2, 4)
    make_bad("truncated_jpeg", dataset.images_per_place[1][0])
    results = [dataset[(1, seed)] for seed in range(12)]
    assert sum(skipped for _, _, skipped in results) > 0  # the bad one was drawn and skipped
    assert all(images.shape == (2, 3, 16, 16) for images, _, _ in results)
