"""vpr export: ONNX/TorchScript parity, the sidecar, int8, --runtime onnx indexes, errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from helpers.export_models import MEAN, SIZE, STD, save_tiny_checkpoint
from helpers.paths import SRC
from PIL import Image

from vpr.cli import main as vpr_main
from vpr.data.geotag import GeoTag, format_filename
from vpr.export.options import RuntimeChoice, add_runtime_options, runtime_from_args
from vpr.export.parity import compare, normalise
from vpr.export.runtime import OnnxExtractor
from vpr.export.sidecar import ExportError, file_sha256, read_sidecar, sidecar_path
from vpr.locate import LocationIndex


def write_images(folder, count: int, seed: int = 0):
    """@-named 64 x 64 images: 2 shots (faint noise apart) of each of count // 2 places."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in range(count):
        place, shot = divmod(item, 2)
        base = np.random.default_rng(seed * 100 + place).integers(0, 256, (8, 8, 3))
        image = Image.fromarray(base.astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
        pixels = np.asarray(image).astype(int)
        pixels += np.random.default_rng(1000 * seed + item).integers(-5, 6, pixels.shape)
        tag = GeoTag(utm_east=395000.0 + 1000 * place + 3 * shot, utm_north=4990000.0,
                     utm_zone_number=32, utm_zone_letter="T", note=f"p{place}_{shot}")
        path = folder / format_filename(tag, ".png")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    onnx_path = root / "model.onnx"
    write_images(root / "calibration", 8, seed=7)
    assert vpr_main(["export", "--ckpt_path", str(ckpt), "--out", str(onnx_path), "--int8",
                     "--calibration_images", str(root / "calibration")]) == 0
    from vpr.training.checkpoints import load_module

    model = load_module(ckpt).model.eval()
    return {"root": root, "ckpt": ckpt, "onnx": onnx_path,
            "int8": root / "model.int8.onnx", "model": model}


def _inputs(batch: int, seed: int = 0) -> torch.Tensor:
    images = torch.randint(0, 256, (batch, 3, SIZE, SIZE), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(seed))
    return normalise(images, MEAN, STD)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_eager_at_any_batch_size(world, batch):
    extractor = OnnxExtractor(world["onnx"], threads=1)
    images = _inputs(batch, seed=batch)
    with torch.no_grad():
        expected = world["model"](images).numpy()
    got = extractor(images).numpy()
    assert got.shape == (batch, 32)
    assert np.abs(got - expected).max() < 1e-4


def test_torchscript_matches_eager_at_any_batch_size(world, capsys):
    path = world["root"] / "model.pt"
    assert vpr_main(["export", "--ckpt_path", str(world["ckpt"]), "--out", str(path)]) == 0
    assert "TorchScript" in capsys.readouterr().out
    assert read_sidecar(path)["runtime"] == "torchscript"
    module = torch.jit.load(str(path))
    for batch in (1, 3):
        images = _inputs(batch, seed=10 + batch)
        with torch.no_grad():
            difference = (module(images) - world["model"](images)).abs().max().item()
        assert difference < 1e-4


def test_sidecar_describes_the_model(world):
    sidecar = json.loads(sidecar_path(world["onnx"]).read_text())
    assert sidecar_path(world["onnx"]).name == "model.onnx.json"
    assert sidecar["runtime"] == "onnx" and sidecar["batch"] == "dynamic"
    assert sidecar["sha256"] == file_sha256(world["onnx"])
    assert sidecar["source"]["sha256"] == file_sha256(world["ckpt"])
    assert sidecar["source"]["backbone"] == "resnet18"
    assert sidecar["source"]["agg_arch"] == "ConvAP"
    assert (sidecar["input"]["height"], sidecar["input"]["width"]) == (SIZE, SIZE)
    assert sidecar["input"]["mean"] == pytest.approx(MEAN)
    assert sidecar["input"]["std"] == pytest.approx(STD)
    assert sidecar["output"]["dim"] == 32
    assert sidecar["quantization"] is None
    # A file changed after export no longer matches its sidecar.
    copy = world["root"] / "changed.onnx"
    copy.write_bytes(world["onnx"].read_bytes() + b"\0")
    sidecar_path(copy).write_text(sidecar_path(world["onnx"]).read_text())
    with pytest.raises(ExportError, match="sha256"):
        read_sidecar(copy)


def test_int8_model_is_quantized_and_ranks_alike(world):
    import onnx

    ops = {node.op_type for node in onnx.load(str(world["int8"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert world["int8"].stat().st_size < world["onnx"].stat().st_size / 2
    sidecar = read_sidecar(world["int8"])
    assert sidecar["quantization"]["type"] == "int8-static"
    assert sidecar["quantization"]["calibration_images"] == 8
    # Smooth random images (as the calibration ones) ranked by fp32 and by int8.
    small = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    images = torch.nn.functional.interpolate(small, size=(SIZE, SIZE), mode="bilinear")
    images = normalise((images * 255).round().to(torch.uint8), MEAN, STD)
    fp32 = OnnxExtractor(world["onnx"])(images).numpy()
    int8 = OnnxExtractor(world["int8"])(images).numpy()
    parity = compare(fp32, int8, k=3)
    assert parity.max_abs_diff > 0  # really another model
    assert parity.top1_agreement >= 75 and parity.topk_agreement >= 75


def _runtime(argv):
    parser = argparse.ArgumentParser()
    add_runtime_options(parser)
    return runtime_from_args(parser.parse_args(argv))


def test_runtime_onnx_index_finds_the_same_neighbours(world, tmp_path):
    database = write_images(tmp_path / "database", 8)
    queries = write_images(tmp_path / "queries", 4, seed=0)  # re-shot places of the database
    by_torch = LocationIndex.build(tmp_path / "torch", world["ckpt"], tmp_path / "database",
                                   device="cpu", precision=None)
    by_onnx = LocationIndex.build(tmp_path / "onnx", world["ckpt"], tmp_path / "database",
                                  device="cpu", runtime=_runtime(["--runtime", "onnx",
                                                                  "--onnx_model",
                                                                  str(world["onnx"])]))
    assert by_torch.meta["model"]["runtime"] == {"name": "torch"}
    recorded = by_onnx.meta["model"]["runtime"]
    assert recorded["name"] == "onnx" and recorded["sha256"] == file_sha256(world["onnx"])
    assert np.abs(np.asarray(by_onnx.descriptors) - np.asarray(by_torch.descriptors)).max() \
        < 1e-4
    from vpr.eval.extract import ImageFolderDataset, extract_descriptors

    extractor = by_onnx.load_model()  # auto: the index's own ONNX model
    assert isinstance(extractor, OnnxExtractor)
    described = extract_descriptors(extractor, ImageFolderDataset(queries, reader=by_onnx
                                                                  .reader()), progress=False)
    _, torch_neighbours = by_torch.search(described, 3)
    _, onnx_neighbours = by_onnx.search(described, 3)
    np.testing.assert_array_equal(onnx_neighbours, torch_neighbours)
    assert len(database) == len(by_onnx)


def test_runtimes_are_not_mixed(world, tmp_path):
    write_images(tmp_path / "database", 4)
    onnx_choice = RuntimeChoice(name="onnx", onnx_model=world["onnx"])
    index = LocationIndex.build(tmp_path / "onnx", world["ckpt"], tmp_path / "database",
                                device="cpu", runtime=onnx_choice)
    with pytest.raises(ExportError, match="runtime 'onnx'.*runtime 'torch'"):
        index.load_model(runtime=RuntimeChoice(name="torch"))
    with pytest.raises(ExportError, match="not the exported model"):
        index.load_model(runtime=RuntimeChoice(onnx_model=world["int8"]))
    # An exported model of another checkpoint cannot build an index of this one.
    other = save_tiny_checkpoint(tmp_path / "other.ckpt", seed=1)
    with pytest.raises(ExportError, match="exported from"):
        LocationIndex.build(tmp_path / "mixed", other, tmp_path / "database", device="cpu",
                            runtime=onnx_choice)
    # auto picks the exported model when one is given, on the CPU.
    auto = LocationIndex.build(tmp_path / "auto", world["ckpt"], tmp_path / "database",
                               device="cpu", runtime=RuntimeChoice(onnx_model=world["onnx"]))
    assert auto.meta["model"]["runtime"]["name"] == "onnx"


def _one_line_error(argv, capsys) -> str:
    assert vpr_main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpr: error: "), captured.err
    return lines[0]


def test_errors_are_one_line(world, tmp_path, capsys):
    not_a_checkpoint = tmp_path / "weights.ckpt"
    torch.save({"conv.weight": torch.zeros(1)}, not_a_checkpoint)
    out = str(tmp_path / "m.onnx")
    assert "weights.ckpt" in _one_line_error(
        ["export", "--ckpt_path", str(not_a_checkpoint), "--out", out], capsys)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in _one_line_error(
        ["export", "--ckpt_path", str(world["ckpt"]), "--out", str(blocker / "m.onnx")], capsys)
    assert "is a folder" in _one_line_error(
        ["export", "--ckpt_path", str(world["ckpt"]), "--out", str(tmp_path)], capsys)
    (tmp_path / "empty").mkdir()
    assert "no images" in _one_line_error(
        ["export", "--ckpt_path", str(world["ckpt"]), "--out", out, "--int8",
         "--calibration_images", str(tmp_path / "empty")], capsys)
    assert "missing.pth" in _one_line_error(
        ["export", "--model", "cosplace:resnet18-512", "--weights",
         str(tmp_path / "missing.pth"), "--out", out], capsys)


def test_published_model_exports_with_parity(tmp_path, capsys):
    """`vpr export --model` of a CosPlace file in the authors' key layout (random values)."""
    from helpers.published import geolocalization_net_state

    from vpr.models.pretrained.load import load_published

    weights = tmp_path / "ResNet18_512_cosplace.pth"
    torch.save(geolocalization_net_state("resnet18", 512, seed=3), weights)
    out = tmp_path / "cosplace.onnx"
    argv = ["export", "--model", "cosplace:resnet18-512", "--weights", str(weights),
            "--out", str(out)]
    # CosPlace reads images at their own size; a graph needs one.
    assert "image_size (H, W)" in _one_line_error(argv, capsys)
    assert vpr_main([*argv, "--image_size", "48", "64"]) == 0
    assert "Parity with PyTorch eager" in capsys.readouterr().out

    sidecar = read_sidecar(out)
    assert sidecar["source"]["published_model"] == "cosplace:resnet18-512"
    assert sidecar["source"]["sha256"] == file_sha256(weights)
    assert (sidecar["input"]["height"], sidecar["input"]["width"]) == (48, 64)
    assert sidecar["input"]["mean"] == pytest.approx(MEAN)  # CosPlace's: ImageNet's
    assert sidecar["output"]["dim"] == 512

    network, _ = load_published("cosplace:resnet18-512", weights, (48, 64))
    images = normalise(torch.randint(0, 256, (3, 3, 48, 64), dtype=torch.uint8,
                                     generator=torch.Generator().manual_seed(1)), MEAN, STD)
    with torch.no_grad():
        eager = network.eval()(images).numpy()
    exported = OnnxExtractor(out, threads=1)(images).numpy()
    assert exported.shape == (3, 512)
    assert np.abs(exported - eager).max() < 1e-4

    # The exported file describes an index of the published model (same weights sha256).
    write_images(tmp_path / "database", 2)
    index = LocationIndex.build(tmp_path / "index", None, tmp_path / "database", device="cpu",
                                model="cosplace:resnet18-512", weights=weights,
                                image_size=(48, 64),
                                runtime=RuntimeChoice(name="onnx", onnx_model=out))
    assert index.meta["model"]["runtime"]["sha256"] == file_sha256(out)
    assert isinstance(index.load_model(), OnnxExtractor)


def test_hnsw_coarse_quantizer_and_mapped_index(tmp_path):
    from vpr.eval.search import build_index, load_index, save_index, search, search_index

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, 32)).astype(np.float32)
    data = (centres[rng.integers(0, 16, 2000)] + 0.1 * rng.normal(size=(2000, 32))).astype(
        np.float32)
    queries = data[:50] + 0.01 * rng.normal(size=(50, 32)).astype(np.float32)
    _, exact = search(data, queries, 1)
    index = build_index(data, kind="ivf", nlist=16, nprobe=4, coarse="hnsw")
    _, found = search_index(index, queries, 1)
    assert (found[:, 0] == exact[:, 0]).mean() >= 0.9
    save_index(index, tmp_path / "index.faiss")
    mapped = load_index(tmp_path / "index.faiss", nprobe=4, mmap=True)
    np.testing.assert_array_equal(search_index(mapped, queries, 1)[1], found)
    with pytest.raises(ValueError, match="coarse"):
        build_index(data, kind="ivf", nlist=16, coarse="graph")


def test_serve_batches_with_the_onnx_runtime(world, tmp_path):
    """Serve: request batching and --runtime together; backbone re-ranking needs torch."""
    from vpr.serve import create_app
    from vpr.serve.locator import Locator

    database = write_images(tmp_path / "database", 4)
    onnx_choice = RuntimeChoice(name="onnx", onnx_model=world["onnx"])
    LocationIndex.build(tmp_path / "index", world["ckpt"], tmp_path / "database", device="cpu",
                        runtime=onnx_choice)
    app = create_app(tmp_path / "index", top_k=2, device="cpu", max_batch=4,
                     batch_window_ms=20, runtime=RuntimeChoice())
    locator = app.state.locator
    try:
        assert isinstance(locator.model, OnnxExtractor)
        result = locator.locate(database[2].read_bytes(), "shot.png", 2)
        # Its own place (images 2 and 3) comes first, the image itself at the top.
        assert result[0]["matches"][0]["path"] == str(database[2].resolve())
        assert locator.batcher.batch_sizes == [1]
    finally:
        locator.close()
    with pytest.raises(ExportError, match="runtime 'onnx'"):
        Locator(tmp_path / "index", device="cpu", runtime=RuntimeChoice(name="torch"))
    with pytest.raises(ValueError, match="'sift' or 'orb' method"):
        Locator(tmp_path / "index", device="cpu", runtime=onnx_choice,
                rerank={"top_k": 2, "method": "backbone"})


@pytest.mark.slow  # two processes that import torch and Lightning: ~30 s on 2 cores
def test_two_process_build_with_the_onnx_runtime(world, tmp_path):
    """`--devices 2 --runtime onnx`: both ranks describe with the exported model."""
    import os
    import subprocess
    import sys

    write_images(tmp_path / "database", 5)
    source = str(SRC)
    environment = {**os.environ, "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": source + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "vpr", "index", "build", "--ckpt_path", str(world["ckpt"]),
         "--database", str(tmp_path / "database"), "--out", str(tmp_path / "two"),
         "--device", "cpu", "--precision", "32", "--batch_size", "2", "--no_progress_bar",
         "--devices", "2", "--runtime", "onnx", "--onnx_model", str(world["onnx"])],
        env=environment, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    two = LocationIndex.load(tmp_path / "two")
    assert two.meta["model"]["runtime"]["sha256"] == file_sha256(world["onnx"])
    one = LocationIndex.build(tmp_path / "one", world["ckpt"], tmp_path / "database",
                              device="cpu", runtime=RuntimeChoice(name="onnx",
                                                                  onnx_model=world["onnx"]))
    assert list(one.paths) == list(two.paths)
    np.testing.assert_allclose(np.asarray(two.descriptors), np.asarray(one.descriptors),
                               atol=1e-5)
