"""A tiny end-to-end run on CPU: train, test from the checkpoint, resume, seed entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.paths import REPO

from vpr.cli import main as vpr_main
from vpr.training.checkpoints import read_checkpoint_hparams

FAST = ["--image_size", "32", "--pretrained", "none", "--batch_size", "2",
        "--img_per_place", "2", "--min_img_per_place", "2", "--num_workers", "0",
        "--descriptors_dim", "32", "--no_progress_bar", "--accelerator", "cpu",
        "--devices", "1"]

# Every test trains (trained_run, or main.py): 20-50 s each on 2 busy cores.
pytestmark = pytest.mark.slow


def _data_args(train: Path, test: Path) -> list[str]:
    return ["--train_path", str(train), "--val_path", str(test), "--test_path", str(test)]


@pytest.fixture
def trained_run(tiny_train, tiny_retrieval, tmp_path):
    logs = tmp_path / "logs"
    code = vpr_main(["train", *_data_args(tiny_train, tiny_retrieval), *FAST,
                     "--exp_name", "e2e", "--log_dir", str(logs), "--max_epochs", "2"])
    assert code == 0
    return logs / "lightning_logs" / "e2e"


def test_train_writes_best_last_logs_config_and_results(trained_run):
    checkpoints = sorted(p.name for p in (trained_run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in checkpoints
    assert any(name.startswith("best_epoch=") for name in checkpoints)
    for name in ("info.log", "debug.log", "config.yaml"):
        assert (trained_run / name).is_file(), name
    assert list(trained_run.glob("events.out.tfevents.*"))
    results = list((trained_run / "results").glob("test_*/results.json"))
    assert len(results) == 1
    for name in ("per_query.csv", "recall_at_n.png"):
        assert (results[0].parent / name).is_file(), name
    data = json.loads(results[0].read_text())
    assert set(data["recalls"]) == {"R@1", "R@5", "R@10", "R@20"}
    assert set(data["recalls_per_threshold"]) == {"10m", "25m", "50m", "100m"}
    # 3 queries, one without any positive: R@20 (every database image) is 2 of 3.
    assert data["recalls"]["R@20"] == pytest.approx(200 / 3)
    last = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6


def test_test_only_reproduces_the_final_test(trained_run, tiny_retrieval, capsys):
    first = json.loads(next((trained_run / "results").glob("test_*/results.json")).read_text())
    best = first["checkpoint"]
    code = vpr_main(["test", "--ckpt_path", best, "--test_path", str(tiny_retrieval),
                     "--num_workers", "0", "--no_progress_bar", "--accelerator", "cpu"])
    assert code == 0
    files = sorted((trained_run / "results").glob("test_*/results.json"))
    assert len(files) == 2
    again = [json.loads(f.read_text()) for f in files]
    assert all(r["recalls"] == first["recalls"] for r in again)
    assert all(r["localization_error"] == first["localization_error"] for r in again)


def test_resume_continues_the_epoch_count(trained_run, tiny_train, tiny_retrieval):
    last = trained_run / "checkpoints" / "last.ckpt"
    code = vpr_main(["train", "--resume", str(last), "--max_epochs", "3", *FAST[:2],
                     "--batch_size", "2", "--img_per_place", "2", "--min_img_per_place", "2",
                     "--num_workers", "0", "--no_progress_bar", "--accelerator", "cpu"])
    assert code == 0
    resumed = torch.load(last, weights_only=True)
    # 6 places in batches of 2 = 3 steps per epoch: 2 epochs before, 1 more after resuming.
    assert resumed["global_step"] == 9
    assert "optimizer_states" in resumed and resumed["optimizer_states"]


def test_existing_experiment_is_never_overwritten(trained_run, tiny_train, tiny_retrieval,
                                                  capsys):
    before = sorted(p.name for p in trained_run.rglob("*"))
    code = vpr_main(["train", *_data_args(tiny_train, tiny_retrieval), *FAST,
                     "--exp_name", "e2e", "--log_dir", str(trained_run.parent.parent)])
    assert code == 2
    error = capsys.readouterr().err
    assert "already exists" in error and "--resume" in error
    assert sorted(p.name for p in trained_run.rglob("*")) == before


def test_explicit_flag_contradicting_checkpoint_is_an_error(trained_run, tiny_retrieval, capsys):
    from vpr.cli.seed_compat import main as main_py

    checkpoint = str(trained_run / "checkpoints" / "last.ckpt")
    code = main_py(["--ckpt_path", checkpoint, "--test_path", str(tiny_retrieval),
                    "--agg_arch", "GeM", "--num_workers", "0", "--no-progress_bar"])
    assert code == 2
    error = capsys.readouterr().err
    assert "--agg_arch GeM contradicts" in error and "ConvAP" in error
    # `vpr test` takes no model flag at all: the checkpoint carries the model.
    with pytest.raises(SystemExit) as exit_info:
        vpr_main(["test", "--ckpt_path", checkpoint, "--test_path", str(tiny_retrieval),
                  "--agg_arch", "ConvAP"])
    assert exit_info.value.code == 2
    assert "--agg_arch: vpr test takes the model" in capsys.readouterr().err
    stored = read_checkpoint_hparams(trained_run / "checkpoints" / "last.ckpt")
    assert stored["agg_arch"] == "ConvAP" and stored["descriptors_dim"] == 32


def test_seed_main_py_trains_and_tests_verbatim(tiny_train, tiny_retrieval, tmp_path):
    """`python main.py --exp_name ... --train_path ... --val_path ... --test_path ...`."""
    command = [sys.executable, str(REPO / "main.py"), "--exp_name", "seedrun",
               *_data_args(tiny_train, tiny_retrieval), "--num_workers", "0",
               "--loss_name", "MultiSimilarityLoss", "--agg_arch", "ConvAP",
               "--max_epochs", "1", *FAST[:4], "--batch_size", "2", "--img_per_place", "2",
               "--min_img_per_place", "2", "--no_progress_bar"]
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True, timeout=300)
    run = tmp_path / "logs" / "lightning_logs" / "seedrun"
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # Test only, with the seed's flags (train/val paths given but unused).
    output = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--ckpt_path", str(last),
         *_data_args(tiny_train, tiny_retrieval), "--num_workers", "0", "--no_progress_bar"],
        check=True, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    ).stdout
    assert "R@1" in output
    # Resume with main_ckpt.py, then test the best.
    subprocess.run(
        [sys.executable, str(REPO / "main_ckpt.py"), "--ckpt_path", str(last),
         *_data_args(tiny_train, tiny_retrieval), "--num_workers", "0", "--max_epochs", "2",
         "--batch_size", "2", "--img_per_place", "2", "--min_img_per_place", "2",
         "--image_size", "32", "--no_progress_bar"],
        check=True, cwd=tmp_path, capture_output=True, timeout=300,
    )
    assert torch.load(last, weights_only=True)["global_step"] == 6


def test_saved_config_reproduces_the_run(trained_run, monkeypatch):
    """`vpr train --config <run>/config.yaml` asks for the same run, settings and model."""
    import yaml

    from vpr.training import run as training_run

    asked: dict = {}
    monkeypatch.setattr(training_run, "train",
                        lambda settings, resume=None, **_: asked.update(settings) or {
                            "is_global_zero": False})
    saved = trained_run / "config.yaml"
    assert vpr_main(["train", "--config", str(saved), "--exp_name", "again"]) == 0
    again = training_run.resolve_config(asked)
    first = yaml.safe_load(saved.read_text())["config"]
    assert again.exp_name == "again"
    first["run"]["exp_name"] = "again"
    assert again.to_dict() == first
    stored = read_checkpoint_hparams(trained_run / "checkpoints" / "last.ckpt")
    for name, value in again.module_config().flat().items():
        expected = stored[name]
        assert (list(value) if isinstance(value, tuple) else value) == (
            list(expected) if isinstance(expected, tuple) else expected), name
