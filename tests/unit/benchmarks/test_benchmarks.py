"""`vpr benchmark`: pinned protocols, checks before work, the standard table, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.images import write_image
from helpers.paths import REPO
from helpers.places import save_tiny_checkpoint
from PIL import Image

import vpr.benchmarks.run as benchmark_run
from vpr.benchmarks.check import check_against_manifest
from vpr.benchmarks.manifest import list_manifests, load_manifest
from vpr.cli import main
from vpr.data.geotag import parse_filename
from vpr.data.images import list_images, open_rgb
from vpr.datatools.convert import convert_dataset
from vpr.inputs.transforms import eval_transform
from vpr.training.checkpoints import load_module

FRAMES = 14


def test_every_manifest_loads_and_cites_its_sources():
    names = list_manifests()
    assert {"msls_val_740", "msls_val_full", "nordland", "pitts30k_test", "tokyo247",
            "synthetic"} <= set(names)
    for name in names:
        manifest = load_manifest(name)
        assert manifest.sources and manifest.positives.get("source")
        assert manifest.recall_values == (1, 5, 10)
    assert load_manifest("msls_val_740").queries_num == 740
    assert load_manifest("msls_val_740").positive_rule == "list"
    assert load_manifest("msls_val_full").positive_rule == "metres"
    assert load_manifest("nordland").describe_positives() == "+-10 frames"
    with pytest.raises(ValueError, match="unknown benchmark 'msls'"):
        load_manifest("msls")


def test_manifests_are_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"vpr.benchmarks" = ["manifests/*.yaml"]' in text


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """Two converted sets (St Lucia-like @-format, Nordland frames) and two checkpoints."""
    root = tmp_path_factory.mktemp("bench")
    raw = root / "st_lucia_raw" / "images" / "test"
    for index in range(8):
        write_image(raw / "database", 500000.0 + 100 * index, 4000000.0, f"d{index}", index)
    for index, east in enumerate((500005.0, 500190.0, 500310.0, 500620.0, 509000.0)):
        write_image(raw / "queries", east, 4000000.0, f"q{index}", 50 + index)
    convert_dataset("st_lucia", root / "st_lucia_raw", root / "st_lucia", progress=False)
    rng = np.random.default_rng(0)
    names = [f"{index:05d}.png" for index in range(FRAMES)]
    for season in ("summer", "winter"):
        for name in names:
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            (root / "nordland_raw" / season).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / "nordland_raw" / season / name)
    (root / "nordland_raw" / "cleanImageNames.txt").write_text("\n".join(names))
    convert_dataset("nordland", root / "nordland_raw", root / "nordland", progress=False)
    first = save_tiny_checkpoint(root / "a.ckpt", seed=0)
    # A second model without a second Lightning run: the same file with other weights.
    checkpoint = torch.load(first, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(1)
    for value in checkpoint["state_dict"].values():
        if value.is_floating_point() and value.ndim > 1:
            value.add_(torch.randn(value.shape, generator=generator) * value.std())
    torch.save(checkpoint, root / "b.ckpt")
    return {"root": root, "st_lucia": root / "st_lucia", "nordland": root / "nordland",
            "a": first, "b": root / "b.ckpt"}


def _tiny_nordland():
    """The nordland protocol without its pinned 27,592 counts: the test set is 14 frames."""
    import dataclasses

    return dataclasses.replace(load_manifest("nordland"), database_num=None, queries_num=None)


@pytest.fixture
def tiny_nordland(monkeypatch):
    def load(name: str):
        return _tiny_nordland() if name == "nordland" else load_manifest(name)

    monkeypatch.setattr(benchmark_run, "load_manifest", load)


def _hand_recalls(ckpt: Path, folder: Path, positive) -> dict[str, float]:
    """Recall@1/5/10 with our own forward pass, numpy distances and plain loops."""
    module = load_module(ckpt).eval()
    transform = eval_transform((32, 32))

    def describe(paths: list[Path]) -> np.ndarray:
        with torch.no_grad():
            return module(torch.stack([transform(open_rgb(p)) for p in paths])).numpy()

    database_paths = list_images(folder / "database")
    query_paths = list_images(folder / "queries")
    database, queries = describe(database_paths), describe(query_paths)
    recalls = {}
    for n in (1, 5, 10):
        hits = 0
        for q, query in enumerate(queries):
            order = np.argsort(((database - query) ** 2).sum(1), kind="stable")[:n]
            hits += any(positive(query_paths[q], database_paths[d]) for d in order)
        recalls[str(n)] = 100.0 * hits / len(queries)
    return recalls


def _within_25_m(query: Path, database: Path) -> bool:
    q, d = parse_filename(query), parse_filename(database)
    return ((q.utm_east - d.utm_east) ** 2 + (q.utm_north - d.utm_north) ** 2) ** 0.5 <= 25


def _within_10_frames(query: Path, database: Path) -> bool:
    return abs(int(parse_filename(query).tile_num) - int(parse_filename(database).tile_num)) <= 10


def test_benchmark_table_matches_hand_computed_recalls(world, tmp_path: Path, monkeypatch,
                                                        capsys, tiny_nordland):
    out = tmp_path / "table"
    argv = ["benchmark", "--ckpt_path", str(world["a"]), str(world["b"]),
            "--data", f"st_lucia={world['st_lucia']}", f"nordland={world['nordland']}",
            "--out", str(out), "--no_progress_bar", "--batch_size", "7"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| model | st_lucia R@1 | st_lucia R@5 | st_lucia R@10 | nordland R@1" in printed
    table = json.loads((out / "table.json").read_text())
    assert list(table["models"]) == ["a", "b"]
    for label in ("a", "b"):
        assert table["recalls"][label]["st_lucia"] == pytest.approx(
            _hand_recalls(world[label], world["st_lucia"], _within_25_m))
        assert table["recalls"][label]["nordland"] == pytest.approx(
            _hand_recalls(world[label], world["nordland"], _within_10_frames))
    assert table["protocols"]["nordland"]["positives"] == "+-10 frames"
    assert table["protocols"]["st_lucia"]["queries_num"] == 5
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,st_lucia R@1,st_lucia R@5")
    assert csv_lines[1].split(",")[1] == f"{table['recalls']['a']['st_lucia']['1']:.1f}"
    assert (out / "table.md").read_text().startswith("| model |")

    # The second table reads every descriptor from the cache: no extraction at all.
    def no_extraction(*args, **kwargs):
        raise AssertionError("descriptors were recomputed")

    monkeypatch.setattr(benchmark_run, "extract_descriptors", no_extraction)
    assert main(argv + ["--out", str(tmp_path / "again"), "--cache_dir",
                        str(out / "descriptors")]) == 0
    again = json.loads((tmp_path / "again" / "table.json").read_text())
    assert again["recalls"] == table["recalls"]


def test_mismatch_is_reported_before_any_work(world, tmp_path: Path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("vpr.benchmarks.models.load_checkpoint_model", no_work)
    code = main(["benchmark", "--ckpt_path", str(world["a"]), "--data",
                 f"pitts30k_test={world['st_lucia']}", "--out", str(tmp_path / "t")])
    assert code == 2
    error = capsys.readouterr().err
    assert "converted for 'st_lucia'" in error and "the pitts30k_test protocol has 10000" in error
    monkeypatch.undo()
    assert main(["benchmark", "--ckpt_path", str(world["a"]), "--data",
                 f"pitts30k_test={world['st_lucia']}", f"st_lucia={world['st_lucia']}",
                 "--out", str(tmp_path / "t"), "--allow_partial", "--no_cache",
                 "--no_progress_bar"]) == 0
    table = json.loads((tmp_path / "t" / "table.json").read_text())
    assert table["benchmarks"] == ["st_lucia"]
    assert any(item.startswith("pitts30k_test:") for item in table["left_out"])


def test_check_finds_missing_files_and_ground_truth(world, tmp_path: Path):
    import shutil

    copy = tmp_path / "nordland"
    shutil.copytree(world["nordland"], copy)
    assert "27592" in " ".join(check_against_manifest(load_manifest("nordland"), copy).problems)
    manifest = _tiny_nordland()
    assert check_against_manifest(manifest, copy).ok
    first = list_images(copy / "queries")[0]
    renamed = first.with_name(first.name.replace("@winter@", "@renamed@"))
    first.rename(renamed)
    assert "renamed or replaced" in " ".join(check_against_manifest(manifest, copy).problems)
    renamed.unlink()
    (copy / "ground_truth.json").unlink()
    problems = " ".join(check_against_manifest(manifest, copy).problems)
    assert f"{FRAMES - 1} queries now, {FRAMES} when converted" in problems
    assert "no ground_truth.json" in problems
    assert not check_against_manifest(manifest, tmp_path / "nowhere").ok


class _MeanColour(torch.nn.Module):
    """A "published model" whose descriptor is the mean colour of its normalised input."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


def test_published_model_adapter_joins_the_table(world, tmp_path: Path, monkeypatch):
    import sys
    import types
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Preprocessing:
        image_size: tuple[int, int] | None
        mean: tuple[float, float, float]
        std: tuple[float, float, float]

    seen = {}

    def load_published(name, weights):
        seen["call"] = (name, str(weights))
        return _MeanColour(), Preprocessing((8, 8), (0.5, 0.0, 0.25), (2.0, 1.0, 0.5))

    fake = types.ModuleType("vpr.models.pretrained.load")
    fake.load_published = load_published
    monkeypatch.setitem(sys.modules, "vpr.models.pretrained.load", fake)
    weights = tmp_path / "mean.pth"
    weights.write_bytes(b"weights")
    out = tmp_path / "t"
    assert main(["benchmark", "--model", "meancolour", "--weights", str(weights),
                 "--data", f"st_lucia={world['st_lucia']}", "--out", str(out),
                 "--no_progress_bar"]) == 0
    assert seen["call"] == ("meancolour", str(weights))
    table = json.loads((out / "table.json").read_text())
    assert table["protocols"]["st_lucia"]["image_size"] == {"meancolour": [8, 8]}

    # By hand: the mean colour at 8 x 8 with the model's own normalisation (not ImageNet's).
    from torchvision.transforms import v2

    resize = v2.Compose([v2.ToImage(), v2.Resize((8, 8), antialias=True),
                         v2.ToDtype(torch.float32, scale=True)])
    mean, std = np.array([0.5, 0.0, 0.25]), np.array([2.0, 1.0, 0.5])

    def describe(path: Path) -> np.ndarray:
        return (resize(open_rgb(path)).mean(dim=(1, 2)).numpy() - mean) / std

    database_paths = list_images(world["st_lucia"] / "database")
    query_paths = list_images(world["st_lucia"] / "queries")
    database = np.stack([describe(p) for p in database_paths])
    queries = np.stack([describe(p) for p in query_paths])
    (cached,) = (out / "descriptors").rglob("st_lucia-*-8x8.npy")
    np.testing.assert_allclose(np.load(cached), np.concatenate([database, queries]), atol=1e-5)
    recalls = {}
    for n in (1, 5, 10):
        hits = 0
        for q, query in enumerate(queries):
            order = np.argsort(((database - query) ** 2).sum(1), kind="stable")[:n]
            hits += any(_within_25_m(query_paths[q], database_paths[d]) for d in order)
        recalls[str(n)] = 100.0 * hits / len(query_paths)
    assert table["recalls"]["meancolour"]["st_lucia"] == pytest.approx(recalls)


def test_download_of_a_benchmark_says_where_to_get_it(capsys):
    assert main(["download", "pitts30k_test"]) == 2
    error = capsys.readouterr().err
    assert "needs a request form" in error and "vpr data convert pitts30k_test" in error
    assert main(["download", "st_lucia"]) == 2  # free, but not automated (mega.nz)
    assert "not fetched automatically" in capsys.readouterr().err


def test_rerank_reorders_the_candidates_before_recall(world, tmp_path: Path, monkeypatch):
    """`--rerank K` sends the top K to `vpr.rerank` and scores the order it gives back."""
    import vpr.rerank
    from vpr.rerank.reranker import Reranked

    seen = {}

    def reverse(query_paths, database_paths, candidates, similarities, settings, model,
                cache_folder):
        seen.update(k=candidates.shape[1], settings=settings, folder=cache_folder)
        # Cosines from squared L2 distances of unit vectors: within [-1, 1], best first.
        assert np.all(np.diff(similarities, axis=1) <= 1e-6)
        assert np.all(np.abs(similarities) <= 1 + 1e-5)
        order = candidates[:, ::-1].copy()
        flipped = np.tile(np.arange(order.shape[1])[::-1], (order.shape[0], 1))
        return Reranked(candidates=order, similarities=similarities[:, ::-1].copy(),
                        inliers=np.zeros(order.shape, dtype=np.int64), order=flipped)

    monkeypatch.setattr(vpr.rerank, "rerank_retrieval", reverse)
    out = tmp_path / "table"
    assert main(["benchmark", "--ckpt_path", str(world["a"]), "--data",
                 f"st_lucia={world['st_lucia']}", "--out", str(out), "--no_progress_bar",
                 "--rerank", "12", "--rerank_method", "sift"]) == 0
    assert seen["k"] == 8  # K = 12 asked for, the database holds 8 images
    assert seen["settings"]["top_k"] == 12 and seen["settings"]["method"] == "sift"
    assert seen["folder"] is not None and seen["folder"].name == "rerank"
    table = json.loads((out / "table.json").read_text())
    assert table["protocols"]["st_lucia"]["rerank"]["method"] == "sift"
    # By hand: the reversed top 8 of the global order, scored at N = 1, 5, 10.
    module = load_module(world["a"]).eval()
    transform = eval_transform((32, 32))
    database_paths = list_images(world["st_lucia"] / "database")
    query_paths = list_images(world["st_lucia"] / "queries")
    with torch.no_grad():
        database = module(torch.stack([transform(open_rgb(p)) for p in database_paths])).numpy()
        queries = module(torch.stack([transform(open_rgb(p)) for p in query_paths])).numpy()
    expected = {}
    for n in (1, 5, 10):
        hits = 0
        for q, query in enumerate(queries):
            order = np.argsort(((database - query) ** 2).sum(1), kind="stable")[::-1][:n]
            hits += any(_within_25_m(query_paths[q], database_paths[d]) for d in order)
        expected[str(n)] = 100.0 * hits / len(queries)
    assert table["recalls"]["a"]["st_lucia"] == pytest.approx(expected)


def test_a_published_model_file_gets_its_row(world, tmp_path: Path):
    """A CosPlace file in the authors' layout, through the real loader, into the table."""
    from helpers.published import geolocalization_net_state

    weights = tmp_path / "cosplace_resnet18_512.pth"
    torch.save(geolocalization_net_state("resnet18", 512), weights)
    out = tmp_path / "t"
    assert main(["benchmark", "--model", "cosplace:resnet18-512", "--weights", str(weights),
                 "--data", f"st_lucia={world['st_lucia']}", "--out", str(out),
                 "--no_progress_bar"]) == 0
    table = json.loads((out / "table.json").read_text())
    (label,) = table["models"]
    recalls = table["recalls"][label]["st_lucia"]
    assert set(recalls) == {"1", "5", "10"}
    assert all(0.0 <= value <= 100.0 for value in recalls.values())
    # 8 database images: every positive is in the top 10, and 4 of the 5 queries have one.
    assert recalls["10"] == 80.0
