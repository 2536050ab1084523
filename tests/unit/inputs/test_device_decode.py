"""``--decode device``: workers read JPEG bytes; batches are decoded where the model runs.

On a CPU the device decoder is the workers' libjpeg-turbo, so the pixels must be identical
to ``--decode worker``; the same code runs nvjpeg on a CUDA device.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from helpers.images import write_image
from PIL import Image
from torch.utils.data import DataLoader

from vpr.data.datasets import RetrievalSet, collate_places
from vpr.data.images import BadImageError
from vpr.hardware import resolve_decode
from vpr.inputs import device_decode
from vpr.inputs.decode import UInt8Reader
from vpr.inputs.device_decode import EncodedBatch, EncodedReader, collate_indexed, to_device
from vpr.training.pipeline import InputPipeline, eval_loader, resolve_pipeline


def _mixed_files(tmp_path):
    """JPEGs of three sizes and a PNG, named as a test set's database."""
    sizes = [(40, 30), (32, 32), (40, 30), (50, 20)]
    paths = [write_image(tmp_path / "database", 1000.0 + index, 2000.0, f"d{index}", index,
                         size=size, extension=".png" if index == 3 else ".jpg")
             for index, size in enumerate(sizes)]
    return paths


def test_device_decode_gives_the_workers_pixels(tmp_path):
    paths = _mixed_files(tmp_path)
    size = (24, 28)
    encoded = EncodedBatch.concat([EncodedReader(size)(path) for path in paths])
    assert [item.dim() for item in encoded.items] == [1, 1, 1, 3]  # the PNG is decoded at once
    decoded = encoded.decode("cpu")
    expected = torch.stack([UInt8Reader(size)(path) for path in paths])
    assert decoded.dtype == torch.uint8 and decoded.shape == (4, 3, 24, 28)
    assert torch.equal(decoded, expected)
    # Between processes the bytes travel packed in one tensor, the PNG as an image.
    assert torch.equal(pickle.loads(pickle.dumps(encoded)).decode("cpu"), expected)


def test_native_size_needs_one_size(tmp_path):
    paths = _mixed_files(tmp_path)
    same = EncodedBatch.concat([EncodedReader(None)(paths[i]) for i in (0, 2)])
    assert same.decode("cpu").shape == (2, 3, 30, 40)
    mixed = EncodedBatch.concat([EncodedReader(None)(path) for path in paths[:2]])
    with pytest.raises(ValueError, match="set image_size"):
        mixed.decode("cpu")


def test_a_failed_batch_call_is_retried_image_by_image(tmp_path, monkeypatch):
    paths = _mixed_files(tmp_path)[:3]
    encoded = EncodedBatch.concat([EncodedReader((16, 16))(path) for path in paths])
    expected = encoded.decode("cpu")
    real = device_decode.decode_jpeg

    def batch_fails(data, **kwargs):
        if isinstance(data, list):
            raise RuntimeError("nvjpeg: batch failed")
        return real(data, **kwargs)

    monkeypatch.setattr(device_decode, "decode_jpeg", batch_fails)
    assert torch.equal(encoded.decode("cpu"), expected)


def test_an_undecodable_jpeg_is_named(tmp_path):
    good = EncodedReader((16, 16))(_mixed_files(tmp_path)[0])
    junk = torch.frombuffer(bytearray(b"\xff\xd8\xff\xe0" + b"\x00" * 64), dtype=torch.uint8)
    batch = EncodedBatch.concat([good, EncodedBatch([junk], ["city/broken@.jpg"], (16, 16))])
    with pytest.raises(BadImageError, match=r"broken@\.jpg.*decode='worker'"):
        batch.decode("cpu")


def test_the_reader_checks_files_first(tmp_path):
    from helpers.bad_files import make_bad

    path = make_bad("truncated_jpeg", tmp_path / "cut.jpg")
    with pytest.raises(BadImageError, match="cut.jpg"):
        EncodedReader((16, 16))(path)


def test_training_batches_through_workers(tiny_train):
    """P x K batches pickled from a worker decode to what --decode worker gives."""
    batches = {}
    for decode in ("device", "worker"):
        dataset = InputPipeline("fast", (16, 16), randaugment_ops=0,
                                decode=decode).train_set(tiny_train, 2, 4)
        loader = DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=collate_places,
                            sampler=[(index, 7) for index in range(3)])
        images, labels, skipped = next(iter(loader))
        batches[decode] = (to_device(images, "cpu"), labels)
    assert isinstance(next(iter(DataLoader(
        InputPipeline("fast", (16, 16), 0, decode="device").train_set(tiny_train, 2, 4),
        batch_size=2, collate_fn=collate_places)))[0], EncodedBatch)
    assert batches["device"][0].shape == (6, 3, 16, 16)
    assert torch.equal(batches["device"][0], batches["worker"][0])
    assert torch.equal(batches["device"][1], batches["worker"][1])


def test_retrieval_batches_keep_their_indices(tiny_retrieval):
    dataset = InputPipeline("fast", (16, 16), 0, decode="device").retrieval_set(tiny_retrieval)
    images, indices = next(iter(eval_loader(dataset, batch_size=4, num_workers=0)))
    assert isinstance(images, EncodedBatch) and indices.tolist() == [0, 1, 2, 3]
    reference = RetrievalSet(tiny_retrieval, None, reader=UInt8Reader((16, 16)))
    expected, _ = collate_indexed([reference[index] for index in range(4)])
    assert torch.equal(images.decode("cpu"), expected)


def test_training_and_evaluation_decode_on_the_device(capsys, tiny_train, tiny_retrieval,
                                                     tmp_path):
    from vpr.cli import main as vpr_main

    code = vpr_main(["train", "--train_path", str(tiny_train), "--val_path", str(tiny_retrieval),
                     "--test_path", str(tiny_retrieval), "--log_dir", str(tmp_path),
                     "--exp_name", "ondevice", "--image_size", "32", "--pretrained", "none",
                     "--num_workers", "1", "--no_progress_bar", "--batch_size", "2",
                     "--img_per_place", "2", "--max_epochs", "1", "--decode", "device",
                     "--descriptors_dim", "16"])
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "lightning_logs" / "ondevice"
    assert "decode in the model's device" in (run / "info.log").read_text()
    assert "decode: device" in (run / "config.yaml").read_text()


def test_decode_flag():
    assert resolve_decode("auto", "fast", "cpu", cache_images=False) == "worker"
    assert resolve_decode("device", "fast", "cpu", cache_images=False) == "device"
    assert resolve_decode("worker", "fast", "gpu", cache_images=False) == "worker"
    with pytest.raises(ValueError, match="fast pipeline only"):
        resolve_decode("device", "seed", "cpu", cache_images=False)
    with pytest.raises(ValueError, match="cache_images"):
        resolve_decode("device", "fast", "cpu", cache_images=True)
    with pytest.raises(ValueError, match="valid: auto, worker, device"):
        resolve_decode("gpu", "fast", "cpu", cache_images=False)
    assert resolve_pipeline("auto", [32, 32], decode="device", accelerator="cpu").decode == "device"


def test_auto_decodes_on_a_cuda_gpu_with_nvjpeg(monkeypatch):
    from vpr import hardware

    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware, "device_decode_available", lambda device: True)
    assert resolve_decode("auto", "fast", "auto", cache_images=False) == "device"
    assert resolve_decode("auto", "fast", "auto", cache_images=True) == "worker"
    assert resolve_decode("auto", "seed", "gpu", cache_images=False) == "worker"
    monkeypatch.setattr(hardware, "device_decode_available", lambda device: False)
    assert resolve_decode("auto", "fast", "gpu", cache_images=False) == "worker"


def test_no_device_decoder_on_a_cpu():
    assert not device_decode.device_decode_available("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nvjpeg_is_close_to_libjpeg(tmp_path):  # pragma: no cover - GPU only
    pixels = np.random.default_rng(3).integers(0, 256, (64, 96, 3), np.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    on_gpu = EncodedReader((64, 96))(path).decode("cuda").cpu().int()
    on_cpu = UInt8Reader((64, 96))(path)[None].int()
    assert (on_gpu - on_cpu).abs().float().mean() < 1.0
