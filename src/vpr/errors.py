"""The errors that mean "the user's input is wrong": reported as one line, no traceback."""

from vpr.data.geotag import GeoTagError
from vpr.data.images import BadImageError
from vpr.models.backbones import PretrainedWeightsError
from vpr.training.checkpoints import CheckpointError
from vpr.training.run import RunError
from vpr.utils.disk import DiskError
from vpr.utils.locking import LockTimeoutError

USER_ERRORS: tuple[type[BaseException], ...] = (
    GeoTagError,
    BadImageError,
    CheckpointError,
    RunError,
    DiskError,
    PretrainedWeightsError,
    FileNotFoundError,
    NotADirectoryError,
    ValueError,
    FloatingPointError,
    LockTimeoutError,
)
