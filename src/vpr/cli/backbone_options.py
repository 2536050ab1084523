"""`vpr train` options for fine-tuning a backbone: how much of it trains, and at what memory."""

from __future__ import annotations

import argparse


def non_negative(text: str) -> int:
    """A whole number >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_backbone_training_options(parser: argparse.ArgumentParser) -> None:
    """Adds --train_blocks, --grad_checkpointing and --vit_depth (recorded in the checkpoint)."""
    group = parser.add_argument_group("backbone fine-tuning")
    group.add_argument("--train_blocks", type=non_negative, default=None, metavar="N",
                       help="train only the last N blocks of a ViT (+ its final norm) or the "
                            "last N residual stages of a ResNet; the rest is frozen and stays "
                            "in eval mode (default: train everything)")
    group.add_argument("--grad_checkpointing", action="store_true", default=None,
                       help="ViT: recompute each trained block's activations in the backward "
                            "pass, trading compute for memory")
    group.add_argument("--vit_depth", type=non_negative, default=None, metavar="N",
                       help="ViT: keep only the first N blocks (small experiments; changes "
                            "the architecture) (default: all)")
