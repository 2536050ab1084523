"""Running experiments: train (with validation and a final test), resume, test a checkpoint.

Every entry point (`vpr train`, `vpr test`, main.py, main_ckpt.py, `vpr demo`, `vpr sweep`)
ends here. They pass settings (`vpr.config`), never command lines:

- ``settings``: the settings the user chose, by name (flags typed, a ``--config`` file, a
  sweep cell, the demo's choices). Omitted ones come from the checkpoint (module settings),
  the first run's ``config.yaml`` (on resume), or the schema's defaults, in that order.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

import vpr
from vpr.config import (
    FIELDS,
    MODULE_SECTIONS,
    TrainConfig,
    architecture_keys,
    carried_keys,
    check_values,
    iter_fields,
    read_settings,
    write_settings,
)
from vpr.config.fields import option_of
from vpr.data.datasets import RetrievalSet
from vpr.errors import RunError
from vpr.hardware import lightning_devices, resolve_precision
from vpr.training.checkpoint_io import AtomicCheckpointIO
from vpr.training.checkpoints import (
    check_fits,
    load_checkpoint,
    load_module,
    read_checkpoint_hparams,
)
from vpr.training.module import VPRModule
from vpr.training.pipeline import InputPipeline, eval_loader, resolve_pipeline, train_loader
from vpr.training.published import (
    FIXED_KEYS,
    load_published_weights,
    normalization_of,
    published_hparams,
)
from vpr.training.startup import (
    check_train_values,
    release_folder_on_failed_start,
    resumable_on_interrupt,
)
from vpr.utils.logs import setup_logging

logger = logging.getLogger("vpr")

__all__ = ["RunError", "evaluate", "resolve_config", "run_dir_of", "test", "train"]


def run_dir_of(log_dir: str | Path, exp_name: str) -> Path:
    """The folder of an experiment: <log_dir>/lightning_logs/<exp_name>."""
    return Path(log_dir) / "lightning_logs" / exp_name


def _is_ddp_child() -> bool:
    """True in the processes that Lightning's DDP launcher started (ranks other than 0)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _precision(config: TrainConfig) -> str:
    return resolve_precision(config.precision, config.accelerator, config.pipeline)


def _require(path: Any, name: str) -> Any:
    if not path:
        raise RunError(f"{name} is required for this command")
    return path


def _pipeline(config: TrainConfig) -> InputPipeline:
    """The input pipeline for this model: its image size and its normalisation."""
    return resolve_pipeline(config.pipeline, config.image_size, decode=config.decode,
                            channels_last=config.channels_last,
                            cache_images=config.cache_images, accelerator=config.accelerator,
                            randaugment_ops=config.randaugment_ops,
                            normalization=normalization_of(config.flat()))


def _eval_loader(dataset: RetrievalSet, config: TrainConfig) -> DataLoader:
    batch_size = config.eval_batch_size or config.batch_size * config.img_per_place
    return eval_loader(dataset, batch_size, config.num_workers)


def _retrieval_set(path: str, config: TrainConfig) -> RetrievalSet:
    return _pipeline(config).retrieval_set(
        path, positive_dist_threshold=config.positive_dist_threshold,
        skip_bad_images=config.skip_bad_images)


def _configure_input(module: VPRModule, config: TrainConfig) -> None:
    pipeline = _pipeline(config)
    module.configure_input(pipeline.device_transform(), seed=config.seed,
                           compile_model=config.compile)
    logger.info("Input pipeline: %s (decode in %s, channels-last %s, compile %s, image cache "
                "%s), precision %s", pipeline.name,
                "workers" if pipeline.decode == "worker" else "the model's device",
                pipeline.channels_last, config.compile, pipeline.cache_images,
                _precision(config))


def _trainer(config: TrainConfig, **kwargs: Any) -> L.Trainer:
    callbacks = list(kwargs.pop("callbacks", []))
    if config.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    return L.Trainer(
        accelerator=config.accelerator,
        devices=lightning_devices(config.devices),
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=_precision(config),
        # Our samplers shard by rank themselves and keep resumed runs reproducible.
        use_distributed_sampler=False,
        enable_progress_bar=config.progress_bar,
        enable_model_summary=False,
        callbacks=callbacks,
        # Checkpoints written beside their target, so a kill or a full disk keeps the last.
        plugins=[AtomicCheckpointIO()],
        **kwargs,
    )


def resolve_config(settings: Mapping[str, Any] | None = None, checkpoint: str | None = None,
                   previous: Mapping[str, Any] | None = None) -> TrainConfig:
    """The settings of a run: defaults < ``previous`` < checkpoint < ``settings``.

    Args:
        settings: the settings chosen for this run, by name (checked here).
        checkpoint: a checkpoint whose stored module settings replace the defaults (its
            weights are loaded later, so ``pretrained`` becomes ``none``).
        previous: a resumed run's first settings; only the carried ones are taken.

    Raises:
        RunError: an explicit setting contradicts the checkpoint's architecture.
        ValueError: an unknown setting or a value that does not fit.
    """
    explicit = check_values(settings or {}, "settings")
    config = TrainConfig()
    if previous:
        carried = set(carried_keys())
        config = config.replace({k: v for k, v in previous.items() if k in carried},
                                "the first run's config.yaml")
    if checkpoint:
        stored = read_checkpoint_hparams(checkpoint)
        for key in architecture_keys():
            if key in explicit and key in stored and _norm(explicit[key]) != _norm(stored[key]):
                raise RunError(
                    f"--{option_of(FIELDS[key][1]).flag or key} {_shown(explicit[key])} "
                    f"contradicts the checkpoint {checkpoint}, which was trained with "
                    f"{key}={stored[key]}; leave it out to use the checkpoint's value"
                )
        module_keys = {field.name for _, field in iter_fields(MODULE_SECTIONS)}
        config = config.replace({k: v for k, v in stored.items() if k in module_keys},
                                f"{checkpoint}")
        # Weights come from the checkpoint: never download ImageNet weights to rebuild it.
        config = config.replace({"pretrained": "none"})
    config = config.replace(explicit)
    if config.published_model:
        config = _apply_published(config, explicit)
    return config


def _apply_published(config: TrainConfig, explicit: dict[str, Any]) -> TrainConfig:
    """Fills the architecture of a published model in; an explicit setting that contradicts
    it is an error."""
    try:
        published = published_hparams(config.published_model, config.image_size)
    except ValueError as error:
        raise RunError(f"--model: {error}") from None
    for key in FIXED_KEYS:
        if key in explicit and _norm(explicit[key]) != _norm(published[key]):
            raise RunError(f"--{key} {_shown(explicit[key])} contradicts --model "
                           f"{published['published_model']} ({key}={published[key]}); drop it")
    return config.replace(published)


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, str):
        return value.lower()
    return value


def _write_config(run_dir: Path, config: TrainConfig) -> None:
    """Saves the resolved settings; `vpr train --config` of this file makes the same run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "config.yaml" if not (run_dir / "config.yaml").exists() else f"config-{stamp}.yaml"
    write_settings(run_dir / name, config.to_dict(),
                   command=" ".join(shlex.quote(part) for part in sys.argv),
                   vpr_version=vpr.__version__)


def _report_dir(run_dir: Path, test_set: RetrievalSet) -> Path:
    """A new folder for one test's results: results/test_<set>_<timestamp>[_n]/."""
    root = test_set.root.resolve()
    label = f"{root.parent.name}_{root.name}" if root.parent.name else root.name
    base = run_dir / "results" / f"test_{label}_{time.strftime('%Y%m%d-%H%M%S')}"
    folder, counter = base, 1
    while folder.exists():  # two tests within a second never share a folder
        counter += 1
        folder = base.with_name(f"{base.name}_{counter}")
    return folder


def _run_test(trainer: L.Trainer, module: VPRModule, test_set: RetrievalSet,
              config: TrainConfig, run_dir: Path, checkpoint: str,
              ckpt_path: str | None) -> dict[str, Any]:
    """Tests one set; the module's evaluation writes results.json, per_query.csv, the plot."""
    module.predictions_dir = run_dir / "predictions" / test_set.root.name
    module.report_dir = _report_dir(run_dir, test_set)
    module.report_extra = {"checkpoint": str(checkpoint)}
    module.results.pop("test", None)
    if ckpt_path:
        trainer.test(module, dataloaders=_eval_loader(test_set, config), ckpt_path=ckpt_path,
                     verbose=False, weights_only=False)
    else:
        trainer.test(module, dataloaders=_eval_loader(test_set, config), verbose=False)
    result = dict(module.results["test"], results_dir=str(module.report_dir))
    if trainer.is_global_zero:
        logger.info("Test %s: %s (saved in %s)", test_set.root,
                    ", ".join(f"{k}: {v:.2f}" for k, v in result["recalls"].items()),
                    module.report_dir)
    return result


def _settings_of(settings: Mapping[str, Any] | TrainConfig | None) -> dict[str, Any]:
    if isinstance(settings, TrainConfig):
        return settings.flat()
    return dict(settings or {})


def train(settings: Mapping[str, Any] | TrainConfig | None = None,
          resume: str | None = None, init_from: str | None = None) -> dict[str, Any]:
    """Trains (or resumes), validating every epoch, then tests the best checkpoint.

    Args:
        settings: the run's settings by name (or a whole `TrainConfig`); see the module
            docstring for where omitted ones come from.
        resume: a checkpoint to continue, or ``auto`` for the newest valid one of the run
            ``exp_name``.
        init_from: the published model's weights to fine-tune from (a file or ``hf:``
            source; default: its registered source).

    Returns:
        {"run_dir", "best_checkpoint", "last_checkpoint", "tests": [results...], "config"}.
    """
    settings = _settings_of(settings)
    if resume:
        preliminary = TrainConfig().replace(check_values(settings, "settings"))
        resume = _resolve_resume(resume, preliminary.log_dir, preliminary.exp_name)
        run_dir = Path(resume).resolve().parent.parent
        exp_name = run_dir.name
        log_root = run_dir.parent.parent
        config = resolve_config(settings, resume, previous=_previous_settings(run_dir))
    else:
        config = resolve_config(settings)
        exp_name = (os.environ.get("VPR_EXP_NAME") if _is_ddp_child() else None) or \
            config.exp_name or time.strftime("%Y-%m-%d_%H-%M-%S")
        # DDP re-launches this command in child processes: they must join this run folder.
        os.environ["VPR_EXP_NAME"] = exp_name
        log_root = Path(config.log_dir)
        run_dir = run_dir_of(log_root, exp_name)
        if run_dir.exists() and not _is_ddp_child():
            raise RunError(
                f"{run_dir} already exists and is never overwritten; choose another --exp_name, "
                f"or continue it with: vpr train --resume {run_dir}/checkpoints/last.ckpt"
            )
    config = config.replace({"exp_name": exp_name, "log_dir": str(log_root)})
    L.seed_everything(config.seed, workers=True)
    check_train_values(config, config.flat(), log_root, RunError)
    train_path = _require(config.train_path, "train_path")
    val_path = _require(config.val_path, "val_path")
    # Build every dataset before any long work: bad input fails here, in seconds.
    train_set = _pipeline(config).train_set(
        train_path, img_per_place=config.img_per_place,
        min_img_per_place=config.min_img_per_place,
        train_format=config.train_format)
    val_set = _retrieval_set(val_path, config)
    test_sets = [_retrieval_set(path, config) for path in (config.test_path or [])]
    module = VPRModule(config.module_config(), vpr_version=vpr.__version__)
    if resume:
        check_fits(resume, load_checkpoint(resume), module)
    elif config.published_model:
        # Fine-tuning starts from the authors' weights; our checkpoints then hold them.
        load_published_weights(module, config.published_model, init_from, config.image_size)
    elif init_from:
        raise RunError("--init_from needs --model NAME[:VARIANT] to know the file's layout")

    # A start that fails before training leaves no folder behind: the name stays free.
    created = not run_dir.exists() and not resume and not _is_ddp_child()
    with release_folder_on_failed_start(run_dir, created):
        run_dir.mkdir(parents=True, exist_ok=bool(resume) or _is_ddp_child())
        if not _is_ddp_child():
            setup_logging(run_dir)
            logger.info("Command: %s", " ".join(shlex.quote(part) for part in sys.argv))
            logger.info("Run folder: %s", run_dir)
            logger.info("Train: %d places; val: %s; tests: %s", len(train_set), val_set, test_sets)
            _write_config(run_dir, config)
        _configure_input(module, config)

        loader = train_loader(train_set, config.batch_size, config.num_workers, config.seed)
        checkpoint_cb = ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best_epoch={epoch:02d}_R@1={val/R@1:.2f}",
            monitor="val/R@1", mode="max", save_top_k=1, auto_insert_metric_name=False,
        )
        # A second callback rewrites last.ckpt after every epoch: Lightning's save_last only
        # refreshes it when the best changes, and a crash must lose at most one epoch.
        last_cb = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None,
                                  save_top_k=1, enable_version_counter=False)
        tb_logger = TensorBoardLogger(save_dir=str(log_root), name="lightning_logs",
                                      version=exp_name, default_hp_metric=False)
        trainer = _trainer(
            config,
            max_epochs=config.max_epochs,
            logger=tb_logger,
            callbacks=[checkpoint_cb, last_cb],
            num_sanity_val_steps=0,
            check_val_every_n_epoch=1,
            log_every_n_steps=min(20, max(1, len(loader))),
            gradient_clip_val=config.gradient_clip_val,
            limit_train_batches=config.limit_train_batches,
            deterministic=False,
        )
        val_loader = _eval_loader(val_set, config)
        if not resume:
            # Like the seed: a first validation shows the untrained model's recall.
            trainer.validate(module, dataloaders=val_loader, verbose=False)
    with resumable_on_interrupt(trainer, run_dir, exp_name, log_root):
        trainer.fit(module, train_dataloaders=loader, val_dataloaders=val_loader,
                    ckpt_path=resume, weights_only=False)
    best = checkpoint_cb.best_model_path or last_cb.best_model_path
    last = str(run_dir / "checkpoints" / "last.ckpt")
    logger.info("Best checkpoint: %s", best)
    tests = []
    for test_set in test_sets:
        tests.append(_run_test(trainer, module, test_set, config, run_dir, best, ckpt_path=best))
    return {"run_dir": run_dir, "best_checkpoint": best, "last_checkpoint": last,
            "tests": tests, "is_global_zero": trainer.is_global_zero, "config": config}


def test(settings: Mapping[str, Any] | None, ckpt_path: str | None = None,
         weights: str | None = None, rerank: dict[str, Any] | None = None
         ) -> list[dict[str, Any]]:
    """Tests a checkpoint (or a published model) on every ``test_path``; no training.

    Args:
        settings: evaluation and hardware settings by name; module settings given here must
            match the checkpoint's architecture. ``published_model`` (with ``weights``)
            tests a published model instead of a checkpoint.
        ckpt_path: a checkpoint of `train`.
        weights: the published model's weights (a file or ``hf:`` source).
        rerank: re-ranking settings (`vpr.rerank.options.rerank_settings`): each query's
            top candidates are verified and reordered before the recalls (cached under the
            test folder's ``rerank_cache/``); None: global descriptors only.

    Returns:
        One result per set.
    """
    settings = _settings_of(settings)
    published = check_values(settings).get("published_model")
    if not ckpt_path and not published:
        raise RunError("--ckpt_path (a checkpoint of vpr train) or --model (a published model) "
                       "is required")
    if ckpt_path and weights:
        raise RunError("--weights is for --model without --ckpt_path: the checkpoint holds "
                       "its own weights")
    config = resolve_config(settings, ckpt_path)
    if not config.test_path:
        raise RunError("test_path is required: the folder(s) with database/ and queries/")
    test_sets = [_retrieval_set(path, config) for path in config.test_path]
    if ckpt_path:
        run_dir = Path(ckpt_path).resolve().parent.parent
        if not (run_dir / "checkpoints").is_dir():
            run_dir = Path(ckpt_path).resolve().parent
    else:
        name = config.exp_name or f"{config.published_model.replace(':', '_')}_" \
            f"{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        run_dir = run_dir_of(config.log_dir, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(run_dir, file_prefix="test_")
    logger.info("Command: %s", " ".join(shlex.quote(part) for part in sys.argv))
    if ckpt_path:
        module = load_module(ckpt_path, config.module_config())
        source = ckpt_path
    else:
        module = VPRModule(config.module_config(), vpr_version=vpr.__version__)
        load_published_weights(module, config.published_model, weights, config.image_size)
        source = f"{config.published_model} ({weights or 'registered source'})"
    _configure_input(module, config)
    if rerank:
        from vpr.rerank.evaluation import EvaluationReranker
        from vpr.rerank.options import build_reranker

        module.reranker = EvaluationReranker(build_reranker(rerank, module),
                                             run_dir / "rerank_cache")
    L.seed_everything(config.seed, workers=True)
    trainer = _trainer(config, logger=False)
    return [_run_test(trainer, module, test_set, config, run_dir, source, ckpt_path=None)
            for test_set in test_sets]


def evaluate(module: VPRModule, config: TrainConfig) -> list[dict[str, Any]]:
    """Recall@N of a module (trained or not) on each of ``config.test_path``; nothing written."""
    test_sets = [_retrieval_set(path, config) for path in (config.test_path or [])]
    _configure_input(module, config)
    trainer = _trainer(config, logger=False)
    results = []
    for test_set in test_sets:
        module.report_dir = module.predictions_dir = None
        trainer.test(module, dataloaders=_eval_loader(test_set, config), verbose=False)
        results.append(dict(module.results["test"]))
    return results


def _resolve_resume(resume: str, log_dir: str, exp_name: str | None) -> str:
    """The checkpoint to resume: a path, or 'auto' for the newest valid one of ``exp_name``."""
    if resume != "auto":
        if not Path(resume).is_file():
            raise RunError(f"{resume}: checkpoint to resume not found")
        return resume
    if not exp_name:
        raise RunError("resume=auto needs exp_name to know which run to continue")
    folder = run_dir_of(log_dir, exp_name) / "checkpoints"
    candidates = sorted(folder.glob("*.ckpt"), key=os.path.getmtime, reverse=True)
    for candidate in candidates:
        try:
            read_checkpoint_hparams(candidate)
        except Exception:  # noqa: BLE001 - a broken file is skipped, the next one is tried
            logger.warning("Skipping unreadable checkpoint %s", candidate)
            continue
        return str(candidate)
    raise RunError(f"{folder}: no valid checkpoint to resume")


def _previous_settings(run_dir: Path) -> dict[str, Any] | None:
    """A resumed run's first settings (its config.yaml), or None without one."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        logger.warning("%s not found: the resumed run uses the given settings", config)
        return None
    return read_settings(config)
