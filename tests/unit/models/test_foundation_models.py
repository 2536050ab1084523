"""DINOv2 backbones, SALAD and BoQ, and the published layouts (SALAD, BoQ, MegaLoc, DINOv2).

The `Upstream*` modules below restate the authors' module structure and computation (key
names, order of operations, normalisations) as read from facebookresearch/dinov2,
serizba/salad, amaralibey/Bag-of-Queries and gmberton/MegaLoc, so that their state dicts
have the real upstream keys and shapes and their outputs are the reference our converted
models must reproduce.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from vpr.models.aggregators import SALAD, BoQ, build_aggregator, log_sinkhorn
from vpr.models.backbones import ViTBackbone, build_backbone
from vpr.models.backbones.dinov2_keys import dinov2_to_ours
from vpr.models.backbones.vit import VIT_ARCHITECTURES
from vpr.models.model import VPRModel
from vpr.models.pretrained import build_published_model, get_published_model
from vpr.models.pretrained.boq import convert_boq_dinov2
from vpr.models.pretrained.keymap import rename_by_prefix
from vpr.models.pretrained.salad import SALAD_AGGREGATOR_PREFIXES, convert_salad

# ---------------------------------------------------------------- upstream restatements


class _Holder(nn.Module):
    """An empty module to hang sub-modules on, giving upstream key paths."""


class UpstreamAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attention = ((q * (dim // self.heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, tokens, dim))


class UpstreamLayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class UpstreamMlp(nn.Module):
    def __init__(self, dim: int, swiglu: bool) -> None:
        super().__init__()
        self.swiglu = swiglu
        if swiglu:  # DINOv2's SwiGLUFFNFused hidden size
            hidden = (int(4 * dim * 2 / 3) + 7) // 8 * 8
            self.w12, self.w3 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)
        else:
            self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            x1, x2 = self.w12(x).chunk(2, dim=-1)
            return self.w3(F.silu(x1) * x2)
        return self.fc2(F.gelu(self.fc1(x)))


class UpstreamBlock(nn.Module):
    def __init__(self, dim: int, heads: int, swiglu: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = UpstreamAttention(dim, heads)
        self.ls1 = UpstreamLayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = UpstreamMlp(dim, swiglu)
        self.ls2 = UpstreamLayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class UpstreamDinoV2(nn.Module):
    """facebookresearch/dinov2 DinoVisionTransformer (hub settings, block_chunks=0)."""

    def __init__(self, dim: int = 384, depth: int = 12, heads: int = 6, registers: int = 0,
                 swiglu: bool = False) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + 37 * 37, dim))
        self.register_tokens = nn.Parameter(torch.randn(1, registers, dim)) if registers else None
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = _Holder()
        self.patch_embed.proj = nn.Conv2d(3, dim, kernel_size=14, stride=14)
        self.blocks = nn.ModuleList(UpstreamBlock(dim, heads, swiglu) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # Hub: the original models 0.1 / no antialias, the register models 0.0 / antialias.
        self.offset, self.antialias = (0.0, True) if registers else (0.1, False)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        pos = self.pos_embed.float()
        if (height // 14, width // 14) == (37, 37):
            return pos
        patch_pos = pos[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
        h0, w0 = height // 14, width // 14
        if self.offset:
            kwargs = {"scale_factor": ((h0 + self.offset) / 37, (w0 + self.offset) / 37)}
        else:
            kwargs = {"size": (h0, w0)}
        patch_pos = F.interpolate(patch_pos, mode="bicubic", antialias=self.antialias, **kwargs)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1])
        return torch.cat([pos[:, :1], patch_pos], dim=1)

    def forward(self, images: torch.Tensor, norm: bool = True) -> torch.Tensor:
        x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        x = x + self.interpolate_pos_encoding(*images.shape[-2:])
        if self.register_tokens is not None:
            x = torch.cat([x[:, :1], self.register_tokens.expand(len(x), -1, -1), x[:, 1:]], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x) if norm else x


def upstream_log_optimal_transport(scores, alpha, iters):
    """SuperGlue's log-domain Sinkhorn with a dustbin row, as SALAD calls it."""
    b, m, n = scores.shape
    couplings = torch.cat([scores, alpha.expand(b, 1, n)], 1)
    norm = -torch.tensor(float(m + n)).log()
    log_mu = torch.cat([norm.expand(m), torch.tensor(float(n - m)).log()[None] + norm])
    log_nu = norm.expand(n)
    log_mu, log_nu = log_mu[None].expand(b, -1), log_nu[None].expand(b, -1)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(iters):
        u = log_mu - torch.logsumexp(couplings + v.unsqueeze(1), dim=2)
        v = log_nu - torch.logsumexp(couplings + u.unsqueeze(2), dim=1)
    return couplings + u.unsqueeze(2) + v.unsqueeze(1) - norm


class UpstreamSALAD(nn.Module):
    def __init__(self, channels, clusters=64, cluster_dim=128, token_dim=256, hidden=512):
        super().__init__()
        self.clusters, self.cluster_dim = clusters, cluster_dim
        self.token_features = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, token_dim))
        self.cluster_features = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.Dropout(0.3), nn.ReLU(),
            nn.Conv2d(hidden, cluster_dim, 1))
        self.score = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.Dropout(0.3), nn.ReLU(),
            nn.Conv2d(hidden, clusters, 1))
        self.dust_bin = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        x, t = x
        f = self.cluster_features(x).flatten(2)
        p = self.score(x).flatten(2)
        t = self.token_features(t)
        p = torch.exp(upstream_log_optimal_transport(p, self.dust_bin, 3))[:, :-1, :]
        p = p.unsqueeze(1).repeat(1, self.cluster_dim, 1, 1)
        f = f.unsqueeze(2).repeat(1, 1, self.clusters, 1)
        f = torch.cat([F.normalize(t, p=2, dim=-1),
                       F.normalize((f * p).sum(dim=-1), p=2, dim=1).flatten(1)], dim=-1)
        return F.normalize(f, p=2, dim=-1)


class UpstreamSALADModel(nn.Module):
    """serizba/salad VPRModel: backbone.model (DINOv2, final norm) + aggregator (SALAD)."""

    def __init__(self, dino: UpstreamDinoV2, salad: nn.Module) -> None:
        super().__init__()
        self.backbone = _Holder()
        self.backbone.model = dino
        self.aggregator = salad

    def forward(self, images):
        tokens = self.backbone.model(images)
        h, w = images.shape[-2] // 14, images.shape[-1] // 14
        feature_map = tokens[:, 1:].reshape(len(images), h, w, -1).permute(0, 3, 1, 2)
        return self.aggregator((feature_map, tokens[:, 0]))


class UpstreamMegaLocHead(nn.Module):
    def __init__(self, salad: UpstreamSALAD, out_dim: int) -> None:
        super().__init__()
        self.agg = salad
        in_dim = salad.clusters * salad.cluster_dim + salad.token_features[2].out_features
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x):
        return F.normalize(self.linear(self.agg(x)), p=2, dim=-1)


class UpstreamBoQBlock(nn.Module):
    def __init__(self, dim, queries, heads):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(
            d_model=dim, nhead=heads, dim_feedforward=4 * dim, batch_first=True, dropout=0.0)
        self.queries = nn.Parameter(torch.randn(1, queries, dim))
        self.self_attn = nn.MultiheadAttention(dim, num_heads=heads, batch_first=True)
        self.norm_q = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads=heads, batch_first=True)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.encoder(x)
        q = self.queries.repeat(len(x), 1, 1)
        q = self.norm_q(q + self.self_attn(q, q, q)[0])
        return x, self.norm_out(self.cross_attn(q, x, x)[0])


class UpstreamBoQ(nn.Module):
    def __init__(self, in_channels, proj_channels, num_queries=64, num_layers=2, row_dim=32):
        super().__init__()
        self.proj_c = nn.Conv2d(in_channels, proj_channels, kernel_size=3, padding=1)
        self.norm_input = nn.LayerNorm(proj_channels)
        self.boqs = nn.ModuleList(UpstreamBoQBlock(proj_channels, num_queries,
                                                   proj_channels // 64)
                                  for _ in range(num_layers))
        self.fc = nn.Linear(num_layers * num_queries, row_dim)

    def forward(self, x):
        x = self.norm_input(self.proj_c(x).flatten(2).permute(0, 2, 1))
        outs = []
        for block in self.boqs:
            x, out = block(x)
            outs.append(out)
        out = self.fc(torch.cat(outs, dim=1).permute(0, 2, 1)).flatten(1)
        return F.normalize(out, p=2, dim=-1)


class UpstreamBoQModel(nn.Module):
    """amaralibey/Bag-of-Queries hub VPRModel with the DINOv2 (no final norm) backbone."""

    def __init__(self, dino: UpstreamDinoV2, boq: UpstreamBoQ) -> None:
        super().__init__()
        self.backbone = _Holder()
        self.backbone.dino = dino
        self.aggregator = boq

    def forward(self, images):
        tokens = self.backbone.dino(images, norm=False)[:, 1:]
        b, _, height, width = images.shape
        feature_map = tokens.permute(0, 2, 1).reshape(b, -1, height // 14, width // 14)
        return self.aggregator(feature_map)


def _upstream_resnet50_boq() -> nn.Module:
    """BoQ's hub ResNet-50: backbone.net = conv1, bn1, relu, maxpool, layer1..3."""
    resnet = torchvision.models.resnet50(weights=None)
    model = _Holder()
    model.backbone = _Holder()
    model.backbone.net = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                       resnet.layer1, resnet.layer2, resnet.layer3)
    model.aggregator = UpstreamBoQ(1024, 512, row_dim=32)
    return model


def _random_like(module_on_meta: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values with the module's state-dict keys and shapes (BN variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module_on_meta.state_dict().items():
        if not value.is_floating_point():
            state[key] = torch.zeros(value.shape, dtype=value.dtype)
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.05
    return state


def _tiny_vit(name: str = "dinov2_vits14", depth: int = 2, **options) -> ViTBackbone:
    return ViTBackbone(name, VIT_ARCHITECTURES[name], depth=depth, **options)


# ---------------------------------------------------------------- DINOv2 backbones


@pytest.mark.parametrize("registers", [0, 4])
def test_dinov2_backbone_reproduces_the_original_at_any_size(registers: int) -> None:
    torch.manual_seed(0)
    upstream = UpstreamDinoV2(depth=2, registers=registers).eval()
    ours = _tiny_vit("dinov2_vits14_reg" if registers else "dinov2_vits14").eval()
    ours.load_state_dict(dinov2_to_ours(upstream.state_dict()))
    sizes = [(224, 224), (126, 182)] if registers else [(322, 322), (126, 182), (518, 518)]
    for height, width in sizes:
        images = torch.randn(1, 3, height, width)
        with torch.no_grad():
            tokens = upstream(images)
            feature_map, class_token = ours.forward_features(images)
        assert feature_map.shape == (1, 384, height // 14, width // 14)
        expected_map = tokens[:, 1 + registers:].reshape(1, height // 14, width // 14, 384)
        torch.testing.assert_close(feature_map, expected_map.permute(0, 3, 1, 2),
                                   atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(class_token, tokens[:, 0], atol=2e-5, rtol=1e-4)


def test_dinov2_giant_swiglu_and_chunked_keys_map() -> None:
    with torch.device("meta"):
        upstream = UpstreamDinoV2(dim=1536, depth=40, heads=24, swiglu=True)
        ours = build_backbone("dinov2_vitg14", pretrained="none")
    # A block_chunks=4 model stores blocks.<chunk>.<index>.
    chunked = {
        (f"blocks.{int(key.split('.')[1]) // 10}.{key[len('blocks.'):]}"
         if key.startswith("blocks.") else key): value
        for key, value in upstream.state_dict().items()
    }
    converted = dinov2_to_ours(chunked)
    expected = ours.state_dict()
    assert set(converted) == set(expected)
    assert all(converted[key].shape == expected[key].shape for key in expected)


def test_dinov2_file_in_either_layout_loads_and_wrong_files_are_named(tmp_path: Path) -> None:
    torch.manual_seed(1)
    upstream = UpstreamDinoV2(depth=12, registers=4).eval()
    original = tmp_path / "dinov2_vits14_reg4_pretrain.pth"
    torch.save(upstream.state_dict(), original)
    backbone = build_backbone("dinov2_vits14_reg", pretrained=original).eval()
    timm_file = tmp_path / "timm.pth"
    torch.save(backbone.state_dict(), timm_file)
    again = build_backbone("dinov2_vits14_reg", pretrained=timm_file).eval()
    images = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(again(images), backbone(images))

    with pytest.raises(ValueError, match="missing keys.*reg_token"):
        build_backbone("dinov2_vits14", pretrained=original)  # registers where none expected
    resnet_file = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), resnet_file)
    with pytest.raises(ValueError, match="unknown keys.*bn1"):
        build_backbone("dinov2_vits14", pretrained=resnet_file)
    with pytest.raises(ValueError, match="pretrained='none'"):
        build_backbone("dinov2_vits14", pretrained="imagenet")


def test_position_embeddings_interpolate_and_sizes_must_be_multiples_of_14() -> None:
    backbone = _tiny_vit(depth=1).eval()
    with torch.no_grad():
        assert backbone(torch.rand(1, 3, 224, 224)).shape[2:] == (16, 16)
        assert backbone(torch.rand(1, 3, 322, 322)).shape[2:] == (23, 23)
    assert backbone.feature_size((322, 224)) == (23, 16)
    with pytest.raises(ValueError, match="multiples of 14"):
        backbone(torch.rand(1, 3, 225, 224))


def test_train_blocks_freezes_the_rest_in_eval_mode_and_gradients_reach_the_trained() -> None:
    torch.manual_seed(0)
    backbone = _tiny_vit(depth=3, grad_checkpointing=True)
    backbone.set_train_blocks(1)
    aggregator = SALAD(384, (4, 4), num_clusters=4, cluster_dim=8, token_dim=8, hidden_dim=16)
    model = VPRModel(backbone, aggregator).train()
    assert not backbone.blocks[0].training and not backbone.patch_embed.training
    assert backbone.blocks[2].training and backbone.norm.training
    descriptors = model(torch.rand(2, 3, 56, 56))
    (descriptors * torch.randn_like(descriptors)).sum().backward()
    for name, parameter in model.named_parameters():
        trained = name.startswith(("backbone.blocks.2.", "backbone.norm.", "aggregator."))
        assert parameter.requires_grad == trained, name
        if trained:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name

    resnet = build_backbone("resnet18", pretrained="none", train_blocks=1).train()
    assert not resnet.bn1.training and not resnet.layer3.training and resnet.layer4.training
    assert not any(p.requires_grad for p in resnet.layer3.parameters())


# ---------------------------------------------------------------- SALAD and BoQ


def test_sinkhorn_plan_on_a_hand_checked_case_and_its_marginals() -> None:
    # Equal scores: each of 4 features gives 1/4 to each of 2 clusters, 2/4 to the dustbin.
    plan = log_sinkhorn(torch.zeros(1, 2, 4), torch.tensor(0.0), iterations=3).exp()
    expected = torch.tensor([[0.25] * 4, [0.25] * 4, [0.5] * 4])
    torch.testing.assert_close(plan[0], expected)
    # Random scores: with enough iterations the rows carry (1, 1, 1, n - m), columns 1 each.
    scores = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0))
    plan = log_sinkhorn(scores, torch.tensor(0.5), iterations=200).exp()
    torch.testing.assert_close(plan.sum(dim=1), torch.ones(2, 7))
    torch.testing.assert_close(plan.sum(dim=2), torch.tensor([[1.0, 1.0, 1.0, 4.0]] * 2))
    # Three iterations (the paper's) end on a column update: the columns match exactly.
    plan = log_sinkhorn(scores, torch.tensor(0.5), iterations=3).exp()
    torch.testing.assert_close(plan.sum(dim=1), torch.ones(2, 7))


def test_salad_reproduces_the_authors_computation() -> None:
    torch.manual_seed(0)
    upstream = UpstreamSALAD(32, clusters=8, cluster_dim=4, token_dim=6, hidden=16).eval()
    ours = SALAD(32, (5, 5), num_clusters=8, cluster_dim=4, token_dim=6, hidden_dim=16).eval()
    ours.load_state_dict(rename_by_prefix(upstream.state_dict(), SALAD_AGGREGATOR_PREFIXES,
                                          layout="SALAD"))
    features, token = torch.randn(3, 32, 5, 5), torch.randn(3, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(features, token), upstream((features, token)),
                                   atol=1e-6, rtol=1e-5)
    assert ours.out_dim == 8 * 4 + 6


def test_boq_reproduces_the_authors_computation() -> None:
    torch.manual_seed(0)
    upstream = UpstreamBoQ(48, 64, num_queries=5, num_layers=2, row_dim=3).eval()
    ours = BoQ(48, (4, 6), 192, proj_channels=64, num_queries=5, num_layers=2).eval()
    converted = convert_boq_dinov2({
        **{f"aggregator.{k}": v for k, v in upstream.state_dict().items()},
        **{f"backbone.dino.{k}": v for k, v in {"cls_token": torch.zeros(1, 1, 4),
                                                "pos_embed": torch.zeros(1, 2, 4)}.items()},
    })
    ours.load_state_dict({k.removeprefix("aggregator."): v for k, v in converted.items()
                          if k.startswith("aggregator.")})
    features = torch.randn(2, 48, 4, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(features), upstream(features), atol=1e-5, rtol=1e-4)
    assert ours.out_dim == 64 * 3


@pytest.mark.parametrize("name", ["SALAD", "BoQ"])
def test_aggregators_work_on_resnet_and_vit_maps(name: str) -> None:
    for channels, size in [(512, (7, 7)), (384, (16, 16))]:
        aggregator = build_aggregator(name, channels, size, descriptors_dim=256)
        descriptors = aggregator(torch.rand(2, channels, *size))
        assert descriptors.shape == (2, 256)
        torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(2))


def test_tiny_salad_model_end_to_end_matches_the_authors() -> None:
    torch.manual_seed(2)
    upstream = UpstreamSALADModel(
        UpstreamDinoV2(depth=2), UpstreamSALAD(384, clusters=8, cluster_dim=4, token_dim=6,
                                               hidden=16)).eval()
    ours = VPRModel(_tiny_vit(depth=2), SALAD(384, (9, 9), num_clusters=8, cluster_dim=4,
                                              token_dim=6, hidden_dim=16)).eval()
    ours.load_state_dict(convert_salad(upstream.state_dict()))
    images = torch.randn(2, 3, 126, 126)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), upstream(images), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- published layouts


def _published_case(key: str) -> tuple[nn.Module, int]:
    """The upstream model (on the meta device) of a published entry, at its real shapes."""
    with torch.device("meta"):
        if key == "salad":
            return UpstreamSALADModel(UpstreamDinoV2(768, 12, 12), UpstreamSALAD(768)), 126
        if key == "megaloc":
            head = UpstreamMegaLocHead(UpstreamSALAD(768, cluster_dim=256), 8448)
            return UpstreamSALADModel(UpstreamDinoV2(768, 12, 12), head), 126
        if key == "boq:dinov2-12288":
            return UpstreamBoQModel(UpstreamDinoV2(768, 12, 12), UpstreamBoQ(768, 384)), 126
        if key == "boq:resnet50-16384":
            return _upstream_resnet50_boq(), 96
        return UpstreamDinoV2(384, 12, 6, registers=4), 56  # dinov2:vits14_reg


@pytest.mark.parametrize(
    "key", ["salad", "megaloc", "boq:dinov2-12288", "boq:resnet50-16384", "dinov2:vits14_reg"]
)
def test_published_layout_loads_strictly_with_the_published_shapes(key: str) -> None:
    published = get_published_model(key)
    upstream, side = _published_case(key)
    model = build_published_model(published, _random_like(upstream))
    with torch.no_grad():
        descriptors = model(torch.randn(2, 3, side, side))
    assert descriptors.shape == (2, published.descriptors_dim)
    assert torch.isfinite(descriptors).all()
    torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(2))


def test_published_model_reproduces_the_authors_end_to_end_and_rejects_other_layouts() -> None:
    """BoQ-ResNet-50 at its real size, small input: the same numbers as the upstream model."""
    torch.manual_seed(3)
    upstream = _upstream_resnet50_boq()
    upstream.load_state_dict(_random_like(upstream, seed=3))
    upstream.eval()
    published = get_published_model("boq:resnet50-16384")
    ours = build_published_model(published, upstream.state_dict())
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = upstream.aggregator(upstream.backbone.net(images))
        torch.testing.assert_close(ours(images), expected, atol=1e-5, rtol=1e-4)

    with pytest.raises(ValueError, match=r"not a SALAD state dict.*aggregator\.boqs"):
        build_published_model(get_published_model("salad"), upstream.state_dict())
    truncated = dict(upstream.state_dict())
    del truncated["aggregator.fc.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['aggregator.row_projection.bias'\]"):
        build_published_model(published, truncated)
    reshaped = dict(upstream.state_dict())
    reshaped["aggregator.fc.weight"] = torch.zeros(16, 128)
    with pytest.raises(ValueError, match="shape mismatches.*row_projection.weight"):
        build_published_model(published, reshaped)
    lightning = {"state_dict": upstream.state_dict(), "epoch": 3}
    assert build_published_model(published, lightning).descriptors_dim == 16384


# ---------------------------------------------------------------- training: DDP and resume


@pytest.mark.slow
def test_vit_trains_with_ddp_and_resumes(tmp_path: Path) -> None:
    from helpers.images import write_image

    train = tmp_path / "train"
    for place in range(8):
        for image in range(2):
            write_image(train / "City", 100.0 * place + image, 0.0, f"{place:03d}_City",
                        seed=10 * place + image, size=(42, 42))
    test = tmp_path / "test"
    for index in range(4):
        write_image(test / "database", 500000.0 + 100 * index, 4e6, f"db{index}", index)
        write_image(test / "queries", 500003.0 + 100 * index, 4e6, f"q{index}", 50 + index)
    logs = tmp_path / "logs"
    common = ["--train_path", str(train), "--val_path", str(test), "--log_dir", str(logs),
              "--exp_name", "vit", "--image_size", "42", "--pretrained", "none",
              "--batch_size", "2", "--img_per_place", "2", "--min_img_per_place", "2",
              "--num_workers", "0", "--no_progress_bar", "--accelerator", "cpu",
              "--backbone", "dinov2_vits14", "--train_blocks", "2", "--agg_arch", "SALAD",
              "--agg_option", "num_clusters=4", "--agg_option", "cluster_dim=8",
              "--agg_option", "token_dim=8", "--agg_option", "hidden_dim=32",
              "--descriptors_dim", "32", "--seed", "7"]
    vpr = [sys.executable, "-m", "vpr", "train"]
    first = subprocess.run([*vpr, *common, "--max_epochs", "1", "--devices", "2",
                            "--strategy", "ddp"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    last = logs / "lightning_logs" / "vit" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    assert state["hyper_parameters"]["train_blocks"] == 2
    frozen_before = state["state_dict"]["model.backbone.blocks.0.attn.qkv.weight"]
    second = subprocess.run([*vpr, *common, "--max_epochs", "2", "--resume", str(last)],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = torch.load(last, weights_only=False)
    assert resumed["epoch"] > state["epoch"] or resumed["global_step"] > state["global_step"]
    # The frozen block did not move; a trained one did.
    torch.testing.assert_close(resumed["state_dict"]["model.backbone.blocks.0.attn.qkv.weight"],
                               frozen_before)
    assert not torch.equal(resumed["state_dict"]["model.backbone.blocks.11.attn.qkv.weight"],
                           state["state_dict"]["model.backbone.blocks.11.attn.qkv.weight"])
