"""Weights on the Hugging Face hub: ``hf:ORG/REPO[/FILE]``, from the local cache first.

The cache is the hub's own layout (``models--ORG--REPO/snapshots/<rev>/FILE``, with
``refs/main``), found through ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``, read at each call. The network is tried only when the file is
not cached and ``HF_HUB_OFFLINE`` is not set; either way a missing file is one error that
names the repository and how to get the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpr.models.pretrained.files import WEIGHTS_SUFFIXES, PublishedWeightsError

HF_PREFIX = "hf:"
_TRUE = {"1", "true", "yes", "on"}


def is_hub_spec(spec: str) -> bool:
    """True for ``hf:ORG/REPO[/FILE]``."""
    return spec.startswith(HF_PREFIX)


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """Splits ``hf:ORG/REPO[/FILE]`` into ("ORG/REPO", "FILE" or None)."""
    parts = [part for part in spec[len(HF_PREFIX):].split("/") if part]
    if len(parts) < 2:
        raise PublishedWeightsError(
            f"{spec}: expected hf:ORG/REPO or hf:ORG/REPO/FILE")
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:]) or None


def hub_cache_dir() -> Path:
    """The hub cache folder, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "huggingface" / "hub"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` forbids the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _weights_in(folder: Path, spec: str) -> Path:
    """The one weights file of a snapshot folder (a spec without FILE)."""
    found = sorted(path for path in folder.rglob("*") if path.suffix.lower() in WEIGHTS_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(str(path.relative_to(folder)) for path in found) or "none"
        raise PublishedWeightsError(
            f"{spec}: the repository holds {len(found)} weights files ({names}); "
            f"name one: {spec.rstrip('/')}/FILE")
    return found[0]


def _fetch(repo: str, filename: str | None, cache: Path, local_only: bool, spec: str) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download

    if filename:
        return Path(hf_hub_download(repo, filename, cache_dir=cache,
                                    local_files_only=local_only))
    folder = snapshot_download(repo, cache_dir=cache, local_files_only=local_only,
                               allow_patterns=[f"*{suffix}" for suffix in WEIGHTS_SUFFIXES])
    return _weights_in(Path(folder), spec)


def resolve_hub_weights(spec: str) -> Path:
    """The local path of ``hf:ORG/REPO[/FILE]``: the cached file, else downloaded if allowed.

    Raises:
        PublishedWeightsError: not cached and offline or unreachable (one line saying how to
            get the file), or an ambiguous repository.
    """
    repo, filename = parse_hub_spec(spec)
    cache = hub_cache_dir()
    try:
        return _fetch(repo, filename, cache, local_only=True, spec=spec)
    except PublishedWeightsError:
        raise
    except (FileNotFoundError, ValueError):
        pass  # not cached (the hub raises LocalEntryNotFoundError, a FileNotFoundError)
    what = f"{repo}/{filename}" if filename else repo
    how = (f"fetch it where there is network with `hf download {repo}"
           f"{' ' + filename if filename else ''}` and copy that cache here (or point "
           f"HF_HUB_CACHE at it), or download the file and give its path instead")
    if hub_offline():
        raise PublishedWeightsError(
            f"{spec}: {what} is not in the Hugging Face cache {cache} and "
            f"HF_HUB_OFFLINE is set; {how}")
    try:
        return _fetch(repo, filename, cache, local_only=False, spec=spec)
    except PublishedWeightsError:
        raise
    except Exception as error:  # noqa: BLE001 - any hub/network failure: one clear line
        reason = (str(error).splitlines() or [""])[0]
        raise PublishedWeightsError(
            f"{spec}: {what} is not in the Hugging Face cache {cache} and could not "
            f"be downloaded ({type(error).__name__}: {reason}); {how}"
        ) from None


def resolve_weights(spec: str | Path) -> Path:
    """A local weights file for ``spec``: a path, or ``hf:ORG/REPO[/FILE]``."""
    text = str(spec)
    if is_hub_spec(text):
        return resolve_hub_weights(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{text}: weights file not found")
    return path
