"""One writer per index, no instant without a complete index, crash leftovers recovered."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import paths
from helpers.legacy_index import as_format_1
from helpers.places import save_tiny_checkpoint, write_place

from vpr.locate import LocationIndex, storage
from vpr.utils.locking import FileLock, LockTimeoutError, lock_holder

SRC = str(paths.SRC)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("world")
    write_place(root / "database", 0)
    write_place(root / "a", 1)
    write_place(root / "b", 2)
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    LocationIndex.build(root / "base", ckpt, root / "database", device="cpu")
    return {"root": root, "ckpt": ckpt, "base": root / "base"}


@pytest.fixture
def index_copy(world, tmp_path) -> Path:
    folder = tmp_path / "index"
    shutil.copytree(world["base"], folder)
    return folder


@pytest.fixture
def warnings_seen(caplog):
    # setup_logging (run by other tests' CLI calls) stops `vpr` records from propagating.
    logger = logging.getLogger("vpr")
    propagate, logger.propagate = logger.propagate, True
    caplog.set_level(logging.WARNING, logger="vpr")
    yield caplog
    logger.propagate = propagate


def vpr_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "vpr", *argv]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


# ---- the lock


def test_lock_is_exclusive_names_its_holder_and_dies_with_it(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from vpr.utils.locking import FileLock;"
         "lock = FileLock(sys.argv[2]); lock.acquire(); print('held', flush=True);"
         "time.sleep(60)", SRC, str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_holder(path) == holder.pid
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=f"pid {holder.pid}.*lock_timeout"):
            FileLock(path, timeout=0.3, what="index X").acquire()
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    # Killed without releasing: the kernel dropped the lock with the process.
    with FileLock(path, timeout=0) as lock:
        assert lock.held and lock_holder(path) == os.getpid()


@pytest.mark.slow  # two processes that import torch: ~30 s on 2 cores
def test_two_concurrent_adds_keep_both_sets(world, index_copy):
    """Two `vpr index add` processes of different images: the index ends with both."""
    processes = [
        subprocess.Popen(vpr_command("index", "add", "--index", str(index_copy), "--images",
                                     str(world["root"] / name), "--device", "cpu",
                                     "--no_progress_bar", "--lock_timeout", "120"),
                         env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=240) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    index = LocationIndex.load(index_copy)
    names = {Path(path).parent.name for path in index.paths}
    assert len(index) == 9 and names == {"database", "a", "b"}
    assert index.descriptors.shape == (9, 32) and index.index.ntotal == 9
    # Each added image finds itself first.
    _, indices = index.search(np.asarray(index.descriptors), k=1)
    assert indices[:, 0].tolist() == list(range(9))
    assert storage.leftovers(index_copy) == []


def test_a_writer_waits_then_refuses_naming_the_holder(world, index_copy):
    with FileLock(index_copy / storage.LOCK_FILE):
        result = subprocess.run(
            vpr_command("index", "add", "--index", str(index_copy), "--images",
                        str(world["root"] / "a"), "--device", "cpu", "--lock_timeout", "0.5"),
            env=environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"Waiting for pid {os.getpid()}" in result.stdout  # vpr logs to stdout
    assert f"vpr: error: index {index_copy} is in use by another process (pid {os.getpid()}" \
        in result.stderr
    assert "Traceback" not in result.stderr
    assert len(LocationIndex.load(index_copy)) == 3


def test_add_rereads_an_index_grown_by_another_process(world, index_copy):
    stale = LocationIndex.load(index_copy)
    LocationIndex.load(index_copy).add(world["root"] / "a", device="cpu")
    assert stale.add(world["root"] / "b", device="cpu") == 3
    assert len(LocationIndex.load(index_copy)) == 9 and len(stale) == 9


# ---- the swap has no window


def test_the_index_folder_is_never_renamed_and_current_is_replaced_atomically(
        world, index_copy, monkeypatch):
    """Look at the index from inside the writer, at each step of the swap."""
    seen = []
    real_replace = os.replace

    def watching_replace(source, target):
        # Before and after each rename the index must load, complete.
        seen.append(len(LocationIndex.load(index_copy)))
        assert Path(target) != index_copy and Path(source) != index_copy
        real_replace(source, target)
        seen.append(len(LocationIndex.load(index_copy)))

    monkeypatch.setattr(os, "replace", watching_replace)
    LocationIndex.load(index_copy).add(world["root"] / "a", device="cpu")
    # Every rename (files of the new version, the version folder) leaves the old index
    # current and complete, until the last one, the pointer's, makes the new one current.
    assert len(seen) >= 4 and set(seen[:-1]) == {3} and seen[-1] == 6


def test_a_reader_whose_version_vanishes_reads_current_again(world, index_copy, monkeypatch):
    old = storage.current_version(index_copy)
    LocationIndex.load(index_copy).add(world["root"] / "a", device="cpu")
    assert not old.exists()
    calls = []
    real = storage.current_version

    def first_stale(index):
        calls.append(index)
        return old if len(calls) == 1 else real(index)

    monkeypatch.setattr(storage, "current_version", first_stale)
    assert len(LocationIndex.load(index_copy)) == 6


# ---- crash leftovers, one case per step of a write


def crash_during_write(index: Path) -> None:
    unfinished = storage.new_version_folder(index)
    (unfinished / "descriptors.npy").write_bytes(b"\x93NUMPY half")


def crash_after_version_rename(index: Path) -> None:
    unfinished = storage.new_version_folder(index)
    shutil.copytree(storage.current_version(index), unfinished, dirs_exist_ok=True)
    os.replace(unfinished, index / unfinished.name[1:].removesuffix(".tmp"))


def crash_while_writing_the_pointer(index: Path) -> None:
    (index / ".CURRENT.abc123.tmp").write_text("v-")


def crash_before_deleting_the_old_version(index: Path) -> None:
    old = storage.current_version(index)
    new = index / "v-7"
    shutil.copytree(old, new)
    (index / "CURRENT").write_text("v-7\n")
    assert old.exists()


@pytest.mark.parametrize("crash", [crash_during_write, crash_after_version_rename,
                                   crash_while_writing_the_pointer,
                                   crash_before_deleting_the_old_version])
def test_leftovers_of_a_crash_are_cleaned_on_next_use(crash, world, index_copy,
                                                      warnings_seen):
    crash(index_copy)
    assert storage.leftovers(index_copy)
    index = LocationIndex.load(index_copy)
    assert len(index) == 3
    assert storage.leftovers(index_copy) == []
    assert "removing" in warnings_seen.text and "interrupted" in warnings_seen.text
    # Only the lock, the pointer and one version remain; the index still grows.
    assert len([entry for entry in index_copy.iterdir() if entry.name.startswith("v-")]) == 1
    assert index.add(world["root"] / "a", device="cpu") == 3


def test_a_writer_cleans_leftovers_that_a_busy_reader_left_alone(world, index_copy):
    crash_during_write(index_copy)
    with FileLock(index_copy / storage.LOCK_FILE, timeout=0):
        # Another process writes: a reader neither waits nor touches anything.
        assert len(LocationIndex.load(index_copy)) == 3
        assert storage.leftovers(index_copy)
    assert LocationIndex.load(index_copy).add(world["root"] / "a", device="cpu") == 3
    assert storage.leftovers(index_copy) == []


def legacy_index(index_copy: Path) -> Path:
    """The layout of earlier vpr versions: the data files (format 1) directly in the folder."""
    return as_format_1(index_copy)


def test_a_crash_between_the_legacy_renames_restores_the_old_index(index_copy, warnings_seen):
    legacy = legacy_index(index_copy)
    # The earlier writer had moved the index aside and not yet renamed the new one in.
    old = legacy.with_name(f".{legacy.name}.old-4242")
    os.replace(legacy, old)
    unfinished = legacy.with_name(f".{legacy.name}.k3j_a9x2.tmp")
    unfinished.mkdir()
    index = LocationIndex.load(legacy)
    assert len(index) == 3 and index.data_path == legacy / "v-1"  # restored, then migrated
    assert "restored the previous index" in warnings_seen.text
    assert not old.exists() and not unfinished.exists()


def test_a_legacy_index_is_migrated_on_first_use_then_grows(world, index_copy):
    legacy = legacy_index(index_copy)
    stale_old = legacy.with_name(f".{legacy.name}.old-99")  # crash after the legacy swap
    shutil.copytree(legacy, stale_old)
    assert len(LocationIndex.load(legacy)) == 3 and not stale_old.exists()
    assert (legacy / "CURRENT").read_text() == "v-1\n"
    assert LocationIndex.load(legacy).add(world["root"] / "a", device="cpu") == 3
    assert (legacy / "CURRENT").read_text() == "v-2\n"
    assert sorted(entry.name for entry in legacy.iterdir()) == [".lock", "CURRENT", "store-1",
                                                                "v-2"]
    assert json.loads((legacy / "v-2" / "version.json").read_text())["rows"] == 6


def test_build_over_a_folder_that_is_not_an_index_is_refused(world, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a location index"):
        LocationIndex.build(folder, world["ckpt"], world["root"] / "a", device="cpu",
                            overwrite=True)
    assert (folder / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_the_data_in_place(world, index_copy):
    rebuilt = LocationIndex.build(index_copy, world["ckpt"], world["root"] / "a",
                                  device="cpu", overwrite=True)
    assert {Path(path).parent.name for path in rebuilt.paths} == {"a"}
    assert sorted(entry.name for entry in index_copy.iterdir()) == [".lock", "CURRENT",
                                                                    "store-2", "v-2"]


def test_a_failed_build_leaves_no_folder(world, tmp_path):
    with pytest.raises(FileNotFoundError):
        LocationIndex.build(tmp_path / "new", world["ckpt"], tmp_path / "missing",
                            device="cpu")
    assert not (tmp_path / "new").exists()
