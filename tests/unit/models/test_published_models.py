"""Published models: the authors' key layouts, their forward passes, weights from files/hub.

Every weights file here is fabricated in the upstream key layout with the real published
shapes (random values), and the authors' computation is re-stated in plain functional
PyTorch from their papers and documented code, independently of `vpr`'s modules.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from helpers.published import geolocalization_net_state, torchvision_resnet
from torch import nn

from vpr.models.pretrained import get_published_model, list_published_models
from vpr.models.pretrained.build import build_published_model
from vpr.models.pretrained.cosplace import COSPLACE_DIMS
from vpr.models.pretrained.eigenplaces import EIGENPLACES_DIMS
from vpr.models.pretrained.files import PublishedWeightsError, read_state_dict
from vpr.models.pretrained.hub import resolve_weights
from vpr.models.pretrained.load import load_published

# ---------------------------------------------------------------- fabricated upstream files


def mixvpr_state(seed: int = 0, hw: int = 400, channels: int = 1024, out_channels: int = 1024,
                 rows: int = 4) -> dict[str, torch.Tensor]:
    """A state dict in the key layout of the authors' MixVPR `VPRModel` (ResNet-50 to layer3)."""
    resnet = torchvision_resnet("resnet50", seed)
    state = {f"backbone.model.{key}": value for key, value in resnet.state_dict().items()
             if not key.startswith(("layer4.", "fc."))}
    generator = torch.Generator().manual_seed(seed + 1)
    for index in range(4):
        prefix = f"aggregator.mix.{index}.mix."
        state[prefix + "0.weight"] = 1 + 0.1 * torch.randn(hw, generator=generator)
        state[prefix + "0.bias"] = 0.1 * torch.randn(hw, generator=generator)
        state[prefix + "1.weight"] = torch.randn(hw, hw, generator=generator) * 0.05
        state[prefix + "1.bias"] = torch.randn(hw, generator=generator) * 0.01
        state[prefix + "3.weight"] = torch.randn(hw, hw, generator=generator) * 0.05
        state[prefix + "3.bias"] = torch.randn(hw, generator=generator) * 0.01
    state["aggregator.channel_proj.weight"] = torch.randn(out_channels, channels,
                                                          generator=generator) * 0.03
    state["aggregator.channel_proj.bias"] = torch.randn(out_channels, generator=generator) * 0.01
    state["aggregator.row_proj.weight"] = torch.randn(rows, hw, generator=generator) * 0.05
    return state


# ------------------------------------------------ the authors' forward passes, re-stated


def _resnet_from(state: dict[str, torch.Tensor], prefix: str, name: str, numbered: bool,
                 last_layer: str) -> nn.Module:
    """torchvision's ResNet modules up to `last_layer`, with the weights under `prefix`.

    `numbered`: the children are keyed 0, 1, ... (`nn.Sequential(*children)`, CosPlace);
    else by their torchvision names (MixVPR's `backbone.model.conv1`, ...).
    """
    resnet = torchvision.models.get_model(name, weights=None)
    layers = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    layers = layers[: layers.index(last_layer) + 1]
    if numbered:
        module = nn.Sequential(*[getattr(resnet, layer) for layer in layers])
    else:
        module = nn.Sequential(OrderedDict((layer, getattr(resnet, layer)) for layer in layers))
    module.load_state_dict({key[len(prefix):]: value for key, value in state.items()
                            if key.startswith(prefix) and not key.startswith(prefix + "aggr")})
    return module.eval()


def cosplace_reference(state: dict[str, torch.Tensor], backbone: str,
                       images: torch.Tensor) -> torch.Tensor:
    """CosPlace's model card: CNN backbone -> L2 -> GeM -> FC -> L2."""
    features = _resnet_from(state, "backbone.", backbone, numbered=True,
                            last_layer="layer4")(images)
    features = F.normalize(features, p=2.0, dim=1)
    p = state["aggregation.1.p"]
    pooled = F.avg_pool2d(features.clamp(min=1e-6).pow(p), features.shape[-2:]).pow(1.0 / p)
    projected = F.linear(pooled[:, :, 0, 0], state["aggregation.3.weight"],
                         state["aggregation.3.bias"])
    return F.normalize(projected, p=2.0, dim=1)


def mixvpr_reference(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """MixVPR (paper eq. 8-11): mixers over the flattened map, channel then row projection."""
    features = _resnet_from(state, "backbone.model.", "resnet50", numbered=False,
                            last_layer="layer3")(images)
    x = features.flatten(2)  # (B, C, h*w)
    for index in range(4):
        key = f"aggregator.mix.{index}.mix."
        hidden = F.layer_norm(x, (x.shape[-1],), state[key + "0.weight"], state[key + "0.bias"])
        hidden = F.relu(F.linear(hidden, state[key + "1.weight"], state[key + "1.bias"]))
        x = x + F.linear(hidden, state[key + "3.weight"], state[key + "3.bias"])
    x = F.linear(x.permute(0, 2, 1), state["aggregator.channel_proj.weight"],
                 state["aggregator.channel_proj.bias"])  # (B, h*w, C')
    x = F.linear(x.permute(0, 2, 1), state["aggregator.row_proj.weight"])  # (B, C', rows)
    return F.normalize(x.flatten(1), p=2, dim=-1)


def _images(size: int, count: int = 2, seed: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, size, size, generator=generator)


# ---------------------------------------------------------------- the registry


def test_registry_has_every_published_resnet_variant():
    names = set(list_published_models())
    for family, dims in (("cosplace", COSPLACE_DIMS), ("eigenplaces", EIGENPLACES_DIMS)):
        for backbone, sizes in dims.items():
            for dim in sizes:
                model = get_published_model(f"{family}:{backbone}-{dim}")
                assert model.key in names
                assert (model.backbone, model.descriptors_dim) == (backbone, dim)
                assert model.weights.endswith(f"_{dim}_{family}.pth")
    # The family's default variant is ResNet-50 at 2048-D.
    assert get_published_model("cosplace").variant == "resnet50-2048"
    assert get_published_model("EigenPlaces").variant == "resnet50-2048"
    mixvpr = get_published_model("mixvpr")
    assert (mixvpr.descriptors_dim, mixvpr.image_size) == (4096, (320, 320))


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="cosplace:resnet50-2048"):
        get_published_model("cosplaces")
    with pytest.raises(ValueError, match="resnet50-2048"):
        get_published_model("cosplace:resnet50-4096")


# ---------------------------------------------------------------- layouts load strictly


@pytest.mark.parametrize("key", ["cosplace:resnet18-512", "cosplace:resnet50-128",
                                 "eigenplaces:resnet101-1024"])
def test_geolocalization_net_file_loads_strictly(key):
    model = get_published_model(key)
    state = geolocalization_net_state(model.backbone, model.descriptors_dim)
    network = build_published_model(model, state)
    # Every value of the file landed somewhere: the converted dict covers the whole model.
    converted = model.convert(state)
    assert set(converted) == set(network.state_dict())
    for our_key, value in network.state_dict().items():
        assert torch.equal(value, converted[our_key]), our_key
    with torch.no_grad():
        descriptors = network.eval()(_images(32, count=2))
    assert descriptors.shape == (2, model.descriptors_dim)
    assert torch.isfinite(descriptors).all()
    assert torch.allclose(descriptors.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("key", ["cosplace:resnet18-256", "eigenplaces:resnet50-2048"])
def test_geolocalization_net_matches_the_authors_forward_pass(key):
    model = get_published_model(key)
    state = geolocalization_net_state(model.backbone, model.descriptors_dim, seed=7)
    network = build_published_model(model, state)
    images = _images(64, count=2)
    with torch.no_grad():
        ours = network.eval()(images)
        theirs = cosplace_reference(state, model.backbone, images)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)
    # Not trivially equal: two different images give different descriptors.
    assert (ours[0] - ours[1]).abs().max() > 1e-3


@pytest.mark.slow
def test_mixvpr_file_loads_strictly_and_matches_the_authors_forward_pass():
    model = get_published_model("mixvpr")
    state = mixvpr_state(seed=5)
    network = build_published_model(model, state)
    assert set(model.convert(state)) == set(network.state_dict())
    images = _images(320, count=1)
    with torch.no_grad():
        ours = network.eval()(images)
        theirs = mixvpr_reference(state, images)
    assert ours.shape == (1, 4096)
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours.norm(dim=1), torch.ones(1), atol=1e-5)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)
    # The comparison can fail: rows of the projection in another order give another result.
    swapped = dict(state)
    swapped["aggregator.row_proj.weight"] = state["aggregator.row_proj.weight"].flip(0)
    with torch.no_grad():
        assert not torch.allclose(build_published_model(model, swapped)(images), theirs,
                                  atol=1e-4)


def test_wrong_layout_names_unknown_missing_and_reshaped_keys(tmp_path: Path):
    torch.save(geolocalization_net_state("resnet18", 256), tmp_path / "cosplace_256.pth")
    with pytest.raises(PublishedWeightsError) as error:
        load_published("cosplace:resnet18-512", tmp_path / "cosplace_256.pth")
    message = str(error.value)
    assert "cosplace_256.pth (cosplace:resnet18-512)" in message
    assert "aggregator.projection.bias: file (256,) vs model (512,)" in message
    # A ResNet-50 file for a ResNet-18 model: the extra bottleneck convolutions are unexpected.
    torch.save(geolocalization_net_state("resnet50", 512), tmp_path / "r50.pth")
    with pytest.raises(PublishedWeightsError, match=r"unexpected keys \['backbone.layer1.0.bn3"):
        load_published("cosplace:resnet18-512", tmp_path / "r50.pth")
    # A CosPlace file given for MixVPR: no key of it is in MixVPR's layout.
    with pytest.raises(PublishedWeightsError, match="not a MixVPR state dict: .*backbone.0."):
        load_published("mixvpr", tmp_path / "cosplace_256.pth")
    # A MixVPR-layout file missing its aggregator.
    state = {key: value for key, value in mixvpr_state().items()
             if not key.startswith("aggregator.row_proj")}
    torch.save(state, tmp_path / "partial.ckpt")
    with pytest.raises(PublishedWeightsError,
                       match=r"1 missing keys \['aggregator.row_projection.weight'\]"):
        load_published("mixvpr", tmp_path / "partial.ckpt")


# ---------------------------------------------------------------- weights files


def test_read_state_dict_formats_and_containers(tmp_path: Path):
    from safetensors.torch import save_file

    state = {"a.weight": torch.arange(6.0).view(2, 3), "b": torch.ones(2)}
    torch.save(state, tmp_path / "plain.pth")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "lightning.ckpt")
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pt")
    save_file(state, str(tmp_path / "file.safetensors"))
    for name in ("plain.pth", "lightning.ckpt", "ddp.pt", "file.safetensors"):
        loaded = read_state_dict(tmp_path / name)
        assert set(loaded) == set(state), name
        assert torch.equal(loaded["a.weight"], state["a.weight"])


def test_read_state_dict_refuses_pickled_objects_and_unknown_formats(tmp_path: Path):
    torch.save({"state_dict": {"w": torch.ones(1)}, "obj": Path("x")}, tmp_path / "evil.pth")
    with pytest.raises(PublishedWeightsError, match="refused to load"):
        read_state_dict(tmp_path / "evil.pth")
    (tmp_path / "w.npz").write_bytes(b"0")
    with pytest.raises(PublishedWeightsError, match="unknown weights format .npz"):
        read_state_dict(tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "none.pth")


def test_load_published_from_a_file(tmp_path: Path):
    state = geolocalization_net_state("resnet18", 64, seed=2)
    torch.save(state, tmp_path / "ResNet18_64_cosplace.pth")
    network, preprocessing = load_published("cosplace:resnet18-64",
                                            tmp_path / "ResNet18_64_cosplace.pth")
    assert not network.training
    assert preprocessing.image_size is None  # CosPlace evaluates images at their own size
    assert preprocessing.mean == (0.485, 0.456, 0.406)
    images = _images(40)
    with torch.no_grad():
        assert torch.allclose(network(images), cosplace_reference(state, "resnet18", images),
                              atol=1e-5)
    _, preprocessing = load_published("cosplace:resnet18-64", tmp_path /
                                      "ResNet18_64_cosplace.pth", image_size=(96, 128))
    assert preprocessing.image_size == (96, 128)


def test_model_without_hub_source_needs_weights():
    with pytest.raises(PublishedWeightsError,
                       match="needs its weights: give weights .*github.com/gmberton"):
        load_published("cosplace:resnet18-64")


# ---------------------------------------------------------------- the hf: resolver


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def fake_hub_cache(root: Path, repo: str, files: dict[str, bytes], revision: str = "0" * 40
                   ) -> Path:
    """Writes `files` into the huggingface_hub cache layout under `root`; returns `root`."""
    org, name = repo.split("/")
    folder = root / f"models--{org}--{name}"
    snapshot = folder / "snapshots" / revision
    for filename, content in files.items():
        (snapshot / filename).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / filename).write_bytes(content)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return root


@pytest.mark.parametrize("offline", ["1", ""])
def test_hub_weights_come_from_the_local_cache(tmp_path, monkeypatch, no_network, offline):
    from safetensors.torch import save_file

    save_file({"x": torch.ones(2)}, str(tmp_path / "w.safetensors"))
    cache = fake_hub_cache(tmp_path / "hub", "someone/cosplace-r18", {
        "ResNet18_64_cosplace.safetensors": (tmp_path / "w.safetensors").read_bytes(),
        "README.md": b"# weights"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    named = resolve_weights("hf:someone/cosplace-r18/ResNet18_64_cosplace.safetensors")
    only = resolve_weights("hf:someone/cosplace-r18")  # the repository's one weights file
    assert named.name == only.name == "ResNet18_64_cosplace.safetensors"
    assert str(named).startswith(str(cache))
    assert torch.equal(read_state_dict(named)["x"], torch.ones(2))


def test_hub_cache_found_through_hf_home(tmp_path, monkeypatch, no_network):
    fake_hub_cache(tmp_path / "home" / "hub", "org/repo", {"model.pth": b"x"})
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights("hf:org/repo/model.pth").read_bytes() == b"x"


def test_hub_weights_missing_offline_is_one_clear_error(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishedWeightsError) as error:
        resolve_weights("hf:someone/salad/model.safetensors")
    message = str(error.value)
    assert "\n" not in message
    assert "someone/salad/model.safetensors is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "hf download someone/salad" in message


def test_hub_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    """Online and not cached: the hub is asked once, and its failure becomes one line."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, cache_dir=None, local_files_only=False, **kwargs):
        calls.append(local_files_only)
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise OSError("Connection refused\nmore detail")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(PublishedWeightsError) as error:
        resolve_weights("hf:someone/boq/model.pth")
    assert calls == [True, False]  # the cache first, then the network
    message = str(error.value)
    assert "\n" not in message and "could not be downloaded (OSError: Connection refused)" \
        in message and "someone/boq/model.pth" in message


def test_hub_repository_with_several_files_asks_for_one(tmp_path, monkeypatch, no_network):
    cache = fake_hub_cache(tmp_path / "hub", "org/repo", {"a.pth": b"1", "b.safetensors": b"2"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishedWeightsError, match="holds 2 weights files.*hf:org/repo/FILE"):
        resolve_weights("hf:org/repo")
    with pytest.raises(PublishedWeightsError, match="expected hf:ORG/REPO"):
        resolve_weights("hf:justone")


def test_load_published_from_the_hub_cache(tmp_path, monkeypatch, no_network):
    state = geolocalization_net_state("resnet18", 32, seed=4)
    torch.save(state, tmp_path / "w.pth")
    cache = fake_hub_cache(tmp_path / "hub", "gm/cosplace", {
        "ResNet18_32_cosplace.pth": (tmp_path / "w.pth").read_bytes()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    network, _ = load_published("cosplace:resnet18-32", "hf:gm/cosplace/ResNet18_32_cosplace.pth")
    images = _images(40)
    with torch.no_grad():
        assert torch.allclose(network(images), cosplace_reference(state, "resnet18", images),
                              atol=1e-5)
