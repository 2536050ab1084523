"""The fast export path: ONNX Runtime session options, physical cores, int8 calibration
(method, images spread over the folder) and the nodes int8 keeps in float."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.export_models import MEAN, SIZE, STD, save_tiny_checkpoint
from PIL import Image

from vpr.cli import main as vpr_main
from vpr.export import session
from vpr.export.options import CALIBRATIONS, DEFAULT_CALIBRATION
from vpr.export.parity import normalise
from vpr.export.quantize import (
    ImageCalibrationReader,
    calibration_images,
    quantize_int8,
    spread,
)
from vpr.export.runtime import OnnxExtractor
from vpr.export.sidecar import ExportError


def write_images(folder, count: int, seed: int = 0):
    """``count`` smooth random 64 x 64 PNG images (low-resolution noise, upsampled)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for item in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8))
        small.resize((SIZE, SIZE), Image.BILINEAR).save(folder / f"{item:03d}.png")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny checkpoint's fp32 ONNX file (with sidecar), and 8 calibration images."""
    root = tmp_path_factory.mktemp("export_fast")
    ckpt = save_tiny_checkpoint(root / "model.ckpt", seed=1)
    write_images(root / "calibration", 8, seed=5)
    onnx_path = root / "model.onnx"
    assert vpr_main(["export", "--ckpt_path", str(ckpt), "--out", str(onnx_path)]) == 0
    images = calibration_images(root / "calibration", (SIZE, SIZE), 8)
    return {"root": root, "ckpt": ckpt, "onnx": onnx_path,
            "calibration": normalise(images, MEAN, STD)}


def _graph(path):
    import onnx

    return onnx.load(str(path)).graph


def _int8_weights(graph, node_name: str) -> bool:
    """Whether the node's weights (second input) come out of a DequantizeLinear, i.e. are
    stored in int8; a node kept in float reads a float initializer."""
    producers = {output: node.op_type for node in graph.node for output in node.output}
    (node,) = [node for node in graph.node if node.name == node_name]
    return producers.get(node.input[1]) == "DequantizeLinear"


def _input_scale(graph) -> float:
    """The scale of the QuantizeLinear that quantizes the graph's input."""
    from onnx import numpy_helper

    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    (node,) = [node for node in graph.node
               if node.op_type == "QuantizeLinear" and node.input[0] == graph.input[0].name]
    return float(initializers[node.input[1]])


# ---- sessions


def test_session_options_are_the_fast_ones():
    import onnxruntime

    options = session.session_options(3)
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session.session_options().intra_op_num_threads == session.physical_cores()


def test_extractor_runs_with_those_options(exported):
    import onnxruntime

    extractor = OnnxExtractor(exported["onnx"], threads=2)
    used = extractor.session.get_session_options()
    assert used.intra_op_num_threads == 2 and used.inter_op_num_threads == 1
    assert used.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert used.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert extractor.session.get_providers() == ["CPUExecutionProvider"]


def _topology(root, cores: dict[int, tuple[int, int]]):
    for cpu, (package, core) in cores.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


def test_physical_cores_count_hyperthreads_once(tmp_path, monkeypatch):
    monkeypatch.setattr(session, "_allowed_cpus", lambda: {0, 1, 2, 3})
    # cpu0/cpu2 are one core's two threads, cpu1/cpu3 another's; core 0 of package 1 is a third.
    topology = _topology(tmp_path / "a", {0: (0, 0), 2: (0, 0), 1: (0, 1), 3: (1, 0)})
    assert session.physical_cores(topology) == 3
    # Only the CPUs this process may use count.
    monkeypatch.setattr(session, "_allowed_cpus", lambda: {0, 2})
    assert session.physical_cores(topology) == 1
    # No topology to read: every allowed CPU counts.
    assert session.physical_cores(tmp_path / "missing") == 2


# ---- calibration images


def test_spread_covers_the_whole_list():
    assert spread(3, 10) == [0, 4, 9]  # linspace 0, 4.5, 9; round half to even
    assert spread(4, 7) == [0, 2, 4, 6]
    assert spread(5, 3) == [0, 1, 2]


def test_calibration_images_come_from_every_subfolder(tmp_path):
    # database/ sorts before queries/: the first 4 images would all be black.
    for folder, value in (("database", 0), ("queries", 255)):
        (tmp_path / folder).mkdir()
        for item in range(6):
            Image.new("RGB", (SIZE, SIZE), (value,) * 3).save(tmp_path / folder / f"{item}.png")
    images = calibration_images(tmp_path, (SIZE, SIZE), 4)
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.uint8
    assert sorted(images.flatten(1).float().mean(1).tolist()) == [0, 0, 255, 255]
    with pytest.raises(ExportError, match="not a folder"):
        calibration_images(tmp_path / "database" / "0.png", (SIZE, SIZE), 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no images"):
        calibration_images(tmp_path / "empty", (SIZE, SIZE), 4)


# ---- int8


def test_int8_keeps_the_aggregator_in_float(exported):
    path = quantize_int8(exported["onnx"], exported["root"] / "default.int8.onnx",
                         exported["calibration"])
    graph = _graph(path)
    assert _int8_weights(graph, "/layer1/layer1.0/conv1/Conv")
    assert _int8_weights(graph, "/layer4/layer4.1/conv2/Conv")
    aggregator = [node for node in graph.node if node.name.startswith("/aggregator/")]
    assert {"Conv", "ReduceL2"} <= {node.op_type for node in aggregator}
    assert not any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in aggregator)
    assert not _int8_weights(graph, "/aggregator/channel_pool/Conv")
    initializers = {tensor.name: tensor.data_type for tensor in graph.initializer}
    (conv,) = [node for node in aggregator if node.op_type == "Conv"]
    assert initializers[conv.input[1]] == 1  # onnx.TensorProto.FLOAT

    everything = quantize_int8(exported["onnx"], exported["root"] / "all.int8.onnx",
                               exported["calibration"], quantize_aggregator=True)
    assert _int8_weights(_graph(everything), "/aggregator/channel_pool/Conv")


def test_calibration_method_sets_the_ranges(exported):
    # Inputs within [-1, 1] but for one outlying value out of 393,216 (under 1e-5 of them).
    images = torch.rand(32, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    images[0, 0, 0, 0] = 10.0
    minmax = quantize_int8(exported["onnx"], exported["root"] / "minmax.int8.onnx", images,
                           calibration="minmax")
    # uint8 activations: the range is widened to hold 0, then split into 255 steps.
    low, high = min(float(images.min()), 0.0), max(float(images.max()), 0.0)
    assert _input_scale(_graph(minmax)) == pytest.approx((high - low) / 255, rel=1e-5)
    # Percentile ignores the outliers: a symmetric range about [-1, 1], 255 steps.
    percentile = quantize_int8(exported["onnx"], exported["root"] / "pct.int8.onnx", images,
                               calibration="percentile")
    assert _input_scale(_graph(percentile)) == pytest.approx(2 / 255, rel=0.02)
    with pytest.raises(ExportError, match="--int8_calibration"):
        quantize_int8(exported["onnx"], exported["root"] / "x.int8.onnx", images,
                      calibration="entropy")


def test_calibration_batches_are_equal(exported):
    # 9 images: batches of 8 + 1 made ONNX Runtime's percentile calibrator fail.
    assert [len(batch["images"]) for batch in iter(ImageCalibrationReader(
        torch.zeros(9, 3, 4, 4)).get_next, None)] == [3, 3, 3]
    assert [len(batch["images"]) for batch in iter(ImageCalibrationReader(
        torch.zeros(7, 3, 4, 4)).get_next, None)] == [7]
    assert [len(batch["images"]) for batch in iter(ImageCalibrationReader(
        torch.zeros(16, 3, 4, 4)).get_next, None)] == [8, 8]
    images = exported["calibration"][torch.arange(9) % 8]
    path = quantize_int8(exported["onnx"], exported["root"] / "nine.int8.onnx", images,
                         calibration="percentile")
    assert path.is_file()


def test_cli_records_the_calibration(exported, capsys):
    assert DEFAULT_CALIBRATION in CALIBRATIONS
    out = exported["root"] / "cli.onnx"
    assert vpr_main(["export", "--ckpt_path", str(exported["ckpt"]), "--out", str(out),
                     "--int8", "--calibration_images", str(exported["root"] / "calibration"),
                     "--calibration_count", "6", "--int8_calibration", "percentile"]) == 0
    printed = capsys.readouterr().out
    assert "calibrated (percentile) on 6 images" in printed
    assert "histogram" not in printed  # ONNX Runtime's calibrator progress is not shown
    sidecar = json.loads((exported["root"] / "cli.int8.onnx.json").read_text())
    assert sidecar["quantization"]["calibration"] == "percentile"
    assert sidecar["quantization"]["calibration_images"] == 6
    with pytest.raises(SystemExit) as error:
        vpr_main(["export", "--ckpt_path", str(exported["ckpt"]), "--out", str(out), "--int8",
                  "--calibration_images", str(exported["root"]), "--int8_calibration", "kl"])
    assert error.value.code == 2
    assert np.isfinite(OnnxExtractor(exported["root"] / "cli.int8.onnx")(
        exported["calibration"][:2]).numpy()).all()
