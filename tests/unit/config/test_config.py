"""The settings schema: one declaration per option reaches the CLI, files, checkpoints and
the module; old spellings and old files still read; imports point down the layers."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.paths import REPO

from vpr.cli import build_parser
from vpr.cli.flags import explicit_settings
from vpr.config import (
    FIELDS,
    MODULE_SECTIONS,
    ModuleConfig,
    TrainConfig,
    check_values,
    iter_fields,
    read_settings,
)
from vpr.config.fields import default_of, option_of


def _registry_names(registry: str) -> list[str]:
    if registry == "aggregators":
        from vpr.models.aggregators import list_aggregators

        return list_aggregators()
    if registry == "backbones":
        from vpr.models.backbones import list_backbones

        return list_backbones()
    if registry == "published":
        from vpr.models.pretrained import PUBLISHED_MODELS

        return sorted(PUBLISHED_MODELS)
    from vpr.training.losses import list_losses, list_miners

    return list_losses() if registry == "losses" else list_miners()


def _other_value(field: dataclasses.Field):
    """A valid value of ``field`` that is not its default, built from the declaration."""
    meta, default = option_of(field), default_of(field)
    if meta.registry:
        return next(name for name in _registry_names(meta.registry)
                    if name.lower() != str(default).lower())
    if meta.choices:
        return next(choice for choice in meta.choices if choice != default)
    if meta.kind == "switch":
        return not default
    if meta.kind == "pairs":
        return {"probe_option": 7}
    if meta.kind == "list":
        start = tuple(default or (40,))
        return tuple(sorted({*start, meta.type(max(start) + 8)}))
    if meta.type is str:
        return f"probe-{default}"
    return meta.type((default or 1) * 2 + 1)


def _argv(field: dataclasses.Field, value) -> list[str]:
    from vpr.sweep.grid import flag_argv

    return flag_argv(field.name, value)


def test_every_module_option_reaches_the_module_and_its_checkpoint(monkeypatch, tmp_path):
    """Each setting of the module's sections, typed as a flag, arrives in `VPRModule`."""
    from vpr.training import module as module_file
    from vpr.training.run import resolve_config

    built: dict[str, object] = {}
    monkeypatch.setattr(module_file, "build_model",
                        lambda **kwargs: built.update(model=kwargs) or torch.nn.Linear(1, 1))
    monkeypatch.setattr(module_file, "build_loss",
                        lambda name, **options: built.update(loss=(name, options)))
    monkeypatch.setattr(module_file, "build_miner",
                        lambda name, margin, **options: built.update(miner=(name, margin, options)))
    # A published model replaces the backbone + aggregator settings: checked on its own below.
    fields = [field for _, field in iter_fields(MODULE_SECTIONS)
              if field.name != "published_model"]
    assert len(fields) >= 20  # the schema, not a hand-kept list, decides what is checked
    chosen = {field.name: _other_value(field) for field in fields}
    argv = ["train"] + [word for field in fields for word in _argv(field, chosen[field.name])]
    config = resolve_config(explicit_settings(build_parser().parse_args(argv)))
    module = module_file.VPRModule(config.module_config(), vpr_version="test")
    expected = check_values(chosen)  # the canonical form (image_size as a pair, ...)
    for field in fields:
        name = field.name
        assert expected[name] != default_of(field), name
        assert getattr(module.config, name) == expected[name], name
        assert module.hparams[name] == expected[name], name
    # The parts are built from these values.
    assert built["model"]["agg_arch"] == expected["agg_arch"]
    assert built["model"]["agg_options"] == {"probe_option": 7}
    assert built["model"]["image_size"] == expected["image_size"]
    assert built["loss"] == (expected["loss_name"], {"probe_option": 7})
    assert built["miner"] == (expected["miner_name"], expected["miner_margin"],
                              {"probe_option": 7})
    # A checkpoint stores them, and a run resolved from it gets them back.
    checkpoint = tmp_path / "probe.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": dict(module.hparams)}, checkpoint)
    restored = resolve_config({}, str(checkpoint))
    for field in fields:
        if field.name != "pretrained":  # weights come from the checkpoint: never downloaded
            assert getattr(restored, field.name) == expected[field.name], field.name
    assert restored.pretrained == "none"
    # --model NAME: the published architecture is built, and the name is stored.
    monkeypatch.setattr(module_file, "build_published_architecture",
                        lambda model, size, **options: built.update(published=model.key)
                        or torch.nn.Linear(1, 1))
    name = _other_value(FIELDS["published_model"][1])
    config = resolve_config(explicit_settings(build_parser().parse_args(["train", "--model",
                                                                         name])))
    module = module_file.VPRModule(config.module_config())
    assert module.hparams["published_model"] == built["published"] == config.published_model
    assert config.published_model.startswith(name.split(":")[0])


def test_flags_keep_the_seed_names_and_defaults():
    args = build_parser().parse_args(["train", "--agg_arch", "GeM", "--loss_name",
                                      "ContrastiveLoss", "--batch_size", "8"])
    assert explicit_settings(args) == {"agg_arch": "GeM", "loss_name": "ContrastiveLoss",
                                       "batch_size": 8}
    config = TrainConfig()
    assert (config.batch_size, config.img_per_place, config.agg_arch, config.lr,
            config.recall_values) == (64, 4, "ConvAP", 1e-3, (1, 5, 10, 20))


def test_old_spellings_still_work_with_a_warning():
    with pytest.warns(FutureWarning) as caught:
        args = build_parser().parse_args(["train", "--no_progress_bar", "--precision", "16"])
    messages = " ".join(str(warning.message) for warning in caught)
    assert "--no_progress_bar is deprecated" in messages and "'16' is deprecated" in messages
    assert explicit_settings(args) == {"progress_bar": False, "precision": "16-mixed"}
    # The command line shows them as one line each, like errors.
    import warnings

    from vpr.config.fields import DeprecatedSpelling

    assert warnings.formatwarning("--x is deprecated", DeprecatedSpelling, "f.py", 1) == \
        "vpr: warning: --x is deprecated\n"
    with pytest.warns(FutureWarning, match="'bf16' is deprecated"):
        assert check_values({"precision": "bf16"}) == {"precision": "bf16-mixed"}
    assert check_values({"no_progress_bar": True}) == {"progress_bar": False}


def test_a_settings_file_by_section_or_flat_and_flags_win(tmp_path, capsys):
    sectioned = tmp_path / "run.yaml"
    sectioned.write_text(yaml.safe_dump({"model": {"agg_arch": "GeM", "image_size": [48]},
                                         "optim": {"lr": 0.5}}))
    flat = tmp_path / "flat.yaml"
    flat.write_text("agg_arch: GeM\nimage_size: [48]\nlr: 0.5\n")
    assert read_settings(sectioned) == read_settings(flat)
    assert build_parser().parse_args(["train", "--config", str(sectioned), "--lr", "0.25",
                                      "--print_config"]).func
    from vpr.cli import main

    assert main(["train", "--config", str(sectioned), "--lr", "0.25", "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["config"]
    assert printed["model"]["agg_arch"] == "GeM" and printed["model"]["image_size"] == [48, 48]
    assert printed["optim"]["lr"] == 0.25


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="unknown setting 'agg_ach'; did you mean agg_arch"):
        check_values({"agg_ach": "GeM"})
    with pytest.raises(ValueError, match="image_size takes H \\[W\\]"):
        check_values({"image_size": [1, 2, 3]})
    with pytest.raises(ValueError, match="optimizer: 'rmsprop' is not one of sgd, adam"):
        check_values({"optimizer": "rmsprop"})


def test_old_run_config_and_old_checkpoint_still_read(tmp_path):
    """vpr 0.1 saved argparse's namespace under args:, and flat module settings in ckpts."""
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump({"command": "vpr train", "vpr_version": "0.1.0", "args": {
        "train_path": "t", "batch_size": 8, "agg_arch": None, "no_progress_bar": True,
        "resume": None, "image_size": [32], "agg_option": None}}))
    assert read_settings(old) == {"train_path": "t", "batch_size": 8, "no_progress_bar": True,
                                  "image_size": [32]}
    from vpr.training.checkpoints import load_module
    from vpr.training.module import VPRModule

    module = VPRModule(agg_arch="GeM", image_size=(32, 32), pretrained="none")
    hparams_01 = {  # exactly the keys vpr 0.1 stored
        "backbone": "resnet18", "agg_arch": "GeM", "descriptors_dim": 512,
        "image_size": (32, 32), "agg_options": {}, "pretrained": "imagenet",
        "loss_name": "MultiSimilarityLoss", "loss_options": {},
        "miner_name": "MultiSimilarityMiner", "miner_margin": 0.1, "miner_options": {},
        "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-3,
        "scheduler": "none", "max_epochs": 20, "recall_values": (1, 5, 10, 20),
        "num_preds_to_save": 0, "save_only_wrong_preds": False, "group_rule": "auto",
        "dist_thresholds": (10.0, 25.0, 50.0, 100.0), "vpr_version": "0.1.0"}
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams_01}, path)
    loaded = load_module(path)
    assert loaded.config.model.agg_arch == "GeM" and loaded.config.model.pretrained == "none"
    for key, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_module_sections_are_exactly_what_checkpoints_store():
    module_names = set(ModuleConfig().flat())
    assert module_names == {field.name for _, field in iter_fields(MODULE_SECTIONS)}
    assert "batch_size" not in module_names and "agg_arch" in module_names


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter not installed")
def test_imports_point_down_the_layers():
    """The layers contract of pyproject.toml (entry points -> workflows -> parts)."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def test_single_device_commands_name_hardware_like_training(capsys):
    from vpr.cli.flags import device_of, precision_of

    parser = build_parser()
    args = parser.parse_args(["locate", "p.jpg", "--index", "i", "--accelerator", "cpu",
                              "--precision", "bf16-mixed"])
    assert device_of(args) == "cpu" and precision_of(args) == "bf16-mixed"
    with pytest.warns(FutureWarning, match="--device is deprecated"):
        args = parser.parse_args(["index", "add", "--index", "i", "--images", "x",
                                  "--device", "cpu"])
    assert device_of(args) == "cpu" and precision_of(args) == "auto"
    from vpr.hardware import device_settings, single_device

    assert device_settings("cuda:1") == {"accelerator": "gpu", "devices": "1,"}
    assert str(single_device("gpu", "1,")) == "cuda:1"
    assert str(single_device("cpu", "auto")) == "cpu"
