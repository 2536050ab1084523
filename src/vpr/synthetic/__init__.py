"""A synthetic city: a built-in, offline place-recognition benchmark (``vpr synth``).

Street-level views of generated cities, written in the layout and @-format of GSV-XS,
SF-XS and Tokyo-XS. See docs/DATA.md.
"""

from vpr.synthetic.presets import PRESETS, Preset, get_preset, parse_image_size
from vpr.synthetic.preview import write_preview
from vpr.synthetic.writer import (
    GENERATOR_VERSION,
    SyntheticCityError,
    generate_city,
    read_manifest,
)

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "Preset",
    "SyntheticCityError",
    "generate_city",
    "get_preset",
    "parse_image_size",
    "read_manifest",
    "write_preview",
]
