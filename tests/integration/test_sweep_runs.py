"""Sweeps that train: resuming, skipping finished runs, failing cells, isolated child runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpr.sweep import parse_grid, plan_sweep, run_sweep, write_report
from vpr.sweep.records import LOCK_FILE, read_sweep
from vpr.synthetic import generate_city
from vpr.training import run as training_run

# The smallest training that still runs every part (see tests/integration/test_end_to_end.py).
FAST = {"image_size": 32, "pretrained": "none", "batch_size": 2, "img_per_place": 2,
        "min_img_per_place": 2, "num_workers": 0, "max_epochs": 1, "descriptors_dim": 32,
        "limit_train_batches": 2, "no_progress_bar": True, "accelerator": "cpu", "devices": 1}


@pytest.fixture(scope="module")
def tiny_city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("city") / "synthetic"
    generate_city(out, preset="tiny", seed=0, progress=False)
    return out


def city_base(city: Path) -> dict:
    return {"train_path": str(city / "gsv_xs" / "train"), "val_path": str(city / "sf_xs" / "val"),
            "test_path": [str(city / "sf_xs" / "test"), str(city / "tokyo_xs" / "test")], **FAST}


def test_sweep_runs_resumes_skips_finished_and_survives_a_failing_cell(
        tiny_city, tmp_path, monkeypatch):
    real_train = training_run.train
    calls: list[tuple[str, str | None]] = []
    interrupt = {"agg_arch": "GeM"}

    def spy(settings, resume=None):
        calls.append((settings["agg_arch"], resume))
        if settings["agg_arch"] == interrupt["agg_arch"]:
            # Ctrl-C after the run folder was made, before any checkpoint.
            run = Path(settings["log_dir"]) / "lightning_logs" / settings["exp_name"]
            (run / "checkpoints").mkdir(parents=True)
            raise KeyboardInterrupt
        return real_train(settings, resume=resume)

    monkeypatch.setattr(training_run, "train", spy)
    grid = parse_grid({"name": "tiny", "base": city_base(tiny_city),
                       "grid": {"agg_arch": ["NoSuchAggregator", "avgpool", "GeM"]}})
    names = {run.cell["agg_arch"]: run.exp_name for run in grid.runs()}
    sweep_dir = tmp_path / "sweep"
    runs_dir = sweep_dir / "lightning_logs"

    # Launch 1: the bad cell fails, avgpool finishes, GeM is interrupted.
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, sweep_dir)
    status = {entry["cell"]["agg_arch"]: entry for entry in read_sweep(sweep_dir)["runs"]}
    assert status["NoSuchAggregator"]["status"] == "failed"
    assert "NoSuchAggregator" in status["NoSuchAggregator"]["error"]
    assert status["avgpool"]["status"] == "done"
    assert status["GeM"]["status"] == "interrupted"
    done_marker = runs_dir / names["avgpool"] / "done.json"
    finished_at = done_marker.stat().st_mtime_ns
    assert not (sweep_dir / LOCK_FILE).exists()

    # Launch 2: avgpool is not run again; GeM's partial folder is moved aside and GeM reruns.
    calls.clear()
    interrupt["agg_arch"] = None
    summary = run_sweep(grid, sweep_dir)
    assert [agg for agg, _ in calls] == ["NoSuchAggregator", "GeM"]
    assert summary.skipped == [names["avgpool"]]
    assert summary.done == [names["GeM"]]
    assert list(summary.failed) == [names["NoSuchAggregator"]]
    assert done_marker.stat().st_mtime_ns == finished_at
    moved = list(runs_dir.glob(f"{names['GeM']}.failed-*"))
    assert len(moved) == 1 and (moved[0] / "checkpoints").is_dir()
    record = json.loads((runs_dir / names["GeM"] / "done.json").read_text())
    assert record["cell"] == {"agg_arch": "GeM"} and record["seed"] == 0
    assert [Path(test["dataset"]).parent.name for test in record["tests"]] == ["sf_xs",
                                                                               "tokyo_xs"]
    assert set(record["tests"][1]["recalls_per_group"]) == {"day", "sunset", "night"}

    # The report: one row per cell, R@1/R@5 per test set, the failure listed.
    files = write_report(sweep_dir)
    lines = files.text.splitlines()
    assert "| Aggregator | SF-XS R@1 | SF-XS R@5 | Tokyo-XS R@1 | Tokyo-XS R@5 |" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| NoSuchAggregator", "| avgpool", "| GeM"]
    assert rows[0].count("failed") == 4
    assert any(line.startswith(f"- `{names['NoSuchAggregator']}`") for line in lines)
    assert files.chart is not None and files.chart.stat().st_size > 0

    # Launch 3: a run cut after its last checkpoint resumes from it instead of restarting.
    (runs_dir / names["GeM"] / "done.json").unlink()
    state = json.loads((sweep_dir / "sweep.json").read_text())
    next(e for e in state["runs"] if e["exp_name"] == names["GeM"])["status"] = "interrupted"
    (sweep_dir / "sweep.json").write_text(json.dumps(state))
    calls.clear()
    assert [item.action for item in plan_sweep(grid, sweep_dir)] == ["new", "skip", "resume"]
    summary = run_sweep(grid, sweep_dir, max_runs=1)  # the rest waits for the next launch
    assert [agg for agg, _ in calls] == ["NoSuchAggregator"]
    assert summary.pending == [names["GeM"]]
    calls.clear()
    run_sweep(grid, sweep_dir)
    last = runs_dir / names["GeM"] / "checkpoints" / "last.ckpt"
    assert calls == [("NoSuchAggregator", None), ("GeM", str(last))]
    assert json.loads((runs_dir / names["GeM"] / "done.json").read_text())["resumed"] is True


@pytest.mark.slow
def test_isolated_runs_report_the_child_error(tiny_city, tmp_path):
    grid = parse_grid({"base": city_base(tiny_city),
                       "grid": {"agg_arch": ["NoSuchAggregator", "avgpool"]}})
    summary = run_sweep(grid, tmp_path / "sweep", isolate=True)
    assert len(summary.done) == 1
    assert "NoSuchAggregator" in next(iter(summary.failed.values()))
    record = json.loads((tmp_path / "sweep" / "lightning_logs" / summary.done[0] /
                         "done.json").read_text())
    assert len(record["tests"]) == 2 and "R@1" in record["tests"][0]["recalls"]
