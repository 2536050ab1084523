"""Published models through the commands: `vpr test`, `vpr train --init_from`, `vpr index`."""

from __future__ import annotations

import pytest
import torch
from helpers.published import geolocalization_net_state

RUN = ["--num_workers", "0", "--no_progress_bar", "--accelerator", "cpu", "--devices", "1",
       "--precision", "32-true"]


def test_vpr_test_with_a_published_model_file(tiny_retrieval, tmp_path, capsys):
    from vpr.cli import main as vpr_main

    torch.save(geolocalization_net_state("resnet18", 32, seed=6),
               tmp_path / "ResNet18_32_cosplace.pth")
    logs = tmp_path / "logs"
    code = vpr_main(["test", "--model", "cosplace:resnet18-32", "--weights",
                     str(tmp_path / "ResNet18_32_cosplace.pth"), "--test_path",
                     str(tiny_retrieval), "--log_dir", str(logs), "--exp_name", "cosplace",
                     *RUN])
    assert code == 0, capsys.readouterr().err
    assert "Test " in capsys.readouterr().out
    [results] = (logs / "lightning_logs" / "cosplace" / "results").glob("test_*/results.json")
    import json

    result = json.loads(results.read_text())
    assert result["queries_num"] == 3 and set(result["recalls"]) >= {"R@1", "R@5"}
    assert "cosplace:resnet18-32" in result["checkpoint"]


def test_vpr_test_reports_a_file_that_does_not_fit(tiny_retrieval, tmp_path, capsys):
    from vpr.cli import main as vpr_main

    torch.save(geolocalization_net_state("resnet18", 64), tmp_path / "w.pth")
    code = vpr_main(["test", "--model", "cosplace:resnet18-32", "--weights",
                     str(tmp_path / "w.pth"), "--test_path", str(tiny_retrieval),
                     "--log_dir", str(tmp_path / "logs"), *RUN])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("vpr: error: ") and "w.pth (cosplace:resnet18-32)" in error
    assert "aggregator.projection.weight: file (64, 512) vs model (32, 512)" in error
    code = vpr_main(["test", "--test_path", str(tiny_retrieval), *RUN])
    assert code == 2 and "--ckpt_path" in capsys.readouterr().err


@pytest.mark.slow
def test_train_init_from_then_test_without_the_file(tiny_train, tiny_retrieval, tmp_path):
    from vpr.cli import main as vpr_main
    from vpr.training.checkpoints import load_module

    state = geolocalization_net_state("resnet18", 32, seed=8)
    weights = tmp_path / "ResNet18_32_cosplace.pth"
    torch.save(state, weights)
    logs = tmp_path / "logs"
    code = vpr_main(["train", "--model", "cosplace:resnet18-32", "--init_from", str(weights),
                     "--train_path", str(tiny_train), "--val_path", str(tiny_retrieval),
                     "--image_size", "32", "--batch_size", "2", "--img_per_place", "2",
                     "--min_img_per_place", "2", "--max_epochs", "1", "--lr", "0",
                     "--weight_decay", "0", "--exp_name", "ft", "--log_dir", str(logs), *RUN])
    assert code == 0
    last = logs / "lightning_logs" / "ft" / "checkpoints" / "last.ckpt"
    weights.unlink()  # the checkpoint must not need the authors' file any more
    module = load_module(last).eval()
    assert module.hparams.published_model == "cosplace:resnet18-32"
    # lr 0: the fine-tuned weights are the authors' (BatchNorm statistics aside, which
    # training updates), so the projection is theirs exactly.
    assert torch.equal(module.model.aggregator.projection.weight, state["aggregation.3.weight"])
    assert torch.equal(module.model.aggregator.pool.p, state["aggregation.1.p"])
    code = vpr_main(["test", "--ckpt_path", str(last), "--test_path", str(tiny_retrieval),
                     *RUN])
    assert code == 0


def test_index_locate_with_a_published_model(tiny_retrieval, tmp_path, capsys):
    import json

    from vpr.cli import main as vpr_main
    from vpr.locate import LocationIndex

    weights = tmp_path / "ResNet18_32_cosplace.pth"
    torch.save(geolocalization_net_state("resnet18", 32, seed=9), weights)
    database = tiny_retrieval / "database"
    code = vpr_main(["index", "build", "--model", "cosplace:resnet18-32", "--weights",
                     str(weights), "--database", str(database), "--out", str(tmp_path / "idx"),
                     "--device", "cpu", "--precision", "32", "--no_progress_bar"])
    assert code == 0, capsys.readouterr().err
    index = LocationIndex.load(tmp_path / "idx")
    recorded = index.meta["model"]
    assert recorded["published_model"] == "cosplace:resnet18-32"
    assert recorded["weights"] == str(weights.resolve()) and recorded["checkpoint"] is None
    capsys.readouterr()
    # A database image locates itself: same model rebuilt from the index's record.
    photo = sorted(database.glob("*.jpg"))[3]
    code = vpr_main(["locate", str(photo), "--index", str(tmp_path / "idx"), "--json",
                     "--device", "cpu", "--top_k", "1"])
    assert code == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["matches"][0]["path"] == str(photo.resolve())
    assert result["matches"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    # Another model, or other weights, are refused: their descriptors would not compare.
    code = vpr_main(["locate", str(photo), "--index", str(tmp_path / "idx"),
                     "--model", "eigenplaces:resnet18-256", "--device", "cpu"])
    assert code == 2 and "was built with cosplace:resnet18-32" in capsys.readouterr().err
    torch.save(geolocalization_net_state("resnet18", 32, seed=10), tmp_path / "other.pth")
    code = vpr_main(["locate", str(photo), "--index", str(tmp_path / "idx"), "--weights",
                     str(tmp_path / "other.pth"), "--device", "cpu"])
    assert code == 2 and "is not the weights file" in capsys.readouterr().err
    # Moved weights are found again with --weights.
    moved = weights.rename(tmp_path / "moved.pth")
    code = vpr_main(["locate", str(photo), "--index", str(tmp_path / "idx"), "--device", "cpu"])
    assert code == 2 and "pass weights" in capsys.readouterr().err
    code = vpr_main(["locate", str(photo), "--index", str(tmp_path / "idx"), "--weights",
                     str(moved), "--device", "cpu", "--json", "--top_k", "1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)[0]["matches"][0]["path"] == str(photo.resolve())
    # The index grows with its own (moved) weights.
    query = sorted((tiny_retrieval / "queries").glob("*.jpg"))[0]
    code = vpr_main(["index", "add", "--index", str(tmp_path / "idx"), "--images", str(query),
                     "--weights", str(moved), "--device", "cpu", "--no_progress_bar"])
    assert code == 0
    assert len(LocationIndex.load(tmp_path / "idx")) == len(index) + 1
