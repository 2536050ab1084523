"""Every setting of a run, declared once: name, default, help, checks.

The sections below are the only place a setting is declared. The command line
(`vpr.cli.flags`), YAML files (``vpr train --config``), sweep grids, the demo, resumed runs and
checkpoints all read these declarations; `VPRModule` receives a `ModuleConfig`.

To add an option: add one `option(...)` field to the section it belongs to, and use it where
it acts (for a model option: `VPRModule` reads ``config.model.<name>``). Flags, help, YAML
keys, checkpoint storage and the sweep's key checks follow.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from vpr.config.fields import DeprecatedSpelling, coerce, default_of, option, option_of

# Lightning's precision names; older spellings are read with a deprecation warning.
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "64-true", "16-true", "bf16-true")
OLD_PRECISIONS = {"32": "32-true", "fp32": "32-true", "16": "16-mixed", "fp16": "16-mixed",
                  "bf16": "bf16-mixed", "64": "64-true"}
PIPELINES = ("auto", "fast", "seed")
DECODERS = ("auto", "worker", "device")


def positive_int(value: Any) -> int:
    """A positive integer (image sides, counts)."""
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be positive, got {number}")
    return number


def non_negative_int(value: Any) -> int:
    """A whole number >= 0."""
    number = int(value)
    if number < 0:
        raise ValueError(f"must be >= 0, got {number}")
    return number


def precision_name(value: Any) -> str:
    """Lightning's name of a precision; old spellings (``32``, ``bf16``...) are translated."""
    text = str(value)
    if text in OLD_PRECISIONS:
        warnings.warn(f"precision {text!r} is deprecated; use {OLD_PRECISIONS[text]!r}",
                      DeprecatedSpelling, stacklevel=3)
        return OLD_PRECISIONS[text]
    return text


def _image_size(value: tuple[int, ...]) -> tuple[int, int]:
    if len(value) > 2:
        raise ValueError(f"image_size takes H [W], got {len(value)} numbers")
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _sorted_unique(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(sorted(set(value)))


@dataclasses.dataclass
class TrainDataConfig:
    """The training set and how its batches are drawn."""

    train_path: str | None = option(
        None, "training set: folder tree of @-named images, one place id per note field "
              "(GSV-XS layout), or a GSV-Cities folder")
    train_format: str = option(
        "auto", "training set layout: gsv_xs (@-named images, place id in the note) or "
                "gsv_cities (Dataframes/<City>.csv + Images/<City>/); auto detects GSV-Cities "
                "by its Dataframes/ folder", choices=("auto", "gsv_xs", "gsv_cities"))
    val_path: str | None = option(None, "validation set folder with database/ and queries/")
    batch_size: int = option(
        64, "places per training batch (P); one batch is P x img_per_place images",
        type=positive_int)
    img_per_place: int = option(4, "images sampled per place (K)", type=positive_int)
    min_img_per_place: int = option(4, "places with fewer images are dropped",
                                    type=positive_int)
    randaugment_ops: int = option(3, "RandAugment operations per training image; 0 disables",
                                  type=int)


@dataclasses.dataclass
class TestDataConfig:
    """Evaluation sets and their loading."""

    test_path: tuple[str, ...] | None = option(
        None, "one or more test set folders, each with database/ and queries/", kind="list")
    eval_batch_size: int | None = option(
        None, "images per evaluation batch (default: batch_size x img_per_place)",
        type=positive_int)
    positive_dist_threshold: float = option(
        25.0, "a database image within this many metres of a query is a correct match",
        type=float)
    skip_bad_images: bool = option(
        False, "leave unreadable test/val images out (and report them) instead of stopping "
               "before any work", kind="switch", type=bool)
    num_workers: int = option(8, "DataLoader worker processes", type=int, carried=False)


@dataclasses.dataclass
class InputConfig:
    """How images are read and prepared."""

    pipeline: str = option(
        "auto", "input pipeline: fast (uint8 decode in workers, batched RandAugment and "
                "normalisation on the device) or seed (the seed's Pillow + RandAugment per "
                "image in workers, float batches); auto = fast", choices=PIPELINES)
    decode: str = option(
        "auto", "where JPEGs are decoded (fast pipeline): worker (DataLoader workers, on the "
                "CPU) or device (whole batches on the GPU with nvjpeg; workers only read the "
                "files); auto = device on a CUDA GPU, else worker", choices=DECODERS)
    cache_images: bool = option(
        False, "keep decoded, resized images in a shared in-RAM cache after their first read "
               "(fast pipeline; needs image_size; for datasets that fit)",
        kind="switch", type=bool)


@dataclasses.dataclass
class ModelConfig:
    """The network: stored in checkpoints; these define its shape."""

    backbone: str = option("resnet18", "backbone: a torchvision ResNet or a DINOv2 ViT (+_reg "
                           "for registers), one of %(registry)s",
                           registry="backbones", architecture=True)
    pretrained: str = option("imagenet",
                             "backbone weights: imagenet (ResNets), none, or a path to a weights "
                             "file (.pth state dict; a DINOv2 *_pretrain.pth for a ViT)")
    train_blocks: int | None = option(
        None, "train only the last N blocks of a ViT (+ its final norm) or the last N residual "
              "stages of a ResNet; the rest is frozen and stays in eval mode (default: train "
              "everything)", type=non_negative_int, metavar="N")
    grad_checkpointing: bool = option(
        False, "ViT: recompute each trained block's activations in the backward pass, "
               "trading compute for memory", kind="switch", type=bool)
    vit_depth: int | None = option(
        None, "ViT: keep only the first N blocks (small experiments; changes the "
              "architecture) (default: all)", type=non_negative_int, metavar="N",
        architecture=True)
    published_model: str = option(
        "", "a published model, NAME or NAME:VARIANT (%(registry)s; see docs/MODELS.md), "
            "instead of a backbone + aggregator of ours", flag="model", metavar="NAME[:VARIANT]",
        registry="published",
        architecture=True)
    agg_arch: str = option("ConvAP", "aggregator, one of %(registry)s", registry="aggregators",
                           architecture=True)
    agg_options: dict[str, Any] = option(
        {}, "aggregator option, e.g. out_channels=256 (repeatable)", kind="pairs",
        flag="agg_option", metavar="KEY=VALUE", architecture=True)
    descriptors_dim: int = option(512, "descriptor size of aggregators with a projection",
                                  type=positive_int, architecture=True)
    image_size: tuple[int, int] | None = option(
        None, "resize images to H [W] pixels (default: native size; MixVPR then assumes "
              "224x224 for its feature size)", kind="list", type=positive_int,
        metavar="PX", normalize=_image_size, architecture=True)


@dataclasses.dataclass
class LossConfig:
    """The metric-learning loss and miner (pytorch-metric-learning)."""

    loss_name: str = option("MultiSimilarityLoss", "loss, one of %(registry)s",
                            registry="losses")
    loss_options: dict[str, Any] = option(
        {}, "override a loss hyper-parameter, e.g. beta=40 (repeatable)", kind="pairs",
        flag="loss_option", metavar="KEY=VALUE")
    miner_name: str = option("MultiSimilarityMiner", "miner, one of %(registry)s",
                             registry="miners")
    miner_margin: float = option(0.1, "margin/epsilon of the miner", type=float)
    miner_options: dict[str, Any] = option(
        {}, "override a miner hyper-parameter (repeatable)", kind="pairs",
        flag="miner_option", metavar="KEY=VALUE")


@dataclasses.dataclass
class OptimConfig:
    """The optimiser and its schedule."""

    optimizer: str = option("sgd", "optimiser", choices=("sgd", "adam", "adamw"))
    lr: float = option(1e-3, "learning rate", type=float)
    momentum: float = option(0.9, "SGD momentum", type=float)
    weight_decay: float = option(1e-3, "weight decay", type=float)
    scheduler: str = option("none", "learning-rate schedule", choices=("none", "cosine", "step"))
    max_epochs: int = option(20, "stop after this many epochs", type=positive_int)


@dataclasses.dataclass
class EvalConfig:
    """What an evaluation reports."""

    recall_values: tuple[int, ...] = option(
        (1, 5, 10, 20), "N of the Recall@N to report", kind="list", type=positive_int,
        normalize=_sorted_unique)
    num_preds_to_save: int = option(
        0, "at test time, save an image row of the top N predictions per query (0: off)",
        type=int)
    save_only_wrong_preds: bool = option(
        False, "with num_preds_to_save, only save queries whose top-1 is wrong",
        kind="switch", type=bool)
    group_rule: str = option(
        "auto", "report recalls per query group: auto (day/sunset/night in file names), none, "
                "folder, field:NAME (an @-field, e.g. field:note), or regex:PATTERN (first "
                "capture group)")
    dist_thresholds: tuple[float, ...] = option(
        (10.0, 25.0, 50.0, 100.0), "also report recalls at these distance thresholds in metres",
        kind="list", type=float, metavar="M", normalize=_sorted_unique)


@dataclasses.dataclass
class HardwareConfig:
    """Where and how fast the model runs (decided in `vpr.hardware`)."""

    accelerator: str = option("auto", "cpu, gpu, mps or auto", carried=False)
    devices: str = option("auto", "number of devices, a list like 0,1, or auto",
                          carried=False)
    num_nodes: int = option(1, "machines", type=positive_int, carried=False)
    strategy: str = option("auto", "Lightning strategy, e.g. ddp", carried=False)
    precision: str = option(
        "auto", "Lightning precision: 32-true, 16-mixed, bf16-mixed or auto (= bf16-mixed where "
                "the GPU or CPU computes bf16 natively, 16-mixed on other GPUs, else 32-true; "
                "pipeline seed: 16-mixed on GPU, 32-true on CPU, as the seed)",
        type=precision_name, choices=PRECISIONS)
    channels_last: bool | None = option(
        None, "run the model in channels-last memory format (default: on with the fast "
              "pipeline, off with pipeline seed)", kind="switch", type=bool)
    compile: bool = option(
        False, "run the model through torch.compile (falls back to eager with a warning if "
               "compiling fails)", kind="switch", type=bool)


@dataclasses.dataclass
class RunConfig:
    """The run folder, reproducibility and the trainer's limits."""

    exp_name: str | None = option(
        None, "run folder name under <log_dir>/lightning_logs/ (default: a timestamp); an "
              "existing one is never overwritten", carried=False)
    log_dir: str = option("logs", "root folder of runs", carried=False)
    seed: int = option(0, "random seed", type=int)
    gradient_clip_val: float | None = option(None, "clip gradient norm to this value "
                                                   "(default: off)", type=float)
    limit_train_batches: float | None = option(
        None, "train on this many batches (int) or share (float) per epoch", type=float)
    progress_bar: bool = option(True, "show progress bars (--no-progress_bar in log files)",
                                kind="switch", type=bool, carried=False,
                                aliases=("no_progress_bar",))


# Sections of a training run, in the order of `vpr train --help`.
SECTIONS: dict[str, type] = {
    "data": TrainDataConfig,
    "test_data": TestDataConfig,
    "input": InputConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "eval": EvalConfig,
    "hardware": HardwareConfig,
    "run": RunConfig,
}
# The sections `VPRModule` receives (and its checkpoints store).
MODULE_SECTIONS = ("model", "loss", "optim", "eval")


class _Sections:
    """Flat access to sectioned settings: ``config.lr`` is ``config.optim.lr``."""

    _sections: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for section in self._sections:
            part = object.__getattribute__(self, section)
            if name in {f.name for f in dataclasses.fields(part)}:
                return getattr(part, name)
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    def flat(self) -> dict[str, Any]:
        """Every setting by its (unique) name."""
        return {f.name: getattr(getattr(self, s), f.name)
                for s in self._sections for f in dataclasses.fields(getattr(self, s))}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Settings by section, as YAML-ready data (tuples become lists)."""
        return {s: {f.name: _plain(getattr(getattr(self, s), f.name))
                    for f in dataclasses.fields(getattr(self, s))} for s in self._sections}

    def replace(self, values: Mapping[str, Any], where: str = "settings"):
        """A copy with ``values`` (flat names, checked and converted) replaced."""
        parts = {s: dataclasses.replace(getattr(self, s)) for s in self._sections}
        for name, value in check_values(values, where, self._sections).items():
            section, field = FIELDS[name]
            setattr(parts[section], name, value)
        return type(self)(**parts)

    @classmethod
    def from_values(cls, values: Mapping[str, Any] | None = None, where: str = "settings"):
        """Defaults, with ``values`` (flat names or ``{section: {...}}``) replacing them."""
        return cls().replace(flatten(values or {}, where), where)


@dataclasses.dataclass
class ModuleConfig(_Sections):
    """What `VPRModule` is built from: the network, loss, optimiser and evaluation."""

    _sections = MODULE_SECTIONS
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)


@dataclasses.dataclass
class TrainConfig(_Sections):
    """Every setting of a training run (`vpr train`)."""

    _sections = tuple(SECTIONS)
    data: TrainDataConfig = dataclasses.field(default_factory=TrainDataConfig)
    test_data: TestDataConfig = dataclasses.field(default_factory=TestDataConfig)
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    hardware: HardwareConfig = dataclasses.field(default_factory=HardwareConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def module_config(self) -> ModuleConfig:
        """The part of the run `VPRModule` is built from."""
        return ModuleConfig(**{s: dataclasses.replace(getattr(self, s)) for s in MODULE_SECTIONS})


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def iter_fields(sections: tuple[str, ...] | None = None
                ) -> Iterator[tuple[str, dataclasses.Field]]:
    """(section, field) of every setting, in declaration order."""
    for section in sections or tuple(SECTIONS):
        for field in dataclasses.fields(SECTIONS[section]):
            yield section, field


# Setting name -> (section, field); names are unique across sections.
FIELDS: dict[str, tuple[str, dataclasses.Field]] = {f.name: (s, f) for s, f in iter_fields()}
# Older names of settings -> (name, value transform).
ALIASES: dict[str, tuple[str, Any]] = {}
for _name, (_section, _field) in FIELDS.items():
    for _alias in option_of(_field).aliases:
        # `no_X` of a switch X means X=false.
        invert = _alias == f"no_{_name}"
        ALIASES[_alias] = (_name, (lambda v: not bool(v)) if invert else (lambda v: v))
    if option_of(_field).flag:
        ALIASES[option_of(_field).flag] = (_name, lambda v: v)


def defaults(sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The default of every setting, by name."""
    return {field.name: default_of(field) for _, field in iter_fields(sections)}


def architecture_keys() -> tuple[str, ...]:
    """Settings that define the network: an explicit one must match a checkpoint."""
    return tuple(name for name, (_, field) in FIELDS.items() if option_of(field).architecture)


def carried_keys() -> tuple[str, ...]:
    """Settings a resumed run takes from its first run unless given again."""
    return tuple(name for name, (_, field) in FIELDS.items() if option_of(field).carried)


def canonical_key(key: Any) -> str:
    """``--loss-name`` -> ``loss_name``; an old alias -> the setting it stands for."""
    name = str(key).strip().lstrip("-").replace("-", "_")
    return ALIASES[name][0] if name in ALIASES else name


def flatten(values: Mapping[str, Any], where: str = "settings") -> dict[str, Any]:
    """Flat ``{name: value}`` from flat or sectioned (``{model: {...}}``) mappings."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def check_values(values: Mapping[str, Any], where: str = "settings",
                 sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Checks setting names and values; old names are translated.

    Raises:
        ValueError: an unknown setting (with close matches), or a value that does not fit.
    """
    import difflib

    allowed = {field.name for _, field in iter_fields(sections)}
    checked: dict[str, Any] = {}
    for raw_key, value in values.items():
        name = str(raw_key).strip().lstrip("-").replace("-", "_")
        if name in ALIASES:
            name, transform = ALIASES[name]
            value = transform(value)
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{where}: unknown setting {raw_key!r}{hint}")
        try:
            checked[name] = coerce(FIELDS[name][1], value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return checked


