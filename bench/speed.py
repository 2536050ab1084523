"""Training and extraction speed: vpr's fast pipeline against the seed's design, in one run.

Measures, for each configuration, from JPEG files of the synthetic city:
- end-to-end training throughput (images/s): DataLoader workers -> device -> ResNet-18 +
  ConvAP -> MultiSimilarity loss and miner -> SGD step, driven by Lightning as `vpr train`;
- end-to-end descriptor extraction throughput (images/s), as `vpr test` extracts;
- input-only throughput (images/s): the training input pipeline alone, files to the
  model's augmented, normalised input batch on the device (decoding on the device included);
- model-only ceilings: the same training step and forward pass on random tensors already
  on the device, so the report shows how close end to end comes to the model's limit;
- peak host memory (the measuring process and its DataLoader workers) and device memory.

Configurations:
- ``seed``: the seed's design re-implemented faithfully: Pillow decode + torchvision
  RandAugment(3) per image in DataLoader workers, float batches, NCHW, fp16 autocast on a GPU
  or fp32 on a CPU (``--pipeline seed``);
- ``fast``: vpr's defaults: uint8 decode and resize in workers, batched RandAugment(3) and
  normalisation on the device, channels-last, bf16 where the hardware has it, fused SGD;
- ``fast+device_decode``: the same, but workers only read the JPEG files and whole batches
  are decoded where the model runs (nvjpeg on a GPU; ``--decode device``);
- ``...+compile``: the same through ``torch.compile``.

Each measurement runs in its own process (so peak memory is its own); ratios compare
configurations measured by the same command on the same machine.

    python bench/speed.py --small                       # CPU smoke test (CI), seconds
    python bench/speed.py --rounds 3                    # CPU, 224 px, 8 places x 4
    python bench/speed.py --device cuda --places 64 --workers 16 --steps 40   # GPU
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

CONFIGS = ("seed", "fast", "fast+compile", "fast+device_decode", "fast+device_decode+compile")
GPU_CONFIGS = ["seed", "fast", "fast+device_decode", "fast+device_decode+compile"]


# ---------------------------------------------------------------- data
def prepare_data(root: Path, image_size: int, places: int, extract_images: int,
                 workers: int) -> tuple[Path, Path]:
    """Renders the tiny synthetic city at ``image_size`` and lays out the benchmark sets.

    The tiny city has 24 training places; more places (and extraction images) are made by
    hard-linking its JPEGs under new place ids, which costs the same to decode. ``places``
    should hold every timed batch in one epoch: at an epoch's end the DataLoader restarts
    and its workers stop prefetching, which real datasets (thousands of places) never see.

    Returns:
        (train folder, extraction test set with database/ and queries/).
    """
    from vpr.data.geotag import format_filename, parse_filename
    from vpr.data.images import list_images
    from vpr.synthetic import generate_city

    city = root / f"city_{image_size}"
    generate_city(city, preset="tiny", image_size=(image_size, image_size), progress=False,
                  workers=workers)
    train = root / f"train_{image_size}_{places}"
    if not train.is_dir():
        sources: dict[str, list[Path]] = {}
        for path in list_images(city / "gsv_xs" / "train"):
            sources.setdefault(parse_filename(path).note, []).append(path)
        groups = [sources[key] for key in sorted(sources)]
        staging = train.with_name(train.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for place in range(places):
            for path in groups[place % len(groups)]:
                tag = replace(parse_filename(path), note=f"{place:05d}_Bench")
                target = staging / "Bench" / format_filename(tag)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
        staging.rename(train)
    extract = root / f"extract_{image_size}_{extract_images}"
    if not extract.is_dir():
        sources = list_images(city)
        staging = extract.with_name(extract.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for index in range(extract_images):
            path = sources[index % len(sources)]
            part = "queries" if index % 5 == 0 else "database"
            tag = replace(parse_filename(path), note=f"{index:06d}")
            target = staging / part / format_filename(tag)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
        staging.rename(extract)
    return train, extract


# ---------------------------------------------------------------- one measurement
def _setup(config: str, args: argparse.Namespace):
    import torch

    from vpr.hardware import default_precision
    from vpr.training.module import VPRModule
    from vpr.training.pipeline import InputPipeline

    name = "seed" if config == "seed" else "fast"
    accelerator = args.device  # Lightning takes "cpu" and "cuda" as they are
    precision = default_precision(accelerator, name)
    pipeline = InputPipeline(name=name, image_size=(args.image_size, args.image_size),
                             randaugment_ops=3, channels_last=name == "fast",
                             decode="device" if "+device_decode" in config else "worker")
    torch.manual_seed(0)
    module = VPRModule(backbone="resnet18", agg_arch="ConvAP", descriptors_dim=512,
                       image_size=(args.image_size, args.image_size), pretrained="none",
                       loss_name="MultiSimilarityLoss", miner_name="MultiSimilarityMiner",
                       optimizer="sgd", lr=1e-3)
    module.configure_input(pipeline.device_transform(), seed=0,
                           compile_model=config.endswith("+compile"))
    return module, pipeline, precision, accelerator


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_train(config: str, args: argparse.Namespace, train: Path) -> dict:
    import lightning as L

    from vpr.training.pipeline import train_loader

    module, pipeline, precision, accelerator = _setup(config, args)
    dataset = pipeline.train_set(train, img_per_place=4, min_img_per_place=4)
    loader = train_loader(dataset, args.places, args.workers, seed=0, drop_last=True)
    per_batch = args.places * 4

    class Clock(L.Callback):
        start = end = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if step == args.warmup:
                _sync(args.device)
                self.start = time.perf_counter()
            elif step == args.warmup + args.steps:
                _sync(args.device)
                self.end = time.perf_counter()

    clock = Clock()
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision,
                        max_steps=args.warmup + args.steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[clock])
    trainer.fit(module, train_dataloaders=loader)
    result = {"train_img_s": per_batch * args.steps / (clock.end - clock.start),
              "precision": precision, "channels_last": pipeline.channels_last,
              "decode": pipeline.decode}
    del trainer, loader
    gc.collect()
    result["input_img_s"] = _input_only(module, dataset, args)
    gc.collect()
    result.update(_model_only(module, args, precision))
    return result


def _input_only(module, dataset, args: argparse.Namespace) -> float:
    """The input pipeline alone: files to the model's augmented, normalised input batch."""
    import torch

    from vpr.inputs.device_decode import to_device
    from vpr.training.pipeline import train_loader

    device = torch.device(args.device)
    module = module.to(device).train()
    loader = train_loader(dataset, args.places, args.workers, seed=1, drop_last=True)
    start = None
    for step, (images, _, _) in enumerate(loader):
        images = to_device(images, device)
        module.input_transform(images, augment=True,
                               generator=torch.Generator().manual_seed(step))
        if step == args.warmup:
            _sync(args.device)
            start = time.perf_counter()
        elif step == args.warmup + args.steps:
            break
    _sync(args.device)
    return args.places * 4 * args.steps / (time.perf_counter() - start)


def _model_only(module, args: argparse.Namespace, precision: str) -> dict:
    """Training step and forward pass on random tensors already on the device."""
    import torch

    from vpr.hardware import autocast
    from vpr.training.losses import compute_loss

    device = torch.device(args.device)
    module = module.to(device).train()
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    size = args.image_size
    batch = args.places * 4
    images = module.input_transform(
        torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device))
    labels = torch.arange(args.places, device=device).repeat_interleave(4)

    def train_step():
        with autocast(device, precision):
            descriptors = module(images)
        loss, _ = compute_loss(module.loss_fn, module.miner, descriptors.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def forward():
        with torch.no_grad(), autocast(device, precision):
            module(images)

    out = {}
    for key, step in (("model_train_img_s", train_step), ("model_infer_img_s", forward)):
        if key == "model_infer_img_s":
            module.eval()
        for _ in range(args.warmup):
            step()
        _sync(args.device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        _sync(args.device)
        out[key] = batch * args.steps / (time.perf_counter() - start)
    return out


def measure_extract(config: str, args: argparse.Namespace, extract: Path) -> dict:
    import torch

    from vpr.hardware import autocast
    from vpr.inputs.device_decode import to_device
    from vpr.training.pipeline import eval_loader

    module, pipeline, precision, _ = _setup(config, args)
    device = torch.device(args.device)
    module = module.to(device).eval()
    dataset = pipeline.retrieval_set(extract)
    loader = eval_loader(dataset, args.eval_batch_size, args.workers)
    count, start = 0, None
    with torch.no_grad():
        for batch_index, (images, _) in enumerate(loader):
            images = to_device(images, device)
            with autocast(device, precision):
                descriptors = module(module.input_transform(images))
            descriptors.float().cpu()
            if batch_index == 0:  # workers started, first batch done: the clock starts
                _sync(args.device)
                start = time.perf_counter()
            else:
                count += len(images)
    _sync(args.device)
    elapsed = time.perf_counter() - start
    return {"extract_img_s": count / elapsed, "extract_images": count}


def _peak_memory(device: str) -> dict:
    import torch

    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux, bytes on macOS
    out = {"host_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20,
           "workers_peak_mib":
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20}
    if device == "cuda":
        out["device_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _one(args: argparse.Namespace) -> None:
    """Child process: one measurement, printed as the last line of JSON."""
    kind, config = args.one.split(":")
    folder = Path(args.folder)
    if kind == "train":
        result = measure_train(config, args, folder)
    else:
        result = measure_extract(config, args, folder)
    result.update(_peak_memory(args.device))
    print(json.dumps(result))


# ---------------------------------------------------------------- the report
def _child(kind: str, config: str, folder: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--one", f"{kind}:{config}", "--folder", str(folder),
               "--device", args.device, "--image_size", str(args.image_size),
               "--places", str(args.places), "--workers", str(args.workers),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--eval_batch_size", str(args.eval_batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind}:{config} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    from hostinfo import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--small", action="store_true",
                        help="CI smoke test: 64 px, 4 places x 4, 2 steps (figures meaningless)")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--places", type=int, default=None,
                        help="places per batch, 4 images each (default: 64 on GPU, 8 on CPU)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers (default: the number of CPU cores)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30/6)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5/2)")
    parser.add_argument("--eval_batch_size", type=int, default=None)
    parser.add_argument("--extract_images", type=int, default=None)
    parser.add_argument("--configs", nargs="+", default=None, choices=CONFIGS,
                        help="default: seed fast on a CPU; on a GPU also fast+device_decode "
                             "and fast+device_decode+compile")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every configuration this many times, alternating; "
                             "report medians (default 1)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/vpr_bench_data"),
                        help="where the benchmark's JPEGs are rendered (kept for re-runs)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args)
        return

    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = args.device == "cuda"
    if args.small:
        args.image_size, args.places = 64, args.places or 4
        args.steps, args.warmup = args.steps or 2, args.warmup or 1
        args.extract_images = args.extract_images or 48
    args.places = args.places or (64 if gpu else 8)
    args.workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    args.steps = args.steps or (30 if gpu else 6)
    args.warmup = args.warmup or (5 if gpu else 2)
    args.eval_batch_size = args.eval_batch_size or (256 if gpu else 32)
    args.extract_images = args.extract_images or (
        args.eval_batch_size * 40 if gpu else args.eval_batch_size * 8)
    configs = args.configs or (GPU_CONFIGS if gpu else ["seed", "fast"])

    started = time.perf_counter()
    # Every step in one epoch (see prepare_data), for each measurement that iterates it.
    train, extract = prepare_data(args.data, args.image_size,
                                  args.places * (args.warmup + args.steps + 1),
                                  args.extract_images, workers=args.workers)
    data_s = time.perf_counter() - started
    figures: dict = {"device": _device_name(args.device), "torch": torch.__version__,
                     "command": " ".join([Path(sys.executable).name, *sys.argv]),
                     "image_size": args.image_size, "batch": f"{args.places} x 4",
                     "workers": args.workers, "data_s": round(data_s, 1)}
    # Rounds alternate the configurations, so that a slow spell of a shared machine hits
    # them alike; each figure is the median over rounds, each ratio the median of the
    # rounds' ratios (a configuration against the seed's design measured just before it).
    rounds: dict[str, list[dict]] = {config: [] for config in configs}
    for round_index in range(args.rounds):
        for config in configs:
            row = _child("train", config, train, args)
            row.update(_child("extract", config, extract, args))
            rounds[config].append(row)
            print(f"round {round_index + 1}/{args.rounds} {config}: "
                  + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in row.items()), flush=True)
    figures.update(summarize(rounds))
    figures["rounds"] = args.rounds
    for config in configs:
        row = figures[config]
        row["train_share_of_ceiling"] = row["train_img_s"] / row["model_train_img_s"]
    figures["total_s"] = round(time.perf_counter() - started, 1)
    print(format_report(figures, configs))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


def summarize(rounds: dict[str, list[dict]]) -> dict[str, dict]:
    """Per configuration: the median of each figure over rounds, and ``KEY_vs_seed``, the
    median over rounds of the ratio to the seed's design in the same round."""
    out = {}
    for config, rows in rounds.items():
        out[config] = {key: (statistics.median(row[key] for row in rows)
                             if isinstance(value, float) else value)
                       for key, value in rows[0].items()}
        if "seed" in rounds and config != "seed":
            for key in ("train_img_s", "extract_img_s", "model_train_img_s"):
                out[config][f"{key}_vs_seed"] = statistics.median(
                    row[key] / base[key] for row, base in zip(rows, rounds["seed"]))
    return out


def format_report(figures: dict, configs: list[str]) -> str:
    """A markdown table of the figures, one row per configuration."""
    lines = [f"device: {figures['device']}; torch {figures['torch']}; "
             f"{figures['image_size']} px, batch {figures['batch']}, "
             f"{figures['workers']} workers; {figures['rounds']} round(s), medians; "
             f"total {figures['total_s']} s",
             f"command: {figures['command']}", "",
             "| config | precision | train img/s | vs seed | input-only img/s | "
             "model-only train img/s | end-to-end / ceiling | extract img/s | vs seed | "
             "model-only infer img/s | host peak MiB (workers) | device peak MiB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    def ratio(row: dict, key: str, config: str) -> str:
        if config == "seed":
            return "1.00x"
        return f"{row[key]:.2f}x" if key in row else "-"

    for config in configs:
        row = figures[config]
        device = f"{row['device_peak_mib']:.0f}" if "device_peak_mib" in row else "-"
        lines.append(
            f"| {config} | {row['precision']}{', channels-last' if row['channels_last'] else ''}"
            f" | {row['train_img_s']:.1f} | {ratio(row, 'train_img_s_vs_seed', config)}"
            f" | {row['input_img_s']:.1f}"
            f" | {row['model_train_img_s']:.1f} | {row['train_share_of_ceiling']:.0%}"
            f" | {row['extract_img_s']:.1f} | {ratio(row, 'extract_img_s_vs_seed', config)}"
            f" | {row['model_infer_img_s']:.1f}"
            f" | {row['host_peak_mib']:.0f} ({row['workers_peak_mib']:.0f})"
            f" | {device} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
