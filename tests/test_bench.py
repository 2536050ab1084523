"""The speed benchmark runs end to end on the CPU (a smoke test: figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


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
    assert "| seed |" in done.stdout and "| fast |" in done.stdout
