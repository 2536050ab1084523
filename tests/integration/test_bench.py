"""The speed benchmark runs end to end on the CPU (a smoke test: figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.paths import REPO

BENCH = REPO / "bench"


@pytest.mark.slow  # bench/speed.py in a subprocess: minutes on 2 cores under load
def test_speed_benchmark_smoke(tmp_path):
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "speed.py"), "--small", "--device", "cpu", "--workers", "1",
         "--data", str(tmp_path / "data"), "--out", str(out),
         "--configs", "seed", "fast", "fast+device_decode"],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for config in ("seed", "fast", "fast+device_decode"):
        row = figures[config]
        for key in ("train_img_s", "extract_img_s", "input_img_s", "model_train_img_s",
                    "model_infer_img_s", "host_peak_mib"):
            assert row[key] > 0, (config, key)
    assert figures["seed"]["precision"] == "32-true" and not figures["seed"]["channels_last"]
    assert figures["fast"]["channels_last"]
    assert figures["fast"]["decode"] == "worker"
    assert figures["fast+device_decode"]["decode"] == "device"
    assert figures["fast"]["train_img_s_vs_seed"] > 0
    # The report: a header, a separator, then one row per configuration, in the order
    # asked, every row with the header's columns and the JSON's figures in them.
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:3] == ["config", "precision", "train img/s"] and len(header) == 12
    assert set(table[1].replace("|", "").split()) <= {"---", "---:"}
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert [row[0] for row in rows] == ["seed", "fast", "fast+device_decode"]
    for row in rows:
        assert len(row) == len(header), row
        assert row[2] == f"{figures[row[0]]['train_img_s']:.1f}"
        assert row[1].startswith(figures[row[0]]["precision"])
    assert rows[0][3] == "1.00x"
    assert rows[1][3] == f"{figures['fast']['train_img_s_vs_seed']:.2f}x"
    assert figures["device"] and figures["rounds"] == 1


def test_rounds_report_medians_and_same_round_ratios():
    sys.path.insert(0, str(BENCH))
    try:
        from speed import summarize
    finally:
        sys.path.remove(str(BENCH))
    keys = ("train_img_s", "extract_img_s", "model_train_img_s")
    seed = [dict.fromkeys(keys, value) | {"precision": "32-true"} for value in (10.0, 5.0, 20.0)]
    fast = [dict.fromkeys(keys, value) | {"precision": "bf16-mixed"}
            for value in (12.0, 15.0, 60.0)]
    figures = summarize({"seed": seed, "fast": fast})
    assert figures["seed"]["train_img_s"] == 10.0 and figures["fast"]["train_img_s"] == 15.0
    # Ratios per round are 1.2, 3.0 and 3.0: their median, not 15 / 10 from the medians.
    assert figures["fast"]["train_img_s_vs_seed"] == 3.0
    assert figures["fast"]["precision"] == "bf16-mixed"
    assert "train_img_s_vs_seed" not in figures["seed"]
