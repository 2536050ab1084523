"""Batched RandAugment: each operation matches torchvision's per-image one."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from vpr.inputs.batch_augment import OPS, BatchRandAugment, InputTransform, apply_op, op_magnitudes


@pytest.fixture
def images() -> torch.Tensor:
    """Smooth images with structure (not noise), on the 1/255 grid, shape (4,3,24,32)."""
    generator = torch.Generator().manual_seed(0)
    small = torch.rand(4, 3, 6, 8, generator=generator)
    big = torch.nn.functional.interpolate(small, size=(24, 32), mode="bilinear")
    return (big * 255).round() / 255


def _reference(image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """torchvision on one uint8 image, back to float."""
    u8 = (image * 255).round().to(torch.uint8)
    nearest = InterpolationMode.NEAREST
    if op == "Brightness":
        out = TF.adjust_brightness(u8, 1 + magnitude)
    elif op == "Color":
        out = TF.adjust_saturation(u8, 1 + magnitude)
    elif op == "Contrast":
        out = TF.adjust_contrast(u8, 1 + magnitude)
    elif op == "Sharpness":
        out = TF.adjust_sharpness(u8, 1 + magnitude)
    elif op == "Posterize":
        out = TF.posterize(u8, int(magnitude))
    elif op == "Solarize":
        out = TF.solarize(u8, magnitude * 255)
    elif op == "AutoContrast":
        out = TF.autocontrast(u8)
    elif op == "Equalize":
        out = TF.equalize(u8)
    elif op == "TranslateX":
        out = TF.affine(u8, angle=0.0, translate=[int(magnitude), 0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=nearest)
    elif op == "Rotate":
        out = TF.affine(u8, angle=magnitude, translate=[0, 0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=nearest)
    elif op in ("ShearX", "ShearY"):
        angle = math.degrees(math.atan(magnitude))
        out = TF.affine(u8, angle=0.0, translate=[0, 0], scale=1.0, center=[0, 0],
                        shear=[angle, 0.0] if op == "ShearX" else [0.0, angle],
                        interpolation=nearest)
    else:
        raise AssertionError(op)
    return out.float() / 255


@pytest.mark.parametrize("op", ["Brightness", "Color", "Contrast", "Sharpness", "Posterize",
                                "Solarize", "AutoContrast", "Equalize"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_colour_ops_match_torchvision(images, op, sign):
    magnitude = op_magnitudes(9, 31, 24, 32)[op] if op in op_magnitudes(9, 31, 24, 32) else 0.0
    if op in ("Posterize", "Solarize", "AutoContrast", "Equalize"):
        sign = 1.0
    ours = apply_op(images, op, torch.full((4,), sign * magnitude))
    expected = torch.stack([_reference(image, op, sign * magnitude) for image in images])
    assert ours.shape == images.shape
    # torchvision rounds to uint8 at each step; we stay in float: one level apart at most.
    assert (ours - expected).abs().max() <= 1.5 / 255, op


@pytest.mark.parametrize("op, magnitude", [("TranslateX", 5.0), ("TranslateX", -7.0),
                                           ("Rotate", 9.0), ("Rotate", -9.0),
                                           ("ShearX", 0.09), ("ShearX", -0.3),
                                           ("ShearY", 0.09), ("ShearY", -0.3)])
def test_geometric_ops_agree_with_torchvision(images, op, magnitude):
    ours = apply_op(images, op, torch.full((4,), magnitude))
    expected = torch.stack([_reference(image, op, magnitude) for image in images])
    same = ((ours - expected).abs() <= 1.5 / 255).float().mean()
    # Nearest sampling at slightly different pixel centres: nearly every pixel is equal.
    assert same > 0.9, (op, float(same))
    assert not torch.equal(ours, images)


def test_each_image_draws_its_own_operations(images):
    same = images[:1].expand(64, -1, -1, -1).contiguous()
    out = BatchRandAugment(num_ops=3)(same, torch.Generator().manual_seed(1))
    distinct = {tuple(row.flatten()[::37].tolist()) for row in out}
    assert len(distinct) > 20  # 14^3 op sequences x signs: 64 images rarely repeat


def test_same_generator_state_gives_the_same_batch(images):
    augment = BatchRandAugment(num_ops=3)
    first = augment(images, torch.Generator().manual_seed(5))
    second = augment(images, torch.Generator().manual_seed(5))
    third = augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(first, second) and not torch.equal(first, third)
    assert first.min() >= 0 and first.max() <= 1


def test_unknown_op_is_named():
    with pytest.raises(ValueError, match="Warp"):
        apply_op(torch.zeros(1, 3, 4, 4), "Warp", torch.zeros(1))
    assert len(OPS) == 14


def test_input_transform_normalises_uint8_and_passes_floats_through():
    u8 = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = InputTransform(randaugment_ops=0, channels_last=True)(u8)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406]))
                          / torch.tensor([0.229, 0.224, 0.225]))
    assert out.is_contiguous(memory_format=torch.channels_last)
    floats = torch.randn(2, 3, 4, 4)
    assert torch.equal(InputTransform()(floats), floats)
