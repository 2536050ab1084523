"""Sweeps: grid files, run names, resuming, failures, and the paper-style report."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import yaml
from helpers.paths import REPO

from vpr.config import TrainConfig
from vpr.models.aggregators import list_aggregators
from vpr.sweep import (
    GridError,
    SweepError,
    collect,
    exp_name_for,
    load_grid,
    markdown_table,
    parse_grid,
    plan_sweep,
    run_sweep,
)
from vpr.sweep.grid import flag_argv, validate
from vpr.sweep.records import LOCK_FILE, SweepLock
from vpr.sweep.results import dataset_label, dataset_labels
from vpr.sweep.runner import _child_error
from vpr.training.losses import list_losses, list_miners

PAPER_TABLES = {"table1": 9, "table2": 9, "table3": 9, "table4": 6, "table5": 3}

def vpr(argv: list[str]) -> int:
    """`vpr ARGV`, whether or not sweep/report are registered in vpr.cli yet."""
    from vpr import cli
    from vpr.cli import report as report_cli
    from vpr.cli import sweep as sweep_cli

    if {"sweep", "report"} <= set(cli.SUBCOMMANDS):
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="vpr")
    subparsers = parser.add_subparsers()
    sweep_cli.add_parser(subparsers)
    report_cli.add_parser(subparsers)
    args = parser.parse_args(argv)
    return cli.run_guarded(args.func, args)


# ---------------------------------------------------------------- grids and names


def test_grid_is_the_product_in_file_order_and_sub_grids_are_unioned():
    grid = parse_grid({"base": {"max_epochs": 2},
                       "grid": {"loss_name": ["ContrastiveLoss", "FastAPLoss"],
                                "agg_arch": ["avgpool", "ConvAP", "GeM"]}})
    assert len(grid.cells) == 6
    assert grid.cells[:2] == [{"loss_name": "ContrastiveLoss", "agg_arch": "avgpool"},
                              {"loss_name": "ContrastiveLoss", "agg_arch": "ConvAP"}]
    assert grid.keys == ["loss_name", "agg_arch"]
    union = parse_grid({"grid": [{"agg_arch": ["ConvGeM"], "loss_name": ["A", "B"]},
                                 {"agg_arch": "CosPlace", "loss_name": ["A"]},
                                 {"agg_arch": ["ConvGeM"], "loss_name": ["A"]}]})
    assert union.cells == [{"agg_arch": "ConvGeM", "loss_name": "A"},
                           {"agg_arch": "ConvGeM", "loss_name": "B"},
                           {"agg_arch": "CosPlace", "loss_name": "A"}]


def test_runs_repeat_each_cell_per_seed_with_safe_unique_names():
    grid = parse_grid({"grid": {"agg_arch": ["ConvAP", "GeM"],
                                "test_path": [["data/sf_xs/test", "data/tokyo_xs/test"]],
                                "agg_option": [{"out_channels": 256}]},
                       "seeds": [0, 1]})
    runs = grid.runs()
    assert [(run.cell["agg_arch"], run.seed) for run in runs] == [
        ("ConvAP", 0), ("ConvAP", 1), ("GeM", 0), ("GeM", 1)]
    names = [run.exp_name for run in runs]
    assert len(set(names)) == 4
    assert names[0] == ("agg_arch-ConvAP__test_path-sf_xs-test+tokyo_xs-test__"
                        "agg_option-out_channels-256__seed-0")
    for name in names:
        assert all(char.isalnum() or char in "._+-" for char in name), name
    long = exp_name_for({"lr": [0.1] * 100}, 3)
    assert len(long) < 150 and long.endswith("__seed-3")
    assert long != exp_name_for({"lr": [0.1] * 101}, 3)


def test_values_that_slug_alike_still_get_unique_names():
    grid = parse_grid({"grid": {"group_rule": ["regex:(a)", "regex:[a]"]}})
    names = [run.exp_name for run in grid.runs()]
    assert len(set(names)) == 2


def test_flags_become_train_command_words():
    assert flag_argv("max_epochs", 2) == ["--max_epochs", "2"]
    assert flag_argv("progress_bar", False) == ["--no-progress_bar"]
    assert flag_argv("progress_bar", True) == ["--progress_bar"]
    assert flag_argv("eval_batch_size", None) == []
    assert flag_argv("test_path", ["a", "b"]) == ["--test_path", "a", "b"]
    assert flag_argv("agg_options", {"out_channels": 256, "p": 3}) == [
        "--agg_option", "out_channels=256", "--agg_option", "p=3"]
    # The words parse back to the same settings.
    from vpr.cli import build_parser
    from vpr.cli.flags import explicit_settings

    argv = ["train", *flag_argv("image_size", [32, 48]), *flag_argv("loss_options", {"beta": 40}),
            *flag_argv("progress_bar", False)]
    config = TrainConfig.from_values(explicit_settings(build_parser().parse_args(argv)))
    assert config.image_size == (32, 48) and config.loss_options == {"beta": 40}
    assert config.progress_bar is False


@pytest.mark.parametrize("data, message", [
    ({"grid": {"agg_ach": ["ConvAP"]}}, "did you mean agg_arch"),
    ({"grid": {"seed": [0, 1]}}, "--seeds"),
    ({"base": {"exp_name": "x"}, "grid": {"lr": [0.1]}}, "sweep sets it"),
    ({"base": {"lr": 0.1}, "grid": {"lr": [0.1, 0.2]}}, "both in base"),
    ({"grid": {"lr": []}}, "empty list"),
    ({"grid": {"lr": [0.1]}, "runs": 3}, "unknown section"),
    ({"base": {"lr": 0.1}}, "no grid"),
])
def test_bad_grids_are_refused_with_the_reason(data, message):
    with pytest.raises(GridError, match=message):
        parse_grid(data)


def test_bad_values_stop_the_sweep_before_any_run(tmp_path):
    grid = parse_grid({"grid": {"max_epochs": [1, "many"]}})
    with pytest.raises(GridError, match="max_epochs-many.*max_epochs: 'many' is not valid"):
        validate(grid.runs(), tmp_path)
    with pytest.raises(GridError, match="'many' is not valid"):
        run_sweep(grid, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_load_grid_takes_seeds_and_overrides_from_the_command_line(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"base": {"max_epochs": 20}, "grid": {"lr": [0.1, 0.2]}}))
    grid = load_grid(path, seeds=[3, 4], overrides={"max_epochs": 2, "num-workers": 1})
    assert grid.name == "g" and grid.seeds == [3, 4]
    assert grid.base == {"max_epochs": 2, "num_workers": 1}
    with pytest.raises(GridError, match="varied by the grid"):
        load_grid(path, overrides={"lr": 1})


@pytest.mark.parametrize("table", sorted(PAPER_TABLES))
def test_paper_grids_are_valid_and_carry_the_papers_numbers(table, tmp_path):
    grid = load_grid(REPO / "configs" / "paper" / f"{table}.yaml")
    runs = grid.runs()
    assert len(runs) == PAPER_TABLES[table]
    validate(runs, tmp_path)
    for run in runs:
        settings = run.settings
        assert settings["agg_arch"] in list_aggregators()
        assert settings["loss_name"] in list_losses()
        assert settings["miner_name"] in list_miners()
        assert settings["backbone"] == "resnet18" and settings["max_epochs"] == 20
        assert settings["test_path"] == ["data/sf_xs/test", "data/tokyo_xs/test"]
    rows = grid.paper["rows"]
    assert grid.paper["recalls"] == ["R@1", "R@5"]
    # Every cell has exactly one published row, and every published row is a cell.
    assert sorted(json.dumps({k: row[k] for k in grid.keys}) for row in rows) == sorted(
        json.dumps(cell) for cell in grid.cells)
    for row in rows:
        for label in ("SF-XS", "Tokyo-XS"):
            assert len(row[label]) == 2 and all(0 < value < 100 for value in row[label])
            assert row[label][0] <= row[label][1]  # R@1 <= R@5


def test_synthetic_grid_is_small_and_offline(tmp_path):
    grid = load_grid(REPO / "configs" / "synthetic_small.yaml")
    validate(grid.runs(), tmp_path)
    assert len(grid.runs()) <= 4
    assert grid.base["pretrained"] == "none"
    assert grid.base["max_epochs"] <= 8
    assert grid.base["train_path"].startswith("data/synthetic/")


def test_paper_table1_numbers_match_the_paper_text():
    grid = load_grid(REPO / "configs" / "paper" / "table1.yaml")
    best = next(row for row in grid.paper["rows"]
                if row["loss_name"] == "MultiSimilarityLoss" and row["agg_arch"] == "ConvAP")
    assert best["SF-XS"] == [36.3, 51.5] and best["Tokyo-XS"] == [57.1, 75.9]


def test_dataset_labels_follow_the_paper():
    assert dataset_label("data/sf_xs/test") == "SF-XS"
    assert dataset_label("/x/data/tokyo_xs/test") == "Tokyo-XS"
    assert dataset_label("data/synthetic/gsv_xs/train") == "GSV-XS"
    assert dataset_label("pitts30k") == "Pitts30k"
    assert dataset_labels(["d/sf_xs/val", "d/sf_xs/test"]) == {
        "d/sf_xs/val": "SF-XS val", "d/sf_xs/test": "SF-XS test"}


def test_child_error_is_the_vpr_error_line():
    output = "log\r\nvpr: error: unknown aggregator 'X'\n"
    assert _child_error(output, 2) == "unknown aggregator 'X'"
    assert _child_error("Traceback...\nMemoryError\n", 1) == "exit code 1: MemoryError"


# ---------------------------------------------------------------- running


def test_a_lock_held_by_a_live_process_is_respected(tmp_path):
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started": "earlier"}))
    with pytest.raises(SweepError, match="being run by process"):
        SweepLock(tmp_path).acquire()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 7, "host": socket.gethostname()}))
    with SweepLock(tmp_path):  # a dead holder: taken over
        pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_finished_runs_with_other_settings_are_not_mixed_in(tmp_path):
    grid = parse_grid({"base": {"max_epochs": 2}, "grid": {"lr": [0.1]}})
    folder = tmp_path / "lightning_logs" / grid.runs()[0].exp_name
    folder.mkdir(parents=True)
    (folder / "done.json").write_text(json.dumps(
        {"settings": {"max_epochs": 5, "lr": 0.1, "num_workers": 3}, "tests": []}))
    with pytest.raises(SweepError, match="max_epochs was 5"):
        plan_sweep(grid, tmp_path)
    # A flag that does not change results (num_workers) may differ.
    (folder / "done.json").write_text(json.dumps(
        {"settings": {"max_epochs": 2, "lr": 0.1, "num_workers": 3}, "tests": []}))
    assert [item.action for item in plan_sweep(grid, tmp_path)] == ["skip"]


# ---------------------------------------------------------------- reports


def _write_done(sweep_dir: Path, name: str, cell: dict, seed: int,
                recalls: dict[str, tuple[float, float]]) -> None:
    folder = sweep_dir / "lightning_logs" / name
    folder.mkdir(parents=True)
    tests = [{"dataset": dataset, "recalls": {"R@1": r1, "R@5": r5, "R@10": 99.0}}
             for dataset, (r1, r5) in recalls.items()]
    (folder / "done.json").write_text(json.dumps(
        {"exp_name": name, "cell": cell, "seed": seed, "settings": cell, "tests": tests}))


@pytest.fixture
def two_seed_sweep(tmp_path) -> Path:
    """Two cells x two seeds, written by hand; one run of the second cell failed."""
    sweep_dir = tmp_path / "sweep"
    sf, tokyo = "data/sf_xs/test", "data/tokyo_xs/test"
    cells = [{"loss_name": "ContrastiveLoss", "agg_arch": "ConvAP"},
             {"loss_name": "MultiSimilarityLoss", "agg_arch": "ConvAP"}]
    runs = []
    for index, cell in enumerate(cells):
        for seed in (0, 1):
            name = exp_name_for(cell, seed)
            runs.append({"exp_name": name, "cell": cell, "seed": seed, "status": "done"})
            if index == 1 and seed == 1:
                runs[-1].update(status="failed", error="RuntimeError: out of memory")
                continue
            base = 30.0 + 10 * index + 2 * seed  # cell 0: 30, 32; cell 1: 40
            _write_done(sweep_dir, name, cell, seed, {sf: (base, base + 15),
                                                      tokyo: (base + 20, base + 30)})
    (sweep_dir / "sweep.json").write_text(json.dumps({
        "name": "two seeds", "keys": ["loss_name", "agg_arch"], "seeds": [0, 1],
        "base": {"test_path": [sf, tokyo], "max_epochs": 20, "num_workers": 8}, "runs": runs}))
    paper = {"source": "Table 1", "recalls": ["R@1", "R@5"], "rows": [
        {"loss_name": "ContrastiveLoss", "agg_arch": "convap", "SF-XS": [35.9, 50.3],
         "Tokyo-XS": [52.4, 73.0]}]}
    (sweep_dir / "grid.yaml").write_text(yaml.safe_dump({"name": "two seeds", "paper": paper}))
    return sweep_dir


def test_report_shows_mean_and_std_over_seeds(two_seed_sweep):
    text = markdown_table(collect(two_seed_sweep))
    lines = text.splitlines()
    assert lines[0] == "# two seeds"
    assert ("| Loss | Aggregator | SF-XS R@1 | SF-XS R@5 | Tokyo-XS R@1 | Tokyo-XS R@5 | runs |"
            in lines)
    # stdev([30, 32]) = 1.414...
    row = "| ContrastiveLoss | ConvAP | 31.0 ± 1.4 | 46.0 ± 1.4 | 51.0 ± 1.4 | 61.0 ± 1.4 | 2/2 |"
    assert row in lines
    assert "| MultiSimilarityLoss | ConvAP | 40.0 | 55.0 | 60.0 | 70.0 | 1/2 |" in lines
    assert "Shared settings: max_epochs=20" in lines
    assert any("out of memory" in line for line in lines)


def test_report_compares_with_the_paper_and_writes_csv_and_chart(two_seed_sweep, tmp_path):
    out = tmp_path / "report"
    assert vpr(["report", str(two_seed_sweep), "--out", str(out), "--compare"]) == 0
    text = (out / "report.md").read_text()
    assert "| SF-XS R@1 | SF-XS R@1 (paper) |" in text
    assert "| ContrastiveLoss | ConvAP | 31.0 ± 1.4 | 35.9 | 46.0 ± 1.4 | 50.3 |" in text
    assert "| MultiSimilarityLoss | ConvAP | 40.0 | — |" in text
    import csv

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [row["loss_name"] for row in rows] == ["ContrastiveLoss", "MultiSimilarityLoss"]
    assert float(rows[0]["SF-XS R@1 mean"]) == 31.0
    assert float(rows[0]["SF-XS R@1 std"]) == pytest.approx(2 ** 0.5, abs=1e-3)
    assert rows[0]["SF-XS R@1 paper"] == "35.900"
    assert rows[1]["runs_done"] == "1" and rows[1]["SF-XS R@1 std"] == ""
    runs = list(csv.DictReader((out / "runs.csv").open()))
    assert [run["status"] for run in runs] == ["done", "done", "done", "failed"]
    assert (out / "recalls.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_sweep_json_reads_the_done_markers(two_seed_sweep, capsys):
    (two_seed_sweep / "sweep.json").unlink()
    results = collect(two_seed_sweep)
    assert results.keys == ["loss_name", "agg_arch"]
    assert len(results.runs) == 3
    assert vpr(["report", str(two_seed_sweep), "--recalls", "1", "10"]) == 0
    assert "| Tokyo-XS R@10 |" in capsys.readouterr().out


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert vpr(["report", str(tmp_path)]) == 2
    assert "no sweep here" in capsys.readouterr().err


def test_dry_run_lists_runs_and_commands_without_writing(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = vpr(["sweep", "--grid", str(REPO / "configs" / "paper" / "table3.yaml"),
                "--out", str(out), "--dry_run", "--seeds", "0", "1", "--set", "max_epochs=1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "18 run(s):" in text
    assert "miner_name-PairMarginMiner__loss_name-FastAPLoss__seed-1" in text
    assert "--max_epochs 1" in text and "--agg_arch ConvAP" in text
    assert not out.exists()


