"""One extraction path, one precision vocabulary.

Validation/test inside Lightning's Trainer and `extract_descriptors` (index, locate, serve,
benchmark) must give the same descriptors for the same model and images, and every command's
``--precision`` must take the same names.
"""

from __future__ import annotations

import argparse
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import vpr.training.module as module_file
from vpr.cli import build_parser
from vpr.config.fields import DeprecatedSpelling
from vpr.data.datasets import RetrievalSet
from vpr.eval.extract import DescriptorSink, describe_batch, extract_descriptors
from vpr.inputs.batch_augment import InputTransform
from vpr.inputs.decode import UInt8Reader
from vpr.inputs.device_decode import collate_indexed
from vpr.training.module import VPRModule

SIZE = (32, 32)


def _module() -> VPRModule:
    torch.manual_seed(0)
    module = VPRModule(backbone="resnet18", agg_arch="GeM", descriptors_dim=16,
                       image_size=SIZE, pretrained="none", recall_values=(1, 5))
    # Mean/std other than ImageNet's: a path that skipped the module's own input transform
    # would give other descriptors.
    module.input_transform = InputTransform(mean=(0.3, 0.4, 0.5), std=(0.2, 0.25, 0.3))
    return module


def _trainer_descriptors(module: VPRModule, dataset: RetrievalSet, stage: str,
                         precision: str, monkeypatch) -> np.ndarray:
    """The array validation/test hands to `evaluate_set`."""
    seen = []
    real = module_file.evaluate_set

    def recording(dataset, descriptors, *args, **kwargs):
        seen.append(np.array(descriptors))
        return real(dataset, descriptors, *args, **kwargs)

    monkeypatch.setattr(module_file, "evaluate_set", recording)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    loader = DataLoader(dataset, batch_size=4, shuffle=False, collate_fn=collate_indexed)
    run = trainer.validate if stage == "val" else trainer.test
    run(module, dataloaders=loader, verbose=False)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("stage", "precision"),
                         [("val", "32-true"), ("test", "32-true"), ("test", "bf16-mixed")])
def test_trainer_and_extract_descriptors_give_identical_descriptors(
        tiny_retrieval, monkeypatch, stage, precision):
    # uint8 images (the fast pipeline's reader): both paths must prepare them the same way.
    dataset = RetrievalSet(tiny_retrieval, None)
    dataset.reader = UInt8Reader(SIZE)
    assert dataset[0][0].dtype == torch.uint8
    module = _module()
    in_trainer = _trainer_descriptors(module, dataset, stage, precision, monkeypatch)
    extracted = extract_descriptors(module, dataset, batch_size=4, device="cpu",
                                    precision=precision, progress=False)
    assert in_trainer.shape == (len(dataset), module.model.descriptors_dim)
    assert in_trainer.dtype == extracted.dtype == np.float32
    np.testing.assert_array_equal(in_trainer, extracted)
    # And both are the model on normalised images, computed here by hand (fp32 case).
    if precision == "32-true":
        images = torch.stack([dataset[item][0] for item in range(len(dataset))]).float() / 255
        mean = torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1)
        std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
        with torch.inference_mode():
            by_hand = module.model.eval()((images - mean) / std).numpy()
        np.testing.assert_allclose(extracted, by_hand, rtol=1e-5, atol=1e-6)


class Doubling(torch.nn.Module):
    """(B,3,H,W) -> (B,2): the batch's first pixel, channels 0 and 1, doubled."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 2 * images[:, :2, 0, 0]


def test_describe_batch_prepares_uint8_and_casts_to_float32():
    images = torch.tensor([[[[51]], [[102]], [[0]]]], dtype=torch.uint8)  # 0.2, 0.4, 0
    prepare = InputTransform(mean=(0.0, 0.0, 0.0), std=(0.5, 0.5, 0.5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rows = describe_batch(Doubling(), images, prepare, "cpu")
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.8, 1.6]], rtol=1e-6)
    # A float batch (the seed pipeline) is used as given.
    floats = torch.tensor([[[[1.5]], [[-1.0]], [[0.0]]]])
    np.testing.assert_allclose(describe_batch(Doubling(), floats, prepare, "cpu"), [[3.0, -2.0]])


def test_sink_places_rows_by_index_and_renames_when_complete(tmp_path):
    out = tmp_path / "sub" / "descriptors.npy"
    sink = DescriptorSink(4, out_path=out)
    sink.add(torch.tensor([3, 1]), np.array([[3.0, 30.0], [1.0, 10.0]], np.float32))
    sink.add([0], np.array([[0.5, 5.0]], np.float32))
    assert not out.exists()  # only a temporary file until finished
    assert len(list(out.parent.iterdir())) == 1
    rows = sink.finish()
    np.testing.assert_array_equal(rows, [[0.5, 5.0], [1, 10], [0, 0], [3, 30]])
    assert [path.name for path in out.parent.iterdir()] == ["descriptors.npy"]
    np.testing.assert_array_equal(np.load(out), rows)


def test_sink_discard_leaves_nothing_and_into_writes_in_place(tmp_path):
    out = tmp_path / "descriptors.npy"
    sink = DescriptorSink(2, out_path=out)
    sink.add([0], np.ones((1, 3), np.float32))
    sink.discard()
    assert list(tmp_path.iterdir()) == []
    shared = np.zeros((5, 2), np.float32)
    sink = DescriptorSink(2, into=shared[3:5])
    sink.add([1, 0], np.array([[7, 8], [5, 6]], np.float32))
    assert sink.finish() is not None
    np.testing.assert_array_equal(shared, [[0, 0], [0, 0], [0, 0], [5, 6], [7, 8]])
    with pytest.raises(ValueError, match="rows"):
        DescriptorSink(3, into=shared)


def test_empty_set_gives_an_empty_file_of_the_dimension(tmp_path):
    rows = DescriptorSink(0, out_path=tmp_path / "empty.npy").finish(dim=8)
    assert rows.shape == (0, 8)
    assert np.load(tmp_path / "empty.npy").shape == (0, 8)


# ---- one precision vocabulary

# Every command that computes descriptors, and what it uses without --precision.
PRECISION_COMMANDS = {
    ("train",): "auto", ("test",): "auto", ("index", "build"): "auto",
    ("index", "add"): "auto", ("locate",): "auto", ("serve",): "auto",
    ("benchmark",): "32-true",
}
# Lightning's names, written out by hand.
LIGHTNING_NAMES = ("auto", "32-true", "16-mixed", "bf16-mixed", "64-true", "16-true",
                   "bf16-true")
OLD_SPELLINGS = {"32": "32-true", "fp32": "32-true", "16": "16-mixed", "fp16": "16-mixed",
                 "bf16": "bf16-mixed", "64": "64-true"}


def _subparser(parser: argparse.ArgumentParser, words: tuple[str, ...]):
    for word in words:
        sub = next(action for action in parser._actions
                   if isinstance(action, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _precision_action(parser: argparse.ArgumentParser) -> argparse.Action:
    return next(action for action in parser._actions if "--precision" in action.option_strings)


@pytest.mark.parametrize("words", list(PRECISION_COMMANDS), ids=" ".join)
def test_every_command_takes_lightnings_precision_names(words):
    parser = _subparser(build_parser(), words)
    action = _precision_action(parser)
    assert tuple(action.choices) == LIGHTNING_NAMES
    for name in LIGHTNING_NAMES:
        assert action.type(name) == name
    for old, new in OLD_SPELLINGS.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert action.type(old) == new
        assert [warning.category for warning in caught] == [DeprecatedSpelling]
    assert f"(default: {PRECISION_COMMANDS[words]})" in action.help
    with pytest.raises(SystemExit):  # not a name: the usage error, exit 2
        parser.parse_args(["--precision", "8"])


def test_precision_default_and_typed_value_reach_the_command(tmp_path):
    from vpr.cli.flags import precision_of

    parser = build_parser()
    base = ["locate", "--index", str(tmp_path), str(tmp_path / "photo.jpg")]
    assert precision_of(parser.parse_args(base)) == "auto"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        args = parser.parse_args([*base, "--precision", "bf16"])
    assert precision_of(args) == "bf16-mixed"


def test_export_has_no_precision_flag():
    # An exported graph is float32 (int8 has its own flag): no second meaning of precision.
    parser = _subparser(build_parser(), ("export",))
    assert not any("--precision" in action.option_strings for action in parser._actions)


def test_export_recall_uses_the_one_extraction_and_evaluation(tiny_retrieval):
    from vpr.eval.metrics import recall_at_n
    from vpr.eval.search import search
    from vpr.export.parity import normalise
    from vpr.export.recall import recall_of

    model = _module().model.eval()
    mean, std = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)

    def run(images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return model(images).numpy()

    recalls = recall_of(run, tiny_retrieval, SIZE, mean, std, n_values=(1, 5), batch_size=4)
    # By hand: every image read, normalised and described at once, searched exactly.
    dataset = RetrievalSet(tiny_retrieval, None)
    dataset.reader = UInt8Reader(SIZE)
    images = torch.stack([dataset[item][0] for item in range(len(dataset))])
    descriptors = run(normalise(images, mean, std))
    _, predictions = search(descriptors[:dataset.database_num],
                            descriptors[dataset.database_num:], 5)
    assert recalls == pytest.approx(recall_at_n(predictions, dataset.positives_per_query,
                                                (1, 5)))
    # q2 has no positive: at most 2 of 3 queries are right.
    assert recalls[5] <= 200 / 3 + 1e-9


@pytest.mark.parametrize("name", ["16-true", "bf16-true", "64-true", "64"])
def test_extraction_refuses_precisions_that_convert_the_weights(name):
    # `vpr test --precision 16-true` runs a half model; extraction must not run fp32 instead.
    from vpr.hardware import autocast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecatedSpelling)
        with pytest.raises(ValueError, match="vpr train and vpr test"):
            autocast("cpu", name)
    for name_ok in ("32-true", None, "auto"):
        with autocast("cpu", name_ok):
            pass
