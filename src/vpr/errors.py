"""The errors that mean "the user's input is wrong": reported as one line, no traceback.

This module imports nothing from vpr, so every layer may raise these. The package-specific
errors (`GeoTagError`, `BadImageError`, `CheckpointError`, ...) subclass ValueError.
"""


class RunError(RuntimeError):
    """A run cannot start: the message says why and what to do."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    RunError,
    FileNotFoundError,
    NotADirectoryError,
    ValueError,
    FloatingPointError,
)
