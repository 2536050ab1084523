"""`vpr index build --devices 2`: two CPU processes (gloo) build the one-process index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import paths
from helpers.places import save_tiny_checkpoint, write_place

from vpr.locate import LocationIndex
from vpr.locate.distributed import shard_bounds

SRC = str(paths.SRC)


def test_shards_cover_every_row_once():
    for rows in (0, 1, 5, 7, 12):
        for world_size in (1, 2, 3, 5):
            bounds = [shard_bounds(rows, world_size, rank) for rank in range(world_size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == rows
            assert all(end == start for (_, end), (start, _) in zip(bounds, bounds[1:]))
            sizes = [end - start for start, end in bounds]
            assert max(sizes) - min(sizes) <= 1
    assert shard_bounds(7, 3, 0) == (0, 3) and shard_bounds(7, 3, 2) == (5, 7)


def build_command(ckpt: Path, database: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vpr", "index", "build", "--ckpt_path", str(ckpt),
            "--database", str(database), "--out", str(out), "--device", "cpu",
            "--precision", "32", "--batch_size", "2", "--no_progress_bar", *extra]


@pytest.mark.slow  # two processes that import torch and Lightning: ~30 s on 2 cores
def test_two_process_build_equals_one_process_build(tmp_path):
    for place in range(3):
        write_place(tmp_path / "database", place)  # 9 images: shards of 5 and 4
    ckpt = save_tiny_checkpoint(tmp_path / "model.ckpt")
    environment = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   "OMP_NUM_THREADS": "1"}
    results = [subprocess.run(build_command(ckpt, tmp_path / "database", tmp_path / name,
                                            *extra),
                              env=environment, capture_output=True, text=True, timeout=600,
                              cwd=tmp_path)
               for name, extra in (("one", ()), ("two", ("--devices", "2")))]
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    # Two ranks described a shard each; only rank 0 reports.
    logs = results[1].stdout + results[1].stderr
    assert "rank 0 of 2: describing images 0 to 4" in logs
    assert "rank 1 of 2: describing images 5 to 8" in logs
    assert results[1].stdout.count("Built LocationIndex") == 1
    one, two = LocationIndex.load(tmp_path / "one"), LocationIndex.load(tmp_path / "two")
    assert len(one) == len(two) == 9
    assert list(one.paths) == list(two.paths)
    assert [one.record(i) for i in range(9)] == [two.record(i) for i in range(9)]
    np.testing.assert_allclose(np.asarray(two.descriptors), np.asarray(one.descriptors),
                               rtol=0, atol=1e-6)
    assert one.meta["model"] == two.meta["model"] and one.meta["index"] == two.meta["index"]
    # Rank 1's rows hold descriptors, not the zeros the shared file starts with.
    assert np.abs(np.asarray(two.descriptors[5:])).sum(axis=1).min() > 0
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        ".lock", "CURRENT", "store-1", "v-1"]
