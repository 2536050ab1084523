"""EXIF orientation on image tensors: the same turn `vpr.data.images.apply_orientation` gives.

torchvision's decoders can orient a JPEG themselves (``apply_exif_orientation``) but not on a
GPU (nvjpeg), and they read the tag their own way; so every tensor reader decodes the stored
pixels and turns them here, with the orientation `vpr.data.images.read_image_header` read,
and all readers agree with Pillow's `open_rgb` on every file.
"""

from __future__ import annotations

import torch

# Turns that swap height and width, on a CPU (H, W, 3) array. torch copies a transposed
# uint8 image element by element (10-15 ms for 640 x 480 on our CPUs, more than decoding
# it); OpenCV's blocked rotation takes 0.1 ms. Flips (2-4) are fast in torch.
_CV2_TURNS = {
    5: lambda cv2, array: cv2.transpose(array),
    6: lambda cv2, array: cv2.rotate(array, cv2.ROTATE_90_CLOCKWISE),
    7: lambda cv2, array: cv2.rotate(cv2.transpose(array), cv2.ROTATE_180),
    8: lambda cv2, array: cv2.rotate(array, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def orient_tensor(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """``image`` (..., H, W) turned upright for its EXIF ``orientation`` (1-8), on its device.

    Orientations 5-8 swap height and width. An image with nothing to do (1, or any value
    outside 2-8) is returned as it is, not copied.
    """
    if orientation in _CV2_TURNS and image.device.type == "cpu" and image.dim() == 3 \
            and image.dtype == torch.uint8:
        return opencv_turn(image, orientation)
    return torch_turn(image, orientation)


def opencv_turn(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """`orient_tensor` of a CPU uint8 (C, H, W) image for orientation 5-8, by OpenCV."""
    import cv2
    import numpy as np

    # (3, H, W) from torchvision's decoders is an (H, W, 3) array underneath: no copy.
    array = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    turned = _CV2_TURNS[orientation](cv2, array).reshape(array.shape[1], array.shape[0], -1)
    return torch.from_numpy(turned).permute(2, 0, 1)


def torch_turn(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """`orient_tensor` by torch's flips and transposes, on any device (nvjpeg's output)."""
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
