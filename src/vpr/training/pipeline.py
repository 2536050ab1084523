"""How images reach the model, and in which numeric format, chosen from the hardware.

Two input pipelines build the same datasets:

- ``fast`` (the default): workers decode to uint8 and resize in uint8
  (`vpr.data.decode.UInt8Reader`), batches travel as uint8 (pinned memory on CUDA), and
  the float conversion, RandAugment (`vpr.data.batch_augment.BatchRandAugment`, per-image
  randomness, applied batch-wise) and normalisation run on the accelerator. Optionally
  (``--cache_images``) decoded images stay in a shared in-RAM cache after the first epoch.
  Where the CPUs cannot decode as fast as the GPU computes, ``--decode device`` (the
  default on CUDA GPUs with nvjpeg) leaves workers only reading JPEG bytes and decodes
  whole batches on the GPU (`vpr.data.device_decode`).
- ``seed``: the seed's design, kept as a reference: Pillow decode and torchvision's
  ``RandAugment`` per image in the workers, float batches.

Numerics (``--precision auto``): bf16-mixed where the hardware computes in bf16 natively
(CUDA GPUs that support it; CPUs with AVX512-BF16 or AMX), fp16-mixed on other CUDA GPUs,
fp32 elsewhere; the ``seed`` pipeline keeps the seed's fp16-on-GPU / fp32-on-CPU. The fast
pipeline also runs the model in channels-last memory format.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from vpr.data.batch_augment import InputTransform
from vpr.data.cache import CachedReader
from vpr.data.datasets import RetrievalSet, TrainPlaces, collate_places
from vpr.data.decode import UInt8Reader
from vpr.data.device_decode import EncodedReader, collate_indexed, device_decode_available
from vpr.data.gsv_cities import train_places_type
from vpr.data.samplers import EpochShuffleSampler, ShardedSequentialSampler
from vpr.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

logger = logging.getLogger(__name__)

PIPELINES = ("auto", "fast", "seed")
DECODERS = ("auto", "worker", "device")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def _on_cuda(accelerator: str) -> bool:
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def default_precision(accelerator: str, pipeline: str) -> str:
    """Lightning precision for ``--precision auto`` (see the module docstring).

    Args:
        accelerator: Lightning's ``--accelerator`` (``auto``, ``cpu``, ``gpu``/``cuda``...)
            or a torch device type.
        pipeline: ``seed`` keeps the seed's numerics; any other pipeline name gets ours.
    """
    if pipeline == "seed":
        return "16-mixed" if _on_cuda(accelerator) else "32-true"
    if _on_cuda(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu") and not (accelerator == "auto" and _has_other_device()):
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


def _has_other_device() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@dataclass(frozen=True)
class InputPipeline:
    """Builds the datasets and the on-device input transform of one pipeline."""

    name: str
    image_size: tuple[int, int] | None
    randaugment_ops: int
    cache_images: bool = False
    channels_last: bool = True
    decode: str = "worker"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def reader(self) -> UInt8Reader | EncodedReader:
        """What workers turn a file into: uint8 images, or JPEG bytes (``decode="device"``)."""
        if self.decode == "device":
            return EncodedReader(self.image_size)
        return UInt8Reader(self.image_size)

    def train_set(self, root: str | Path, img_per_place: int,
                  min_img_per_place: int, train_format: str = "auto") -> TrainPlaces:
        places_type = train_places_type(root, train_format)  # GSV-XS folders or GSV-Cities
        if self.name == "seed":
            return places_type(root, train_transform(self.image_size, self.randaugment_ops,
                                                     self.mean, self.std),
                               img_per_place=img_per_place,
                               min_img_per_place=min_img_per_place)
        dataset = places_type(root, None, img_per_place=img_per_place,
                              min_img_per_place=min_img_per_place, reader=self.reader())
        if self.cache_images:
            dataset.reader = self._cached(
                [path for paths in dataset.images_per_place for path in paths],
                UInt8Reader(self.image_size))
        return dataset

    def retrieval_set(self, root: str | Path, positive_dist_threshold: float = 25.0,
                      skip_bad_images: bool = False) -> RetrievalSet:
        if self.name == "seed":
            return RetrievalSet(root, eval_transform(self.image_size, self.mean, self.std),
                                positive_dist_threshold=positive_dist_threshold,
                                skip_bad_images=skip_bad_images)
        return RetrievalSet(root, None, positive_dist_threshold=positive_dist_threshold,
                            skip_bad_images=skip_bad_images, reader=self.reader())

    def device_transform(self) -> InputTransform:
        """uint8 batches to normalised float on the device; RandAugment in training."""
        ops = self.randaugment_ops if self.name == "fast" else 0
        return InputTransform(randaugment_ops=ops, channels_last=self.channels_last,
                              mean=self.mean, std=self.std)

    def _cached(self, paths: list[Path], reader: UInt8Reader) -> CachedReader:
        if self.image_size is None:
            raise ValueError("--cache_images needs a fixed --image_size (images of one size)")
        # At most half of the machine's memory.
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        limit = pages * os.sysconf("SC_PAGE_SIZE") // 2 if pages else None
        return CachedReader(paths, reader, self.image_size, max_bytes=limit)


def resolve_decode(decode: str, pipeline: str, accelerator: str, cache_images: bool) -> str:
    """Where JPEGs are decoded: ``worker`` or ``device`` (see the module docstring).

    ``auto`` decodes on the device for the fast pipeline on a CUDA GPU whose torchvision
    has nvjpeg, unless ``--cache_images`` (which decodes each image once, in the workers).
    """
    if decode not in DECODERS:
        raise ValueError(f"--decode {decode}: unknown; valid: {', '.join(DECODERS)}")
    if decode == "device":
        if pipeline == "seed":
            raise ValueError("--decode device works with the fast pipeline only "
                             "(drop --pipeline seed)")
        if cache_images:
            raise ValueError("--decode device and --cache_images exclude each other: the cache "
                             "holds images decoded in the workers; drop one of them")
        return "device"
    if decode == "auto" and pipeline == "fast" and not cache_images and _on_cuda(accelerator):
        return "device" if device_decode_available("cuda") else "worker"
    return "worker"


def resolve_pipeline(args: argparse.Namespace,
                     image_size: tuple[int, int] | list[int] | None,
                     normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
                     ) -> InputPipeline:
    """The pipeline the flags ask for: ``--pipeline``, ``--decode``, ``--channels_last``,
    ``--cache_images`` (on the hardware ``--accelerator`` names); ``normalization`` is the
    model's (mean, std), ImageNet's by default."""
    name = getattr(args, "pipeline", "auto") or "auto"
    if name not in PIPELINES:
        raise ValueError(f"--pipeline {name}: unknown; valid: {', '.join(PIPELINES)}")
    name = "fast" if name == "auto" else name
    channels_last = getattr(args, "channels_last", None)
    if channels_last is None:
        channels_last = name == "fast"
    cache = bool(getattr(args, "cache_images", False))
    if cache and name == "seed":
        raise ValueError("--cache_images works with the fast pipeline only (drop --pipeline seed)")
    decode = resolve_decode(getattr(args, "decode", "auto") or "auto", name,
                            getattr(args, "accelerator", "auto") or "auto", cache)
    return InputPipeline(name=name, image_size=tuple(image_size) if image_size else None,
                         randaugment_ops=getattr(args, "randaugment_ops", 3),
                         cache_images=cache, channels_last=bool(channels_last), decode=decode,
                         **_normalization_fields(normalization))


def _normalization_fields(normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
                          ) -> dict[str, tuple[float, ...]]:
    if normalization is None:
        return {}
    mean, std = normalization
    return {"mean": tuple(mean), "std": tuple(std)}


def train_loader(dataset: TrainPlaces, batch_size: int, num_workers: int, seed: int,
                 drop_last: bool = False) -> DataLoader:
    """P x K batches in a reproducible, resumable order (`EpochShuffleSampler`)."""
    return DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers,
        sampler=EpochShuffleSampler(len(dataset), seed=seed), collate_fn=collate_places,
        drop_last=drop_last, persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """Images in dataset order, sharded by rank under DDP (`ShardedSequentialSampler`)."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                      sampler=ShardedSequentialSampler(len(dataset)), collate_fn=collate_indexed,
                      pin_memory=torch.cuda.is_available())
