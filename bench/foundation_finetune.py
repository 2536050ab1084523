"""Does fine-tuning a ViT work? A small DINOv2-S trained on the synthetic city vs. untrained.

Runs `vpr train` with the given flags (default: a DINOv2-S architecture cut to a few blocks,
random init, small images, ConvAP) on the `demo` synthetic city, then `vpr test`s on its
test sets both the best checkpoint and the same checkpoint with its weights replaced by
the model's random initialisation (`seed_everything(seed)` then the module, as
`vpr train` builds it), and prints R@1/R@5 of both.

    python bench/foundation_finetune.py --data /tmp/synth --out /tmp/ft [-- EXTRA TRAIN FLAGS]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

# As `vpr demo` trains ResNet-18 on this city: Adam 1e-3, no RandAugment (at these sizes it
# destroys a place's detail).
TRAIN_FLAGS = [
    "--backbone", "dinov2_vits14", "--vit_depth", "2", "--pretrained", "none",
    "--agg_arch", "ConvAP", "--descriptors_dim", "512", "--image_size", "42", "56",
    "--optimizer", "adam", "--lr", "1e-3", "--randaugment_ops", "0",
    "--batch_size", "16", "--img_per_place", "4", "--max_epochs", "4",
    "--num_workers", "1", "--seed", "0", "--no_progress_bar", "--accelerator", "cpu",
]


def vpr(*args: str) -> subprocess.CompletedProcess:
    """Runs the vpr command line of this interpreter; raises with its stderr on failure."""
    result = subprocess.run([sys.executable, "-m", "vpr", *args], capture_output=True,
                            text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-4000:])
    return result


def untrained_checkpoint(trained: Path, out: Path, seed: int) -> Path:
    """The trained checkpoint with the weights the model had before training."""
    import lightning as L

    from vpr.training.module import VPRModule

    checkpoint = torch.load(trained, map_location="cpu", weights_only=False)
    L.seed_everything(seed, verbose=False)
    module = VPRModule(**checkpoint["hyper_parameters"])
    checkpoint["state_dict"] = module.state_dict()
    path = out / "untrained.ckpt"
    torch.save(checkpoint, path)
    return path


def recalls(out: Path, before: set[Path]) -> dict[str, dict]:
    """Reads the results.json files written under `out` since `before`, by test set."""
    found = {}
    for path in sorted(set(out.rglob("results/*/results.json")) - before):
        result = json.loads(path.read_text())
        label = path.parent.name.removeprefix("test_").rsplit("_", 1)[0]
        found[label] = result["recalls"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a `vpr synth` city")
    parser.add_argument("--out", type=Path, required=True, help="log folder")
    parser.add_argument("--limit_train_batches", default="1.0")
    parser.add_argument("--exp_name", default="vit_finetune")
    parser.add_argument("--skip_train", action="store_true",
                        help="evaluate the existing run <out>/lightning_logs/<exp_name>")
    args, extra = parser.parse_known_args()
    flags = TRAIN_FLAGS + [flag for flag in extra if flag != "--"]
    tests = [str(args.data / "sf_xs/test"), str(args.data / "tokyo_xs/test")]
    if not args.skip_train:
        vpr("train", "--train_path", str(args.data / "gsv_xs/train"),
            "--val_path", str(args.data / "sf_xs/val"), "--log_dir", str(args.out),
            "--exp_name", args.exp_name, "--limit_train_batches", args.limit_train_batches,
            *flags)
    run_dir = args.out / "lightning_logs" / args.exp_name
    trained = sorted((run_dir / "checkpoints").glob("best*.ckpt"))[-1]
    seed = int(flags[flags.index("--seed") + 1]) if "--seed" in flags else 0
    untrained = untrained_checkpoint(trained, args.out, seed)
    table = {}
    for name, checkpoint in (("untrained", untrained), ("trained", trained)):
        # `vpr test` writes next to the checkpoint's run: <out>/results for untrained.ckpt.
        before = set(args.out.rglob("results/*/results.json"))
        vpr("test", "--ckpt_path", str(checkpoint), "--test_path", *tests,
            "--num_workers", "1", "--no_progress_bar", "--accelerator", "cpu")
        table[name] = recalls(args.out, before)
    print(json.dumps(table, indent=1))
    print(f"trained: {trained}")


if __name__ == "__main__":
    main()
