"""Bad input gets one clear line naming the file or flag, before any long work starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vpr.cli import main as vpr_main

FAST = ["--image_size", "32", "--pretrained", "none", "--num_workers", "0",
        "--no_progress_bar", "--batch_size", "2", "--img_per_place", "2",
        "--min_img_per_place", "2", "--max_epochs", "1"]


def _train(capsys, train: Path, val: Path, *extra: str, log_dir: Path) -> tuple[int, str]:
    code = vpr_main(["train", "--train_path", str(train), "--val_path", str(val),
                     "--log_dir", str(log_dir), "--exp_name", "bad", *FAST, *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--agg_arch", "Conv", "ConvGeM"),  # the error lists the valid names
        ("--loss_name", "Triplet", "TripletMarginLoss"),
        ("--miner_name", "MS", "MultiSimilarityMiner"),
        ("--backbone", "vgg16", "resnet18"),
    ],
)
def test_unknown_names_list_the_valid_ones(capsys, tiny_train, tiny_retrieval, tmp_path, flag,
                                           value, expected):
    code, error = _train(capsys, tiny_train, tiny_retrieval, flag, value, log_dir=tmp_path)
    assert code == 2
    assert value in error and expected in error
    assert not (tmp_path / "lightning_logs" / "bad").exists()


def test_missing_train_folder(capsys, tiny_retrieval, tmp_path):
    code, error = _train(capsys, tmp_path / "nope", tiny_retrieval, log_dir=tmp_path)
    assert code == 2 and "nope" in error and "not found" in error


def test_folder_without_images(capsys, tiny_retrieval, tmp_path):
    (tmp_path / "empty").mkdir()
    code, error = _train(capsys, tmp_path / "empty", tiny_retrieval, log_dir=tmp_path)
    assert code == 2 and "no images" in error


def test_name_without_utm_fields(capsys, tiny_train, tiny_retrieval, tmp_path):
    (tiny_retrieval / "queries" / "IMG_0001.jpg").write_bytes(b"")
    code, error = _train(capsys, tiny_train, tiny_retrieval, log_dir=tmp_path)
    assert code == 2 and "IMG_0001.jpg" in error and "UTM" in error


def test_test_set_without_database(capsys, tiny_train, tiny_retrieval, tmp_path):
    os.rename(tiny_retrieval / "database", tiny_retrieval / "db")
    code, error = _train(capsys, tiny_train, tiny_retrieval, log_dir=tmp_path)
    assert code == 2 and "database/" in error


def test_img_per_place_above_min(capsys, tiny_train, tiny_retrieval, tmp_path):
    code, error = _train(capsys, tiny_train, tiny_retrieval, "--img_per_place", "5",
                         log_dir=tmp_path)
    assert code == 2 and "img_per_place (5)" in error and "min_img_per_place" in error


def _test(capsys, checkpoint: Path, test_set: Path) -> tuple[int, str]:
    code = vpr_main(["test", "--ckpt_path", str(checkpoint), "--test_path", str(test_set),
                     "--num_workers", "0", "--no_progress_bar"])
    return code, capsys.readouterr().err


def test_checkpoint_that_is_not_ours(capsys, tiny_retrieval, tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"lr": 1}}, other)
    code, error = _test(capsys, other, tiny_retrieval)
    assert code == 2 and "other.ckpt" in error and "not of a vpr model" in error


def test_truncated_checkpoint(capsys, tiny_retrieval, tmp_path):
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, whole)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole.read_bytes()[:300])
    code, error = _test(capsys, truncated, tiny_retrieval)
    assert code == 2 and "truncated.ckpt" in error and "truncated" in error


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_payload_is_refused_and_does_nothing(capsys, tiny_retrieval, tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(str(marker))}, hostile)
    code, error = _test(capsys, hostile, tiny_retrieval)
    assert code == 2 and "hostile.ckpt" in error and "refused" in error
    assert not marker.exists()


def test_missing_checkpoint(capsys, tiny_retrieval, tmp_path):
    code, error = _test(capsys, tmp_path / "missing.ckpt", tiny_retrieval)
    assert code == 2 and "missing.ckpt" in error and "not found" in error


def _checkpoint_of_another_version(path: Path, change) -> Path:
    from vpr.training.module import VPRModule

    module = VPRModule(agg_arch="GeM", descriptors_dim=16, image_size=(32, 32),
                       pretrained="none", vpr_version="0.0.1")
    checkpoint = {"state_dict": dict(module.state_dict()),
                  "hyper_parameters": dict(module.hparams)}
    change(checkpoint)
    torch.save(checkpoint, path)
    return path


def test_checkpoint_of_another_version_names_what_differs(capsys, tiny_retrieval, tmp_path):
    def rename_and_reshape(checkpoint):
        weights = checkpoint["state_dict"]
        key = next(k for k in weights if k.endswith(".p"))  # GeM's exponent
        weights["model.aggregator.old_p"] = weights.pop(key)
        fc = "model.backbone.conv1.weight"
        weights[fc] = torch.zeros(8, *weights[fc].shape[1:])
        checkpoint["_renamed"] = (key, fc)

    path = _checkpoint_of_another_version(tmp_path / "old.ckpt", rename_and_reshape)
    renamed, reshaped = torch.load(path, weights_only=True)["_renamed"]
    code, error = _test(capsys, path, tiny_retrieval)
    assert code == 2 and "old.ckpt" in error
    assert "vpr 0.0.1" in error and "this is vpr" in error
    assert f"missing in the file: {renamed}" in error
    assert "model.aggregator.old_p" in error
    assert reshaped in error and "(8, " in error


def test_checkpoint_with_settings_this_version_does_not_know(capsys, tiny_retrieval, tmp_path):
    def add_setting(checkpoint):
        checkpoint["hyper_parameters"]["warp_drive"] = True

    path = _checkpoint_of_another_version(tmp_path / "future.ckpt", add_setting)
    code, error = _test(capsys, path, tiny_retrieval)
    assert code == 2 and "future.ckpt" in error and "warp_drive" in error and "0.0.1" in error


def test_checkpoint_that_fits_loads(tiny_retrieval, tmp_path):
    from vpr.training.checkpoints import load_module

    path = _checkpoint_of_another_version(tmp_path / "ok.ckpt", lambda checkpoint: None)
    module = load_module(path)
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in stored.items())
