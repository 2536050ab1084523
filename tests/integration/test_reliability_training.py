"""Training reliability: atomic checkpoints on any file system, disk faults, options and
values checked before work, a failed start that frees its name, Ctrl-C that says how to
resume. Real mounts (tmpfs, read-only), real processes, real signals."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.images import write_image
from helpers.paths import REPO

from vpr.cli import main as vpr_main

FLAGS = ["--image_size", "32", "--pretrained", "none", "--batch_size", "2",
         "--img_per_place", "2", "--min_img_per_place", "2", "--num_workers", "0",
         "--descriptors_dim", "16", "--no-progress_bar", "--accelerator", "cpu", "--seed", "3"]


@pytest.fixture(autouse=True)
def _quiet_stale_log_handlers(monkeypatch):
    # In-process runs: a library's log handler may still hold an earlier test's captured
    # stream, now closed; its "Logging error" report is pytest's artefact, not vpr's output.
    monkeypatch.setattr(logging, "raiseExceptions", False)


def _mount(folder: Path, options: str) -> None:
    """Mounts a tmpfs at ``folder`` or skips the test, saying why."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def mounts():
    """Mounts tmpfs folders on demand; unmounts them after the test."""
    mounted: list[Path] = []

    def mount(folder: Path, options: str) -> Path:
        _mount(folder, options)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _train_args(train: Path, test: Path, logs: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--train_path", str(train), "--val_path", str(test), "--log_dir",
            str(logs), "--exp_name", name, *FLAGS, *extra]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("vpr: ")]
    assert len(errors) == 1 and errors[0].startswith("vpr: error: "), err
    return errors[0]


# ---- 1. checkpoints are atomic wherever --log_dir lives -------------------------------------

_SAVER = """
import os, signal, sys, threading, torch
from vpr.training.run import _trainer, resolve_config
target = sys.argv[1]
config = resolve_config({"accelerator": "cpu", "progress_bar": False})
io = _trainer(config, logger=False).strategy.checkpoint_io
whole = []

def kill_when_partial():
    # The worst instant: the target exists but is shorter than a whole checkpoint.
    while True:
        try:
            size = os.stat(target).st_size
        except FileNotFoundError:
            continue
        if whole and size < whole[0]:
            os.kill(os.getpid(), signal.SIGKILL)

sys.setswitchinterval(1e-5)  # the watcher runs while the main thread copies
threading.Thread(target=kill_when_partial, daemon=True).start()
n = 0
while True:
    n += 1
    io.save_checkpoint({"n": n, "w": torch.full((8_000_000,), float(n))}, target)
    whole[:] = [os.stat(target).st_size]
    print(n, flush=True)
"""


@pytest.mark.slow
def test_a_kill_at_any_instant_keeps_a_whole_checkpoint_across_file_systems(tmp_path, mounts):
    # $TMPDIR (tmp_path, on the root file system) and the log dir (a tmpfs) differ.
    logs = mounts(tmp_path / "logs", "size=128m")
    target = logs / "last.ckpt"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    rng = random.Random(0)
    for _ in range(2):
        process = subprocess.Popen([sys.executable, "-c", _SAVER, str(target)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout.readline().strip() == "1", "the first save did not finish"
        # The child kills itself if it ever sees a partial target; else we kill it at a
        # random instant of a later save.
        if process.stdout.readline().strip() == "2":
            time.sleep(rng.uniform(0.0, 0.5))
            process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        stored = torch.load(target, weights_only=True)  # whole: it loads, with its values
        assert stored["w"].shape == (8_000_000,) and bool((stored["w"] == stored["n"]).all())
    # A SIGKILL may leave our temporary file beside the target, never anything else.
    assert all(p.name.startswith(".last.ckpt.") for p in logs.iterdir() if p != target)


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, mounts):
    from vpr.training.run import _trainer, resolve_config
    from vpr.utils.disk import DiskError

    # The Trainer's writer, with the folder on another file system than $TMPDIR.
    folder = mounts(tmp_path / "small", "size=1m")
    target = folder / "last.ckpt"
    config = resolve_config({"accelerator": "cpu", "progress_bar": False})
    io = _trainer(config, logger=False).strategy.checkpoint_io
    io.save_checkpoint({"w": torch.ones(50_000)}, target)  # 200 kB: fits
    with pytest.raises(DiskError) as raised:  # Lightning's writer: OSError, target truncated
        io.save_checkpoint({"w": torch.zeros(400_000)}, target)  # 1.6 MB: does not
    message = str(raised.value)
    assert "\n" not in message and str(folder) in message and "MB" in message
    assert "needs 1.6 MB" in message
    assert bool((torch.load(target, weights_only=True)["w"] == 1).all())
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]


# ---- 6. a failed start does not claim its name ----------------------------------------------

@pytest.mark.parametrize("bad", [["--batch_size", "-4"], ["--lr", "-1"], ["--max_epochs", "0"],
                                 ["--num_workers", "-1"], ["--positive_dist_threshold", "0"]])
def test_invalid_values_are_refused_before_the_run_folder_is_made(bad, tiny_train,
                                                                  tiny_retrieval, tmp_path,
                                                                  capsys):
    logs = tmp_path / "logs"
    try:
        code = vpr_main(_train_args(tiny_train, tiny_retrieval, logs, "run", "--max_epochs",
                                    "1", *bad))
    except SystemExit as exit_:  # refused by the flag's own check (the settings schema)
        code = exit_.code
        err = capsys.readouterr().err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("vpr train: error: argument --") and bad[0] in last, err
        assert f"'{bad[1]}'" in last, err
    else:
        assert f"--{bad[0].lstrip('-')} {bad[1]}" in _one_line_error(capsys)
    assert code == 2
    assert not (logs / "lightning_logs" / "run").exists()
    if bad[0] == "--batch_size":  # the corrected command runs under the same name
        assert vpr_main(_train_args(tiny_train, tiny_retrieval, logs, "run", "--max_epochs",
                                    "1")) == 0
        assert (logs / "lightning_logs" / "run" / "checkpoints" / "last.ckpt").is_file()


def test_a_start_that_fails_after_the_folder_was_made_removes_it(tiny_train, tiny_retrieval,
                                                                 tmp_path, capsys):
    logs = tmp_path / "logs"
    # An unknown strategy is refused by Lightning's Trainer, after config.yaml was written
    # (an unknown precision is now refused by its flag, before anything).
    code = vpr_main(_train_args(tiny_train, tiny_retrieval, logs, "run", "--strategy",
                                "no_such_strategy"))
    assert code == 2, capsys.readouterr().err
    assert not (logs / "lightning_logs" / "run").exists()


def test_a_folder_holding_other_files_is_kept_after_a_failed_start(tmp_path):
    from vpr.training.startup import release_folder_on_failed_start

    # Only what a start-up writes may be removed; here a checkpoint appeared meanwhile.
    run = tmp_path / "run"
    with pytest.raises(RuntimeError), release_folder_on_failed_start(run, created=True):
        (run / "checkpoints").mkdir(parents=True)
        (run / "config.yaml").write_text("x")
        (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
        raise RuntimeError("set-up failed")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    with pytest.raises(RuntimeError), release_folder_on_failed_start(run.parent / "b", True):
        (run.parent / "b").mkdir()
        (run.parent / "b" / "info.log").write_text("x")
        raise RuntimeError("set-up failed")
    assert not (run.parent / "b").exists()


# ---- 8. Ctrl-C exits 130 and prints how to resume -------------------------------------------

@pytest.fixture
def wider_train(tmp_path: Path) -> Path:
    """12 places x 2 images: 6 steps per epoch."""
    root = tmp_path / "wide"
    for place in range(12):
        for image in range(2):
            write_image(root / "City", 100.0 * place + image, 0.0, f"{place:03d}_City",
                        seed=500 + 10 * place + image, size=(32, 32))
    return root


def test_ctrl_c_exits_130_with_the_resume_command(wider_train, tiny_retrieval, tmp_path):
    logs = tmp_path / "logs"
    process = subprocess.Popen(
        [sys.executable, "-m", "vpr", *_train_args(wider_train, tiny_retrieval, logs, "x",
                                                    "--max_epochs", "500")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = logs / "lightning_logs" / "x" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before the signal"
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"vpr train --resume {last}" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    torch.load(last, weights_only=True)  # the checkpoint it names is whole


# ---- 4. disk faults are user errors ---------------------------------------------------------

def _fill(folder: Path) -> None:
    """Fills a small tmpfs until it refuses more."""
    with open(folder / "filler", "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
                file.flush()
        except OSError:
            pass


@pytest.fixture
def locate_world(tmp_path: Path) -> dict[str, Path]:
    """An untrained checkpoint, a 2-place database and its index."""
    from helpers.places import save_tiny_checkpoint, write_place

    from vpr.locate import LocationIndex

    for place in range(2):
        write_place(tmp_path / "database", place)
    ckpt = save_tiny_checkpoint(tmp_path / "model.ckpt")
    LocationIndex.build(tmp_path / "index", ckpt, tmp_path / "database", device="cpu")
    return {"database": tmp_path / "database", "ckpt": ckpt, "index": tmp_path / "index"}


def _command(name: str, out: Path, tiny_train: Path, tiny_retrieval: Path,
             world: dict[str, Path] | None) -> list[str]:
    if name == "train":
        return _train_args(tiny_train, tiny_retrieval, out / "logs", "run", "--max_epochs", "1")
    if name == "index build":
        return ["index", "build", "--ckpt_path", str(world["ckpt"]), "--database",
                str(world["database"]), "--out", str(out / "index"), "--accelerator", "cpu",
                "--no-progress_bar"]
    if name == "locate --map":
        photo = sorted(path for path in world["database"].rglob("*") if path.is_file())[0]
        return ["locate", str(photo), "--index", str(world["index"]), "--accelerator", "cpu",
                "--map", str(out / "map.html")]
    if name == "data stats":
        return ["data", "stats", str(tiny_retrieval), "--out", str(out / "stats")]
    return ["synth", "--preset", "tiny", "--out", str(out / "city"), "--no-progress_bar"]


@pytest.mark.parametrize("fault", ["read-only", "full"])
@pytest.mark.parametrize("name", ["train", "index build", "locate --map", "data stats", "synth"])
def test_a_read_only_or_full_output_folder_is_one_line(name, fault, request, tmp_path, mounts,
                                                       tiny_train, tiny_retrieval, capsys):
    world = request.getfixturevalue("locate_world") if name.split()[0] in ("index",
                                                                            "locate") else None
    out = mounts(tmp_path / "out", "ro,size=1m" if fault == "read-only" else "size=64k")
    if fault == "full":
        _fill(out)
    capsys.readouterr()
    assert vpr_main(_command(name, out, tiny_train, tiny_retrieval, world)) == 2
    error = _one_line_error(capsys)
    assert str(out) in error
    assert ("read-only" if fault == "read-only" else "no space left") in error


def test_a_disk_fault_after_the_checks_is_one_line_naming_the_file(capsys):
    import argparse
    import errno

    from vpr.cli import run_guarded

    def fails(args: argparse.Namespace) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out/part-3.npy")

    assert run_guarded(fails, argparse.Namespace()) == 2
    assert _one_line_error(capsys) == ("vpr: error: cannot write /data/out/part-3.npy: no space "
                                       "left on the device")


# ---- 5. options are checked before work starts ----------------------------------------------

@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--agg_option", "foo=1", "unknown option 'foo' for aggregator ConvAP; valid options: "
                              "out_channels (int or None), s1 (int), s2 (int)"),
    ("--agg_option", "s1=two", "option s1='two' for aggregator ConvAP must be int"),
    ("--loss_option", "betta=40", "unknown option 'betta' for loss MultiSimilarityLoss; valid "
                                  "options: alpha (float), beta (float), base (float)"),
    ("--miner_option", "epsilon=wide", "option epsilon='wide' for miner MultiSimilarityMiner "
                                       "must be float"),
])
def test_a_bad_option_lists_the_valid_keys_before_work(flag, value, expected, tiny_train,
                                                       tiny_retrieval, tmp_path, capsys):
    logs = tmp_path / "logs"
    assert vpr_main(_train_args(tiny_train, tiny_retrieval, logs, "run", flag, value)) == 2
    assert expected in _one_line_error(capsys)
    assert not (logs / "lightning_logs" / "run").exists()


def _truncated_state_dict(path: Path) -> Path:
    whole = path.with_suffix(".whole")
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, whole)
    path.write_bytes(whole.read_bytes()[:200])
    return path


@pytest.mark.parametrize(("kind", "expected"), [("text", "a text file"),
                                                ("empty", "an empty file"),
                                                ("truncated", "truncated")])
def test_an_unreadable_pretrained_file_says_what_it_is(kind, expected, tiny_train,
                                                       tiny_retrieval, tmp_path, capsys):
    weights = tmp_path / "weights.pth"
    if kind == "text":
        weights.write_text("these are not weights\n")
    elif kind == "empty":
        weights.write_bytes(b"")
    else:
        _truncated_state_dict(weights)
    args = _train_args(tiny_train, tiny_retrieval, tmp_path / "logs", "run")
    args[args.index("--pretrained") + 1] = str(weights)
    assert vpr_main(args) == 2
    error = _one_line_error(capsys)
    assert f"pretrained={weights}" in error and expected in error


def test_a_text_file_as_a_checkpoint_is_not_a_checkpoint(tiny_retrieval, tmp_path, capsys):
    text = tmp_path / "model.ckpt"
    text.write_text("epoch=3 R@1=80\n")
    code = vpr_main(["test", "--ckpt_path", str(text), "--test_path", str(tiny_retrieval),
                     "--accelerator", "cpu", "--num_workers", "0", "--no-progress_bar"])
    assert code == 2
    error = _one_line_error(capsys)
    assert "not a checkpoint: a text file" in error and "could run code" not in error


def test_imagenet_weights_out_of_reach_is_one_message_through_main_py(tiny_train,
                                                                      tiny_retrieval, tmp_path):
    root = REPO
    # An empty torch hub cache and a proxy nobody listens on: the fetch fails, offline.
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "hub"), https_proxy="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="",
               PYTHONPATH=str(root / "src"))
    flags = list(FLAGS)
    flags[flags.index("--pretrained") + 1] = "imagenet"
    done = subprocess.run(
        [sys.executable, str(root / "main.py"), "--train_path", str(tiny_train), "--val_path",
         str(tiny_retrieval), "--log_dir", str(tmp_path / "logs"), "--max_epochs", "1",
         *flags], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("vpr: ")]
    assert len(errors) == 1 and "ImageNet weights" in errors[0], done.stderr
    assert "pretrained='none'" in errors[0] and "pretrained='/path/to/weights.pth'" in errors[0]
