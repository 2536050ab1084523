"""Running experiments: train (with validation and a final test), resume, test a checkpoint.

Every entry point (`vpr train`, `vpr test`, main.py, main_ckpt.py, `vpr demo`) ends here.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

import vpr
from vpr.cli.options import ARCHITECTURE_KEYS, MODULE_DEFAULTS, module_options
from vpr.cli.published import published_choice
from vpr.data.datasets import RetrievalSet
from vpr.rerank.options import evaluation_reranker
from vpr.training.checkpoint_io import AtomicCheckpointIO
from vpr.training.checkpoints import (
    check_fits,
    load_checkpoint,
    load_module,
    read_checkpoint_hparams,
)
from vpr.training.module import VPRModule
from vpr.training.pipeline import default_precision, eval_loader, resolve_pipeline, train_loader
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
from vpr.utils.atomic import write_json_atomic
from vpr.utils.logs import setup_logging

logger = logging.getLogger("vpr")


class RunError(RuntimeError):
    """A run cannot start: the message says why and what to do."""


def run_dir_of(log_dir: str | Path, exp_name: str) -> Path:
    """The folder of an experiment: <log_dir>/lightning_logs/<exp_name>."""
    return Path(log_dir) / "lightning_logs" / exp_name


def _is_ddp_child() -> bool:
    """True in the processes that Lightning's DDP launcher started (ranks other than 0)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _precision(args: argparse.Namespace) -> str:
    if args.precision and args.precision != "auto":
        return args.precision
    return default_precision(args.accelerator, getattr(args, "pipeline", "auto"))


def _devices(text: str) -> Any:
    if text == "auto":
        return "auto"
    if "," in text:
        return [int(part) for part in text.split(",") if part]
    return int(text)


def _require(path: str | None, flag: str) -> str:
    if not path:
        raise RunError(f"{flag} is required for this command")
    return path


def _eval_loader(dataset: RetrievalSet, args: argparse.Namespace) -> DataLoader:
    batch_size = args.eval_batch_size or args.batch_size * args.img_per_place
    return eval_loader(dataset, batch_size, args.num_workers)


def _pipeline(args: argparse.Namespace, hparams: dict[str, Any]):
    """The input pipeline for this model: its image size and its normalisation."""
    return resolve_pipeline(args, hparams.get("image_size"), normalization_of(hparams))


def _retrieval_set(path: str, hparams: dict[str, Any], args: argparse.Namespace) -> RetrievalSet:
    return _pipeline(args, hparams).retrieval_set(
        path, positive_dist_threshold=args.positive_dist_threshold,
        skip_bad_images=getattr(args, "skip_bad_images", False))


def _configure_input(module: VPRModule, hparams: dict[str, Any],
                     args: argparse.Namespace) -> None:
    pipeline = _pipeline(args, hparams)
    module.configure_input(pipeline.device_transform(), seed=args.seed,
                           compile_model=getattr(args, "compile", False))
    logger.info("Input pipeline: %s (decode in %s, channels-last %s, compile %s, image cache "
                "%s), precision %s", pipeline.name,
                "workers" if pipeline.decode == "worker" else "the model's device",
                pipeline.channels_last, getattr(args, "compile", False), pipeline.cache_images,
                _precision(args))


def _trainer(args: argparse.Namespace, **kwargs: Any) -> L.Trainer:
    callbacks = list(kwargs.pop("callbacks", []))
    if not args.no_progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    return L.Trainer(
        accelerator=args.accelerator,
        devices=_devices(args.devices),
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        precision=_precision(args),
        # Our samplers shard by rank themselves and keep resumed runs reproducible.
        use_distributed_sampler=False,
        enable_progress_bar=not args.no_progress_bar,
        enable_model_summary=False,
        callbacks=callbacks,
        # Checkpoints written beside their target, so a kill or a full disk keeps the last.
        plugins=[AtomicCheckpointIO()],
        **kwargs,
    )


def resolve_hparams(args: argparse.Namespace, checkpoint: str | None) -> dict[str, Any]:
    """Hyper-parameters for the module: defaults < checkpoint < explicit flags.

    Raises:
        RunError: an explicit flag contradicts the checkpoint's architecture.
    """
    explicit = module_options(args)
    hparams = dict(MODULE_DEFAULTS)
    if checkpoint:
        stored = read_checkpoint_hparams(checkpoint)
        for key in ARCHITECTURE_KEYS + ("image_size",):
            if key in explicit and key in stored and _norm(explicit[key]) != _norm(stored[key]):
                raise RunError(
                    f"--{key} {explicit[key]} contradicts the checkpoint {checkpoint}, which "
                    f"was trained with {key}={stored[key]}; drop the flag to use the "
                    "checkpoint's value"
                )
        hparams.update({k: v for k, v in stored.items() if k in MODULE_DEFAULTS})
        # Weights come from the checkpoint: never download ImageNet weights to rebuild it.
        hparams["pretrained"] = "none"
    hparams.update(explicit)
    if hparams.get("published_model"):
        _apply_published(hparams, explicit)
    hparams["vpr_version"] = vpr.__version__
    return hparams


def _apply_published(hparams: dict[str, Any], explicit: dict[str, Any]) -> None:
    """Fills the architecture of ``--model`` in; a flag that contradicts it is an error."""
    try:
        published = published_hparams(hparams["published_model"], hparams.get("image_size"))
    except ValueError as error:
        raise RunError(f"--model: {error}") from None
    for key in FIXED_KEYS:
        if key in explicit and _norm(explicit[key]) != _norm(published[key]):
            raise RunError(f"--{key} {explicit[key]} contradicts --model "
                           f"{published['published_model']} ({key}={published[key]}); drop it")
    hparams.update(published)


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, str):
        return value.lower()
    return value


def _write_config(run_dir: Path, args: argparse.Namespace, hparams: dict[str, Any]) -> None:
    config = {
        "command": " ".join(shlex.quote(part) for part in sys.argv),
        "vpr_version": vpr.__version__,
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "hparams": {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "config.yaml" if not (run_dir / "config.yaml").exists() else f"config-{stamp}.yaml"
    (run_dir / name).write_text(yaml.safe_dump(config, sort_keys=False))


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
              args: argparse.Namespace, run_dir: Path, checkpoint: str,
              ckpt_path: str | None) -> dict[str, Any]:
    """Tests one set; writes results.json, per_query.csv and a recall plot; logs recalls."""
    module.predictions_dir = run_dir / "predictions" / test_set.root.name
    module.report_dir = _report_dir(run_dir, test_set)
    module.results.pop("test", None)
    if ckpt_path:
        trainer.test(module, dataloaders=_eval_loader(test_set, args), ckpt_path=ckpt_path,
                     verbose=False, weights_only=False)
    else:
        trainer.test(module, dataloaders=_eval_loader(test_set, args), verbose=False)
    # The report was written by the module; add where the numbers came from.
    result = dict(module.results["test"], checkpoint=str(checkpoint),
                  results_dir=str(module.report_dir))
    if not trainer.is_global_zero:
        return result
    write_json_atomic(module.report_dir / "results.json", result)
    logger.info("Test %s: %s (saved in %s)", test_set.root,
                ", ".join(f"{k}: {v:.2f}" for k, v in result["recalls"].items()),
                module.report_dir)
    return result


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Trains (or resumes), validating every epoch, then tests the best checkpoint.

    Returns:
        {"run_dir", "best_checkpoint", "last_checkpoint", "tests": [results...]}.
    """
    resume = getattr(args, "resume", None)
    if resume:
        resume = _resolve_resume(resume, args)
        run_dir = Path(resume).resolve().parent.parent
        exp_name = run_dir.name
        log_root = run_dir.parent.parent
        _fill_args_from_previous(args, run_dir)
    else:
        exp_name = (os.environ.get("VPR_EXP_NAME") if _is_ddp_child() else None) or \
            args.exp_name or time.strftime("%Y-%m-%d_%H-%M-%S")
        # DDP re-launches this command in child processes: they must join this run folder.
        os.environ["VPR_EXP_NAME"] = exp_name
        log_root = Path(args.log_dir)
        run_dir = run_dir_of(log_root, exp_name)
        if run_dir.exists() and not _is_ddp_child():
            raise RunError(
                f"{run_dir} already exists and is never overwritten; choose another --exp_name, "
                f"or continue it with: vpr train --resume {run_dir}/checkpoints/last.ckpt"
            )
    L.seed_everything(args.seed, workers=True)
    hparams = resolve_hparams(args, resume)
    check_train_values(args, hparams, log_root, RunError)
    train_path = _require(args.train_path, "--train_path")
    val_path = _require(args.val_path, "--val_path")
    # Build every dataset before any long work: bad input fails here, in seconds.
    train_set = _pipeline(args, hparams).train_set(
        train_path, img_per_place=args.img_per_place, min_img_per_place=args.min_img_per_place,
        train_format=getattr(args, "train_format", "auto"))
    val_set = _retrieval_set(val_path, hparams, args)
    test_sets = [_retrieval_set(path, hparams, args) for path in (args.test_path or [])]
    module = VPRModule(**hparams)
    if resume:
        check_fits(resume, load_checkpoint(resume), module)
    elif hparams.get("published_model"):
        # Fine-tuning starts from the authors' weights; our checkpoints then hold them.
        load_published_weights(module, hparams["published_model"],
                               published_choice(args).weights, hparams.get("image_size"))
    elif getattr(args, "init_from", None):
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
            _write_config(run_dir, args, hparams)
        _configure_input(module, hparams, args)

        loader = train_loader(train_set, args.batch_size, args.num_workers, args.seed)
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
            args,
            max_epochs=hparams["max_epochs"],
            logger=tb_logger,
            callbacks=[checkpoint_cb, last_cb],
            num_sanity_val_steps=0,
            check_val_every_n_epoch=1,
            log_every_n_steps=min(20, max(1, len(loader))),
            gradient_clip_val=args.gradient_clip_val,
            limit_train_batches=args.limit_train_batches,
            deterministic=False,
        )
        val_loader = _eval_loader(val_set, args)
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
        tests.append(_run_test(trainer, module, test_set, args, run_dir, best, ckpt_path=best))
    return {"run_dir": run_dir, "best_checkpoint": best, "last_checkpoint": last,
            "tests": tests, "is_global_zero": trainer.is_global_zero}


def test(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Tests a checkpoint (or a published ``--model``) on every --test_path; no training.

    Returns one result per set.
    """
    checkpoint = getattr(args, "ckpt_path", None)
    choice = published_choice(args)
    if not checkpoint and not choice.model:
        raise RunError("--ckpt_path (a checkpoint of vpr train) or --model (a published model) "
                       "is required")
    if checkpoint and choice.weights:
        raise RunError("--weights is for --model without --ckpt_path: the checkpoint holds "
                       "its own weights")
    hparams = resolve_hparams(args, checkpoint)
    test_paths = args.test_path or []
    if not test_paths:
        raise RunError("--test_path is required: the folder(s) with database/ and queries/")
    test_sets = [_retrieval_set(path, hparams, args) for path in test_paths]
    if checkpoint:
        run_dir = Path(checkpoint).resolve().parent.parent
        if not (run_dir / "checkpoints").is_dir():
            run_dir = Path(checkpoint).resolve().parent
    else:
        name = args.exp_name or f"{hparams['published_model'].replace(':', '_')}_" \
            f"{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        run_dir = run_dir_of(args.log_dir, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(run_dir, file_prefix="test_")
    logger.info("Command: %s", " ".join(shlex.quote(part) for part in sys.argv))
    if checkpoint:
        module = load_module(checkpoint, **_load_overrides(hparams))
        source = checkpoint
    else:
        module = VPRModule(**hparams)
        load_published_weights(module, hparams["published_model"], choice.weights,
                               hparams.get("image_size"))
        source = f"{hparams['published_model']} ({choice.weights or 'registered source'})"
    _configure_input(module, hparams, args)
    module.reranker = evaluation_reranker(args, module, run_dir / "rerank_cache")
    L.seed_everything(args.seed, workers=True)
    trainer = _trainer(args, logger=False)
    return [_run_test(trainer, module, test_set, args, run_dir, source, ckpt_path=None)
            for test_set in test_sets]


def evaluate(module: VPRModule, test_paths: list[str], hparams: dict[str, Any],
             args: argparse.Namespace) -> list[dict[str, Any]]:
    """Recall@N of a module (trained or not) on each test set; nothing is written."""
    test_sets = [_retrieval_set(path, hparams, args) for path in test_paths]
    _configure_input(module, hparams, args)
    trainer = _trainer(args, logger=False)
    results = []
    for test_set in test_sets:
        trainer.test(module, dataloaders=_eval_loader(test_set, args), verbose=False)
        results.append(dict(module.results["test"]))
    return results


def _load_overrides(hparams: dict[str, Any]) -> dict[str, Any]:
    # Evaluation settings may differ from training; the architecture may not.
    keys = ("pretrained", "recall_values", "num_preds_to_save", "save_only_wrong_preds",
            "group_rule", "dist_thresholds")
    return {key: hparams[key] for key in keys}


def _resolve_resume(resume: str, args: argparse.Namespace) -> str:
    """The checkpoint to resume: a path, or 'auto' for the newest valid one of --exp_name."""
    if resume != "auto":
        if not Path(resume).is_file():
            raise RunError(f"{resume}: checkpoint to resume not found")
        return resume
    if not args.exp_name:
        raise RunError("--resume auto needs --exp_name to know which run to continue")
    folder = run_dir_of(args.log_dir, args.exp_name) / "checkpoints"
    candidates = sorted(folder.glob("*.ckpt"), key=os.path.getmtime, reverse=True)
    for candidate in candidates:
        try:
            read_checkpoint_hparams(candidate)
        except Exception:  # noqa: BLE001 - a broken file is skipped, the next one is tried
            logger.warning("Skipping unreadable checkpoint %s", candidate)
            continue
        return str(candidate)
    raise RunError(f"{folder}: no valid checkpoint to resume")


# Settings that a resumed run takes from its first run's config.yaml unless given again.
RESUMED_SETTINGS = ("train_path", "val_path", "test_path", "batch_size", "img_per_place",
                    "min_img_per_place", "positive_dist_threshold", "randaugment_ops",
                    "eval_batch_size", "seed", "gradient_clip_val", "limit_train_batches",
                    "precision", "pipeline", "decode", "cache_images", "channels_last",
                    "compile", "train_format")


def _fill_args_from_previous(args: argparse.Namespace, run_dir: Path) -> None:
    """On resume, settings left at their default come from the run's own config.yaml."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        logger.warning("%s not found: the resumed run uses the command line's settings", config)
        return
    from vpr.cli import build_parser

    previous = (yaml.safe_load(config.read_text()) or {}).get("args", {})
    defaults = vars(build_parser().parse_args(["train"]))
    for key in RESUMED_SETTINGS:
        if key in previous and getattr(args, key, None) == defaults.get(key):
            setattr(args, key, previous[key])
