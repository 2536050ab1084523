"""Crash and resume, DDP and numerical safety: real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.images import write_image

TRAIN_FLAGS = ["--image_size", "48", "--pretrained", "none", "--batch_size", "2",
               "--img_per_place", "2", "--min_img_per_place", "2", "--num_workers", "0",
               "--descriptors_dim", "32", "--no_progress_bar", "--accelerator", "cpu",
               "--seed", "7"]


@pytest.fixture
def noisy_train(tmp_path: Path) -> Path:
    """16 places x 3 random images: 8 training steps per epoch."""
    root = tmp_path / "train"
    for place in range(16):
        for image in range(3):
            write_image(root / "City", 100.0 * place + image, 0.0, f"{place:03d}_City",
                        seed=1000 + 10 * place + image, size=(48, 48))
    return root


def _vpr(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "vpr", *args]


def _train_command(train: Path, test: Path, logs: Path, name: str, epochs: int) -> list[str]:
    return _vpr("train", "--train_path", str(train), "--val_path", str(test), "--test_path",
                str(test), "--log_dir", str(logs), "--exp_name", name, "--max_epochs",
                str(epochs), *TRAIN_FLAGS, cwd=logs)


def _state(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=True)["state_dict"]


def _final_results(run: Path) -> dict:
    files = sorted(run.glob("results/test_*/results.json"))
    return json.loads(files[-1].read_text())


@pytest.mark.slow  # three training runs in subprocesses: minutes on 2 cores
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(noisy_train, tiny_retrieval,
                                                           tmp_path):
    logs = tmp_path / "logs"
    epochs = 4
    subprocess.run(_train_command(noisy_train, tiny_retrieval, logs, "whole", epochs),
                   check=True, capture_output=True, timeout=600)

    process = subprocess.Popen(
        _train_command(noisy_train, tiny_retrieval, logs, "killed", epochs),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    last = logs / "lightning_logs" / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    # The checkpoint left behind is complete and loadable.
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 0 < killed_at < epochs * 8

    subprocess.run(_vpr("train", "--resume", str(last), "--no_progress_bar", "--num_workers",
                        "0", "--accelerator", "cpu", "--seed", "7", cwd=logs),
                   check=True, capture_output=True, timeout=600)

    whole = logs / "lightning_logs" / "whole"
    killed = logs / "lightning_logs" / "killed"
    reference, resumed = _state(whole / "checkpoints" / "last.ckpt"), _state(last)
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key
    assert _final_results(whole)["recalls"] == _final_results(killed)["recalls"]


@pytest.mark.slow  # training runs in subprocesses: ~1-2 min on 2 cores
def test_resume_auto_picks_the_newest_valid_checkpoint(noisy_train, tiny_retrieval, tmp_path):
    logs = tmp_path / "logs"
    subprocess.run(_train_command(noisy_train, tiny_retrieval, logs, "auto", 1),
                   check=True, capture_output=True, timeout=600)
    checkpoints = logs / "lightning_logs" / "auto" / "checkpoints"
    # A newer but truncated file must be skipped, not crash the resume.
    broken = checkpoints / "zz_broken.ckpt"
    broken.write_bytes((checkpoints / "last.ckpt").read_bytes()[:100])
    result = subprocess.run(
        _vpr("train", "--resume", "auto", "--exp_name", "auto", "--log_dir", str(logs),
             "--max_epochs", "2", "--no_progress_bar", "--num_workers", "0",
             "--accelerator", "cpu", cwd=logs),
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "zz_broken.ckpt" in result.stdout + result.stderr
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 16


@pytest.mark.slow  # two training processes (gloo): ~1 min on 2 cores
def test_ddp_two_processes_train_and_test_like_one(noisy_train, tiny_retrieval, tmp_path):
    logs = tmp_path / "logs"
    command = _train_command(noisy_train, tiny_retrieval, logs, "ddp", 1)
    command += ["--devices", "2", "--strategy", "ddp"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = logs / "lightning_logs" / "ddp"
    ddp_results = _final_results(run)
    best = ddp_results["checkpoint"]
    single = subprocess.run(
        _vpr("test", "--ckpt_path", best, "--test_path", str(tiny_retrieval), "--num_workers",
             "0", "--no_progress_bar", "--accelerator", "cpu", "--devices", "1", cwd=tmp_path),
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    assert _final_results(run)["recalls"] == ddp_results["recalls"]
    # Both results files exist: the DDP one and the single-process one.
    assert len(list(run.glob("results/test_*/results.json"))) == 2


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
        tiny_train, tiny_retrieval, tmp_path, monkeypatch, capsys):
    import vpr.training.module as module_code
    from vpr.cli import main as vpr_main

    real = module_code.compute_loss
    calls = {"n": 0}

    def poisoned(loss_fn, miner, descriptors, labels):
        calls["n"] += 1
        loss, batch_acc = real(loss_fn, miner, descriptors, labels)
        return (loss * float("nan") if calls["n"] == 5 else loss), batch_acc

    monkeypatch.setattr(module_code, "compute_loss", poisoned)
    code = vpr_main(["train", "--train_path", str(tiny_train), "--val_path", str(tiny_retrieval),
                     "--log_dir", str(tmp_path), "--exp_name", "nan", "--max_epochs", "3",
                     "--min_img_per_place", "2", *TRAIN_FLAGS])
    assert code == 2
    error = capsys.readouterr().err
    assert "loss is nan" in error and "step 4" in error and "epoch 1" in error
    last = tmp_path / "lightning_logs" / "nan" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 3


_SAVER = """
import sys, torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from vpr.utils.atomic import write_json_atomic
path, kind = sys.argv[1], sys.argv[2]
io = TorchCheckpointIO()
step = 0
while True:
    step += 1
    if kind == "ckpt":
        io.save_checkpoint({"step": step, "w": torch.full((6_000_000,), float(step))}, path)
    else:
        write_json_atomic(path, {"step": step, "rows": [step] * 400_000})
    print(step, flush=True)
"""


@pytest.mark.parametrize("kind", ["ckpt", "json"])
def test_a_kill_during_a_save_leaves_a_whole_file(tmp_path, kind):
    """SIGKILL at several moments of repeated saves: the file is always old or new, whole."""
    path = tmp_path / f"last.{kind}"
    for delay in (0.05, 0.23):
        process = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), kind],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip().isdigit()  # at least one save is done
        time.sleep(delay)  # somewhere inside a later save
        process.send_signal(signal.SIGKILL)
        process.wait()
        if kind == "ckpt":
            saved = torch.load(path, weights_only=True)
            assert saved["w"].shape == (6_000_000,)
            assert bool((saved["w"] == saved["step"]).all())
        else:
            saved = json.loads(path.read_text())
            assert saved["rows"] == [saved["step"]] * 400_000


@pytest.mark.parametrize("num_items, world", [(12, 2), (12, 3), (7, 2)])
def test_samplers_give_each_rank_its_own_share_of_every_epoch(monkeypatch, num_items, world):
    from vpr.data import samplers

    def shares(make):
        out = []
        for rank in range(world):
            monkeypatch.setattr(samplers, "_rank_and_world", lambda r=rank: (r, world))
            sampler = make()
            out.append(list(sampler))
            assert len(out[-1]) == len(sampler)
        return out

    def shuffled(epoch):
        sampler = samplers.EpochShuffleSampler(num_items, seed=5)
        sampler.set_epoch(epoch)
        return sampler

    per_rank = -(-num_items // world)  # padded to equal counts
    for epoch in (0, 1):
        ranks = shares(lambda epoch=epoch: shuffled(epoch))
        indices = [[index for index, _ in rank] for rank in ranks]
        assert all(len(share) == per_rank for share in indices)
        assert set().union(*indices) == set(range(num_items))  # every item, every epoch
        if num_items % world == 0:  # no padding: the shares are disjoint
            assert sum(len(set(share)) for share in indices) == num_items
        for rank in ranks:
            assert all(seed == samplers.item_seed(5, epoch, index) for index, seed in rank)
    sequential = shares(lambda: samplers.ShardedSequentialSampler(num_items))
    assert sorted(sum(sequential, [])) == list(range(num_items))  # disjoint, no padding
    assert sequential[1][:2] == [1, 1 + world]
