"""The errors that mean "the user's input is wrong": reported as one line, no traceback.

This module imports nothing from vpr, so every layer may raise these. The package-specific
errors subclass `UserError` (`DiskError`, `LockTimeoutError`, `PretrainedWeightsError`) or
ValueError (`GeoTagError`, `BadImageError`, `CheckpointError`, ...).
"""


class UserError(RuntimeError):
    """Something the user can fix; the message says what."""


class RunError(UserError):
    """A run cannot start: the message says why and what to do."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    NotADirectoryError,
    ValueError,
    FloatingPointError,
)
