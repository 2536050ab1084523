"""Tests for the backbones, the aggregator registry and every aggregator, on tiny CPU tensors."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from vpr.models.aggregators import (
    AGGREGATORS,
    ConvGeM,
    GeM,
    MixVPR,
    build_aggregator,
    gem_pool,
    get_aggregator_class,
    list_aggregators,
    register_aggregator,
)
from vpr.models.backbones import build_backbone, list_backbones
from vpr.models.model import VPRModel, build_model

IN_CHANNELS = 64
FEATURE_SIZE = (7, 7)


def _features(batch_size: int = 2, channels: int = IN_CHANNELS) -> torch.Tensor:
    """Returns non-negative features, like those after a ResNet's final ReLU."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch_size, channels, *FEATURE_SIZE, generator=generator)


@pytest.mark.parametrize("name", list_aggregators())
def test_aggregator_shape_norm_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    aggregator = build_aggregator(name, IN_CHANNELS, FEATURE_SIZE, descriptors_dim=32)
    # Features that require grad, so a weightless aggregator (ClassToken) can backpropagate.
    descriptors = aggregator(_features().requires_grad_())

    assert descriptors.shape == (2, aggregator.out_dim)
    assert descriptors.dtype == torch.float32
    assert not torch.isnan(descriptors).any()
    torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)

    # A random projection, since the gradient of sum(out) through an L2 norm can vanish.
    loss = (descriptors * torch.randn_like(descriptors)).sum()
    loss.backward()
    for param_name, parameter in aggregator.named_parameters():
        assert parameter.grad is not None, param_name
        assert parameter.grad.abs().sum() > 0, param_name


def test_registry_names_are_exact_and_case_insensitive() -> None:
    assert get_aggregator_class("ConvGeM") is ConvGeM
    assert get_aggregator_class("convgem") is ConvGeM
    assert get_aggregator_class("Gem") is GeM
    assert get_aggregator_class("MIXVPR") is MixVPR
    assert isinstance(build_aggregator("ConvGeM", IN_CHANNELS, FEATURE_SIZE), ConvGeM)
    with pytest.raises(ValueError, match="ConvGeM") as error:
        build_aggregator("conv", IN_CHANNELS, FEATURE_SIZE)
    for name in list_aggregators():
        assert name in str(error.value)


def test_duplicate_registration_warns() -> None:
    original = AGGREGATORS["gem"]
    try:
        with pytest.warns(UserWarning, match="registered twice"):
            register_aggregator("GeM")(type("OtherGeM", (GeM,), {}))
    finally:
        AGGREGATORS["gem"] = original
        original.registry_name = "GeM"


def test_convgem_with_conv_channels_different_from_input() -> None:
    aggregator = build_aggregator(
        "ConvGeM", IN_CHANNELS, FEATURE_SIZE, descriptors_dim=24, conv_channels=16
    )
    descriptors = aggregator(_features())
    assert aggregator.channel_pool.out_channels == 16
    assert aggregator.projection.in_features == 16
    assert descriptors.shape == (2, 24)


@pytest.mark.parametrize(
    ("name", "options", "expected_dim"),
    [
        ("avgpool", {}, 48),
        ("CosPlace", {}, 48),
        ("ConvGeM", {}, 48),
        ("ConvAP", {}, 48),  # 12 channels x 2 x 2
        ("ConvAP", {"out_channels": 5, "s1": 1, "s2": 3}, 15),
        ("MixVPR", {}, 48),  # 12 channels x 4 rows
        ("MixVPR", {"out_channels": 8, "out_rows": 2}, 16),
        ("NetVLAD", {"clusters_num": 4}, 48),
        ("NetVLAD", {"clusters_num": 4, "descriptors_dim": None}, 4 * IN_CHANNELS),
        ("GeM", {}, IN_CHANNELS),  # no projection: one value per channel
    ],
)
def test_descriptors_dim_sets_out_dim(name: str, options: dict, expected_dim: int) -> None:
    options = {"descriptors_dim": 48, **options}
    aggregator = build_aggregator(name, IN_CHANNELS, FEATURE_SIZE, **options)
    assert aggregator.out_dim == expected_dim
    assert aggregator(_features()).shape == (2, expected_dim)


def test_gem_pool_with_p_1_is_average_pooling() -> None:
    features = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]], [[0.5, 0.5], [0.5, 0.5]]]])
    torch.testing.assert_close(gem_pool(features, p=1.0), torch.tensor([[3.0, 0.5]]))
    # p = 2 by hand: sqrt((1 + 4 + 9 + 36) / 4).
    expected = torch.tensor([[(50.0 / 4) ** 0.5, 0.5]])
    torch.testing.assert_close(gem_pool(features, p=2.0), expected)


def test_gem_aggregator_starts_at_p_3() -> None:
    aggregator = build_aggregator("GeM", IN_CHANNELS, FEATURE_SIZE)
    assert aggregator.pool.p.item() == pytest.approx(3.0)
    assert aggregator.out_dim == IN_CHANNELS


def test_aggregator_rejects_wrong_channel_count() -> None:
    aggregator = build_aggregator("ConvAP", IN_CHANNELS, FEATURE_SIZE)
    with pytest.raises(ValueError, match="expects features"):
        aggregator(_features(channels=IN_CHANNELS + 1))


@pytest.mark.parametrize("image_size", [(64, 64), (80, 48)])
def test_mixvpr_model_follows_image_size(image_size: tuple[int, int]) -> None:
    model = build_model(
        "resnet18", "MixVPR", descriptors_dim=64, image_size=image_size, pretrained="none"
    )
    assert model.backbone.cut_after == "layer2"
    assert model.aggregator.feature_size == (image_size[0] // 8, image_size[1] // 8)
    descriptors = model(torch.rand(1, 3, *image_size))
    assert descriptors.shape == (1, 64)
    assert model.descriptors_dim == 64


def test_mixvpr_rejects_other_feature_size() -> None:
    aggregator = build_aggregator("MixVPR", IN_CHANNELS, (4, 4))
    with pytest.raises(ValueError, match="built for feature maps"):
        aggregator(_features())


def test_build_model_default_cut_and_options_not_mutated() -> None:
    options = {"conv_channels": 8}
    model = build_model(
        "resnet18",
        "convgem",
        descriptors_dim=16,
        image_size=(64, 64),
        pretrained="none",
        agg_options=options,
    )
    assert isinstance(model.aggregator, ConvGeM)  # "convgem" found by exact name
    assert options == {"conv_channels": 8}
    assert model.backbone.cut_after == "layer4"
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 16)


@pytest.mark.parametrize(
    ("name", "cut_after", "channels"),
    [
        ("resnet18", "layer4", 512),
        ("resnet18", "layer2", 128),
        ("resnet50", "layer4", 2048),
        ("resnet50", "layer3", 1024),
    ],
)
def test_backbone_out_channels_and_feature_size(name: str, cut_after: str, channels: int) -> None:
    backbone = build_backbone(name, pretrained="none", cut_after=cut_after).eval()
    assert backbone.out_channels == channels
    for image_size in [(64, 64), (65, 47)]:
        with torch.no_grad():
            feature_map = backbone(torch.rand(1, 3, *image_size))
        assert feature_map.shape[1] == channels
        assert tuple(feature_map.shape[2:]) == backbone.feature_size(image_size)


def test_backbone_names_are_exact() -> None:
    assert build_backbone("ResNet18", pretrained="none").name == "resnet18"
    with pytest.raises(ValueError, match="resnet152"):
        build_backbone("resnet", pretrained="none")
    with pytest.raises(ValueError, match="layer2"):
        build_backbone("resnet18", pretrained="none", cut_after="layer1")
    assert list_backbones()[:5] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert "dinov2_vitb14" in list_backbones() and "dinov2_vitb14_reg" in list_backbones()


def test_backbone_missing_weights_file() -> None:
    with pytest.raises(FileNotFoundError, match="/nonexistent.pth"):
        build_backbone("resnet18", pretrained="/nonexistent.pth")


def test_backbone_weights_file_round_trip(tmp_path: Path) -> None:
    source = build_backbone("resnet18", pretrained="none")
    path = tmp_path / "resnet18.pth"
    # A torchvision-style file: the fc keys must be ignored.
    state_dict = {**source.state_dict(), "fc.weight": torch.zeros(10, 512)}
    torch.save(state_dict, path)

    for cut_after in ("layer4", "layer2"):
        loaded = build_backbone("resnet18", pretrained=str(path), cut_after=cut_after)
        for key, value in loaded.state_dict().items():
            torch.testing.assert_close(value, source.state_dict()[key], msg=key)


def test_backbone_weights_file_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(build_backbone("resnet18", pretrained="none").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit resnet50"):
        build_backbone("resnet50", pretrained=str(path))


def test_imagenet_download_failure_explains_how_to_proceed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def offline(*args: object, **kwargs: object) -> dict:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="pretrained='none'") as error:
        build_backbone("resnet18", pretrained="imagenet")
    message = str(error.value)
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-") in message
    assert "pretrained='/path/to/weights.pth'" in message


def test_vpr_model_chains_backbone_and_aggregator() -> None:
    backbone = build_backbone("resnet18", pretrained="none", cut_after="layer3")
    aggregator = build_aggregator("GeM", backbone.out_channels, backbone.feature_size((64, 64)))
    model = VPRModel(backbone, aggregator)
    assert model.backbone is backbone and model.aggregator is aggregator
    assert model.descriptors_dim == 256
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 256)
