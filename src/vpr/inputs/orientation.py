"""EXIF orientation on image tensors: the same turn `vpr.data.images.apply_orientation` gives.

torchvision's decoders can orient a JPEG themselves (``apply_exif_orientation``) but not on a
GPU (nvjpeg), and they read the tag their own way; so every tensor reader decodes the stored
pixels and turns them here, with the orientation `vpr.data.images.read_image_header` read,
and all readers agree with Pillow's `open_rgb` on every file.
"""

from __future__ import annotations

import torch


def orient_tensor(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """``image`` (..., H, W) turned upright for its EXIF ``orientation`` (1-8), on its device.

    Orientations 5-8 swap height and width. An image with nothing to do (1, or any value
    outside 2-8) is returned as it is, not copied.
    """
    if orientation == 2:  # mirrored left-right
        return image.flip(-1)
    if orientation == 3:  # upside down
        return image.flip(-2, -1)
    if orientation == 4:  # mirrored top-bottom
        return image.flip(-2)
    if orientation == 5:  # mirrored along the main diagonal
        return image.transpose(-2, -1).contiguous()
    if orientation == 6:  # stored turned left: turn it 90 degrees clockwise
        return image.transpose(-2, -1).flip(-1)
    if orientation == 7:  # mirrored along the anti-diagonal
        return image.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:  # stored turned right: turn it 90 degrees counter-clockwise
        return image.transpose(-2, -1).flip(-2)
    return image
