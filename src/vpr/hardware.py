"""Every hardware decision in one place: device, precision, autocast, where JPEGs decode.

Commands name hardware the Lightning way (``accelerator``, ``devices``, ``precision`` with
Lightning's precision names); this module turns those into what each part needs:

- `default_precision`: ``precision auto`` is bf16-mixed where the hardware computes bf16
  natively (CUDA GPUs that support it; CPUs with AVX512-BF16 or AMX), 16-mixed on other CUDA
  GPUs, 32-true elsewhere; the ``seed`` pipeline keeps the seed's 16-mixed on GPU / 32-true on
  CPU.
- `single_device`: the one torch device of single-process commands (index, locate, serve).
- `autocast`: the autocast context of a precision, for code outside a Lightning Trainer.
- `resolve_decode`: ``decode auto`` decodes on the device for the fast pipeline on a CUDA
  GPU whose torchvision has nvjpeg (unless images are cached: those decode in the workers).
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

import torch

from vpr.config.schema import DECODERS, precision_name

_AUTOCAST_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}
# Lightning's "-true" precisions other than 32-true convert the model's weights; extraction
# outside a Trainer does not, so it refuses them rather than give them another meaning.
_CONVERTING_PRECISIONS = ("64-true", "16-true", "bf16-true")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def on_cuda(accelerator: str) -> bool:
    """True when ``accelerator`` (Lightning's name or a torch device type) means a CUDA GPU."""
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def _has_other_device() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def default_precision(accelerator: str, pipeline: str = "fast") -> str:
    """Lightning precision for ``precision auto`` (see the module docstring).

    Args:
        accelerator: Lightning's accelerator (``auto``, ``cpu``, ``gpu``/``cuda``...) or a
            torch device type.
        pipeline: ``seed`` keeps the seed's numerics; any other pipeline name gets ours.
    """
    if pipeline == "seed":
        return "16-mixed" if on_cuda(accelerator) else "32-true"
    if on_cuda(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu") and not (accelerator == "auto" and _has_other_device()):
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


def resolve_precision(precision: str | None, accelerator: str, pipeline: str = "fast") -> str:
    """The Lightning precision to run with: ``auto`` (or None) chosen by `default_precision`."""
    if precision in (None, "auto"):
        return default_precision(accelerator, pipeline)
    return precision_name(precision)


def single_device(accelerator: str = "auto", devices: Any = "auto") -> torch.device:
    """The torch device of a single-process command (the first of ``devices``).

    Args:
        accelerator: ``auto`` (a CUDA GPU if visible, else MPS, else CPU), ``cpu``,
            ``gpu``/``cuda`` or ``mps``; a torch device string (``cuda:1``) is read too.
        devices: ``auto``, a count (the first device is used) or a list like ``1,`` / ``[1]``
            (its first index is used).
    """
    accelerator = str(accelerator)
    if ":" in accelerator:  # a torch device string
        return torch.device(accelerator)
    if accelerator == "auto":
        if torch.cuda.is_available():
            accelerator = "cuda"
        elif _has_other_device():
            accelerator = "mps"
        else:
            accelerator = "cpu"
    kind = "cuda" if accelerator == "gpu" else accelerator
    if kind == "cpu":
        return torch.device("cpu")
    index = 0
    if isinstance(devices, (list, tuple)) and devices:
        index = int(devices[0])
    elif isinstance(devices, str) and "," in devices:
        index = int(devices.split(",")[0])
    return torch.device(kind, index)


def device_settings(device: str) -> dict[str, str]:
    """Accelerator and devices meaning an old ``--device`` value (``cpu``, ``cuda:1``, auto)."""
    kind, _, index = device.partition(":")
    accelerator = {"cuda": "gpu"}.get(kind, kind)
    return {"accelerator": accelerator, "devices": f"{index}," if index else "auto"}


def lightning_devices(devices: str | int) -> Any:
    """Lightning's ``devices`` from our text: ``auto``, a count, or a list ``0,1``."""
    text = str(devices)
    if text == "auto":
        return "auto"
    if "," in text:
        return [int(part) for part in text.split(",") if part]
    return int(text)


def autocast(device: str | torch.device, precision: str | None):
    """The autocast context of a Lightning precision (``auto`` chosen for ``device``), for
    extraction outside a Trainer (`vpr index`, `locate`, `serve`, `benchmark`).

    Raises:
        ValueError: an unknown name, or a "-true" precision that converts the weights
            (``16-true``, ``bf16-true``, ``64-true``: only a Trainer, `vpr train/test`, does).
    """
    device = torch.device(device)
    if precision == "auto":
        precision = default_precision(device.type)
    elif precision is not None:
        precision = precision_name(precision)
    if precision in (None, "32-true"):
        return contextlib.nullcontext()
    if precision in _CONVERTING_PRECISIONS:
        raise ValueError(f"--precision {precision}: converting the weights is for vpr train "
                         "and vpr test; computing descriptors here takes 32-true, 16-mixed, "
                         "bf16-mixed or auto")
    if precision not in _AUTOCAST_DTYPES:
        raise ValueError(f"unknown precision {precision!r}; valid: 32-true, 16-mixed, "
                         "bf16-mixed, auto")
    return torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPES[precision])


@functools.lru_cache(maxsize=8)
def device_decode_available(device: str | torch.device = "cuda") -> bool:
    """True where torchvision can decode JPEGs on ``device`` (CUDA builds with nvjpeg)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    probe = torch.frombuffer(bytearray(_tiny_jpeg()), dtype=torch.uint8)
    try:
        decode_jpeg([probe], mode=ImageReadMode.RGB, device=device)
    except (RuntimeError, NotImplementedError):
        return False
    return True


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def resolve_decode(decode: str, pipeline: str, accelerator: str, cache_images: bool) -> str:
    """Where JPEGs are decoded: ``worker`` or ``device`` (see the module docstring).

    Raises:
        ValueError: an unknown ``decode``, or ``device`` with the seed pipeline or the cache.
    """
    if decode not in DECODERS:
        raise ValueError(f"decode {decode!r}: unknown; valid: {', '.join(DECODERS)}")
    if decode == "device":
        if pipeline == "seed":
            raise ValueError("decode=device works with the fast pipeline only "
                             "(not pipeline=seed)")
        if cache_images:
            raise ValueError("decode=device and cache_images exclude each other: the cache "
                             "holds images decoded in the workers; drop one of them")
        return "device"
    if decode == "auto" and pipeline == "fast" and not cache_images and on_cuda(accelerator):
        return "device" if device_decode_available("cuda") else "worker"
    return "worker"
