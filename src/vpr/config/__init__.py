"""The typed settings of `vpr`: one declaration per option (`vpr.config.schema`)."""

from vpr.config.fields import Option, coerce, option, parse_overrides
from vpr.config.files import read_settings, write_settings
from vpr.config.schema import (
    FIELDS,
    MODULE_SECTIONS,
    SECTIONS,
    EvalConfig,
    HardwareConfig,
    InputConfig,
    LossConfig,
    ModelConfig,
    ModuleConfig,
    OptimConfig,
    RunConfig,
    TestDataConfig,
    TrainConfig,
    TrainDataConfig,
    architecture_keys,
    canonical_key,
    carried_keys,
    check_values,
    defaults,
    iter_fields,
)

__all__ = [
    "FIELDS", "MODULE_SECTIONS", "SECTIONS", "EvalConfig", "HardwareConfig", "InputConfig",
    "LossConfig", "ModelConfig", "ModuleConfig", "OptimConfig", "Option", "RunConfig",
    "TestDataConfig", "TrainConfig", "TrainDataConfig", "architecture_keys", "canonical_key",
    "carried_keys", "check_values", "coerce", "defaults", "iter_fields", "option",
    "parse_overrides", "read_settings", "write_settings",
]
