"""What a file that should hold PyTorch tensors really is, to say so when it cannot be read."""

from __future__ import annotations

from pathlib import Path

_ZIP = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE = b"\x80"  # the legacy format starts with a pickle protocol byte


def looks_like_torch_file(path: str | Path) -> bool:
    """True if the file starts like something ``torch.save`` writes."""
    with open(path, "rb") as file:
        head = file.read(4)
    return head.startswith(_ZIP) or head.startswith(_PICKLE)


def describe_file(path: str | Path) -> str:
    """A few words on what the file holds: empty, text, a damaged PyTorch file, other."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(4096)
    if size == 0:
        return "an empty file"
    if head.startswith(_ZIP) or head.startswith(_PICKLE):
        return f"a truncated or damaged PyTorch file ({size} bytes)"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file, not a PyTorch file"
        except UnicodeDecodeError:
            pass
    return "not a PyTorch file (unknown binary content)"
