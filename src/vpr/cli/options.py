"""The command-line options shared by `vpr train`, `vpr test`, main.py and main_ckpt.py.

Options that a checkpoint also records (the model, loss, optimiser...) are parsed with a
default of ``None`` so that we can tell an explicit flag from a default: an explicit flag
that contradicts the checkpoint is an error, an omitted one takes the checkpoint's value.
"""

from __future__ import annotations

import argparse
from typing import Any

from vpr.cli.train_format import add_train_format_option
from vpr.models.aggregators import list_aggregators
from vpr.training.losses import list_losses, list_miners, parse_overrides

# Hyper-parameters of VPRModule, with their defaults (the seed's where the seed had one).
MODULE_DEFAULTS: dict[str, Any] = {
    "backbone": "resnet18",
    "agg_arch": "ConvAP",
    "descriptors_dim": 512,
    "image_size": None,
    "agg_options": {},
    "pretrained": "imagenet",
    "train_blocks": None,
    "grad_checkpointing": False,
    "vit_depth": None,
    "loss_name": "MultiSimilarityLoss",
    "loss_options": {},
    "miner_name": "MultiSimilarityMiner",
    "miner_margin": 0.1,
    "miner_options": {},
    "optimizer": "sgd",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-3,
    "scheduler": "none",
    "max_epochs": 20,
    "recall_values": (1, 5, 10, 20),
    "num_preds_to_save": 0,
    "save_only_wrong_preds": False,
    "group_rule": "auto",
    "dist_thresholds": (10.0, 25.0, 50.0, 100.0),
    "published_model": "",
}

# Options whose value must match the checkpoint: they define the network.
ARCHITECTURE_KEYS = ("backbone", "agg_arch", "descriptors_dim", "agg_options", "vit_depth",
                     "published_model")


def image_size(text: str) -> int:
    """A positive image side in pixels."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {value}")
    return value


def key_value(text: str) -> dict[str, Any]:
    """KEY=VALUE for --agg_option/--loss_option/--miner_option."""
    try:
        return parse_overrides([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _default(key: str) -> str:
    return f" (default: {MODULE_DEFAULTS[key]})"


def add_data_options(parser: argparse.ArgumentParser, *, need_train: bool) -> None:
    """Dataset paths and loader options."""
    group = parser.add_argument_group("data")
    group.add_argument("--train_path", type=str, default=None,
                       help="training set: folder tree of @-named images, one place id per note "
                            "field (GSV-XS layout), or a GSV-Cities folder"
                            + ("" if need_train else "; ignored here"))
    add_train_format_option(group)
    group.add_argument("--val_path", type=str, default=None,
                       help="validation set folder with database/ and queries/")
    group.add_argument("--test_path", type=str, nargs="+", default=None,
                       help="one or more test set folders, each with database/ and queries/")
    group.add_argument("--batch_size", type=int, default=64,
                       help="places per training batch (P); one batch is P x img_per_place images "
                            "(default: 64)")
    group.add_argument("--img_per_place", type=int, default=4,
                       help="images sampled per place (K) (default: 4)")
    group.add_argument("--min_img_per_place", type=int, default=4,
                       help="places with fewer images are dropped (default: 4)")
    group.add_argument("--num_workers", type=int, default=8,
                       help="DataLoader worker processes (default: 8)")
    group.add_argument("--eval_batch_size", type=int, default=None,
                       help="images per evaluation batch (default: batch_size x img_per_place)")
    group.add_argument("--positive_dist_threshold", type=float, default=25.0,
                       help="a database image within this many metres of a query is a correct "
                            "match (default: 25)")
    group.add_argument("--image_size", type=image_size, nargs="+", default=None,
                       metavar="PX", help="resize images to H [W] pixels (default: native size; "
                                          "MixVPR then assumes 224x224 for its feature size)")
    group.add_argument("--skip_bad_images", action="store_true",
                       help="leave unreadable test/val images out (and report them) instead of "
                            "stopping before any work")
    group.add_argument("--randaugment_ops", type=int, default=3,
                       help="RandAugment operations per training image; 0 disables (default: 3)")
    group.add_argument("--pipeline", choices=("auto", "fast", "seed"), default="auto",
                       help="input pipeline: fast (uint8 decode in workers, batched RandAugment "
                            "and normalisation on the device) or seed (the seed's Pillow + "
                            "RandAugment per image in workers, float batches); auto = fast")
    group.add_argument("--decode", choices=("auto", "worker", "device"), default="auto",
                       help="where JPEGs are decoded (fast pipeline): worker (DataLoader workers, "
                            "on the CPU) or device (whole batches on the GPU with nvjpeg; "
                            "workers only read the files); auto = device on a CUDA GPU, "
                            "else worker")
    group.add_argument("--cache_images", action="store_true",
                       help="keep decoded, resized images in a shared in-RAM cache after their "
                            "first read (fast pipeline; needs --image_size; for datasets that fit)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Model, loss, miner and optimiser options (recorded in checkpoints)."""
    group = parser.add_argument_group("model")
    group.add_argument("--backbone", type=str, default=None,
                       help="torchvision ResNet (resnet18|34|50|101|152) or DINOv2 ViT "
                            "(dinov2_vits14|vitb14|vitl14|vitg14, +_reg for registers)"
                            + _default("backbone"))
    group.add_argument("--pretrained", type=str, default=None,
                       help="backbone weights: imagenet (ResNets), none, or a path to a "
                            "weights file (.pth state dict; a DINOv2 *_pretrain.pth for a ViT)"
                            + _default("pretrained"))
    group.add_argument("--agg_arch", type=str, default=None,
                       help=f"aggregator, one of {', '.join(list_aggregators())}"
                            + _default("agg_arch"))
    group.add_argument("--agg_option", type=key_value, action="append", default=None,
                       metavar="KEY=VALUE", help="aggregator option, e.g. out_channels=256 "
                                                 "(repeatable)")
    group.add_argument("--descriptors_dim", type=int, default=None,
                       help="descriptor size of aggregators with a projection"
                            + _default("descriptors_dim"))
    group = parser.add_argument_group("loss")
    group.add_argument("--loss_name", type=str, default=None,
                       help=f"loss, one of {', '.join(list_losses())}" + _default("loss_name"))
    group.add_argument("--loss_option", type=key_value, action="append", default=None,
                       metavar="KEY=VALUE", help="override a loss hyper-parameter, e.g. beta=40 "
                                                 "(repeatable)")
    group.add_argument("--miner_name", type=str, default=None,
                       help=f"miner, one of {', '.join(list_miners())}" + _default("miner_name"))
    group.add_argument("--miner_margin", type=float, default=None,
                       help="margin/epsilon of the miner" + _default("miner_margin"))
    group.add_argument("--miner_option", type=key_value, action="append", default=None,
                       metavar="KEY=VALUE", help="override a miner hyper-parameter (repeatable)")
    group = parser.add_argument_group("optimisation")
    group.add_argument("--optimizer", type=str, default=None, choices=["sgd", "adam", "adamw"],
                       help="optimiser" + _default("optimizer"))
    group.add_argument("--lr", type=float, default=None, help="learning rate" + _default("lr"))
    group.add_argument("--momentum", type=float, default=None,
                       help="SGD momentum" + _default("momentum"))
    group.add_argument("--weight_decay", type=float, default=None,
                       help="weight decay" + _default("weight_decay"))
    group.add_argument("--scheduler", type=str, default=None, choices=["none", "cosine", "step"],
                       help="learning-rate schedule" + _default("scheduler"))
    group.add_argument("--max_epochs", type=int, default=None,
                       help="stop after this many epochs" + _default("max_epochs"))
    group = parser.add_argument_group("evaluation")
    group.add_argument("--recall_values", type=int, nargs="+", default=None,
                       help="N of the Recall@N to report" + _default("recall_values"))
    group.add_argument("--num_preds_to_save", type=int, default=None,
                       help="at test time, save an image row of the top N predictions per query "
                            "(default: 0, off)")
    group.add_argument("--save_only_wrong_preds", action="store_true", default=None,
                       help="with --num_preds_to_save, only save queries whose top-1 is wrong")
    group.add_argument("--group_rule", type=str, default=None,
                       help="report recalls per query group: auto (day/sunset/night in file "
                            "names), none, folder, field:NAME (an @-field, e.g. field:note), or "
                            "regex:PATTERN (first capture group) (default: auto)")
    group.add_argument("--dist_thresholds", type=float, nargs="+", default=None, metavar="M",
                       help="also report recalls at these distance thresholds in metres "
                            "(default: 10 25 50 100)")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Experiment folder, hardware and reproducibility options."""
    group = parser.add_argument_group("run")
    group.add_argument("--exp_name", type=str, default=None,
                       help="run folder name under <log_dir>/lightning_logs/ (default: a "
                            "timestamp); an existing one is never overwritten")
    group.add_argument("--log_dir", type=str, default="logs",
                       help="root folder of runs (default: logs)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    group.add_argument("--accelerator", type=str, default="auto",
                       help="cpu, gpu, mps or auto (default: auto)")
    group.add_argument("--devices", type=str, default="auto",
                       help="number of devices, a list like 0,1, or auto (default: auto)")
    group.add_argument("--num_nodes", type=int, default=1, help="machines (default: 1)")
    group.add_argument("--strategy", type=str, default="auto",
                       help="Lightning strategy, e.g. ddp (default: auto)")
    group.add_argument("--precision", type=str, default=None,
                       help="Lightning precision: 32-true, 16-mixed, bf16-mixed or auto (default: "
                            "auto = bf16-mixed where the GPU or CPU computes bf16 natively, "
                            "16-mixed on other GPUs, else 32-true; --pipeline seed: 16-mixed "
                            "on GPU, 32-true on CPU, as the seed)")
    group.add_argument("--channels_last", action=argparse.BooleanOptionalAction, default=None,
                       help="run the model in channels-last memory format (default: on with the "
                            "fast pipeline, off with --pipeline seed)")
    group.add_argument("--compile", action="store_true",
                       help="run the model through torch.compile (falls back to eager with a "
                            "warning if compiling fails)")
    group.add_argument("--gradient_clip_val", type=float, default=None,
                       help="clip gradient norm to this value (default: off)")
    group.add_argument("--limit_train_batches", type=float, default=None,
                       help="train on this many batches (int) or share (float) per epoch")
    group.add_argument("--no_progress_bar", action="store_true",
                       help="disable progress bars (e.g. in log files)")


def module_options(args: argparse.Namespace) -> dict[str, Any]:
    """The VPRModule hyper-parameters the user gave explicitly (omitted ones are absent)."""
    explicit: dict[str, Any] = {}
    for key in MODULE_DEFAULTS:
        if key in ("agg_options", "loss_options", "miner_options"):
            items = getattr(args, key.replace("_options", "_option"), None)
            if items:
                merged: dict[str, Any] = {}
                for item in items:
                    merged.update(item)
                explicit[key] = merged
            continue
        value = getattr(args, key, None)
        if value is None:
            continue
        if key == "image_size":
            if len(value) > 2:
                raise ValueError(f"--image_size takes H [W], got {len(value)} numbers")
            value = (value[0], value[0]) if len(value) == 1 else tuple(value)
        if key in ("recall_values", "dist_thresholds"):
            value = tuple(sorted(set(value)))
        explicit[key] = value
    return explicit
