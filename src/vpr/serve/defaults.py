"""The defaults of `vpr serve`'s limits and batching, declared once.

Imports nothing, so that `vpr serve --help` (which shows them) stays fast; the modules
that apply each limit and the CLI read them from here.
"""

DEFAULT_MAX_UPLOAD_MB = 20.0  # one photo's upload
DEFAULT_MAX_BATCH_FILES = 50  # photos in one POST /locate/batch
DEFAULT_MAX_BATCH_MB = 100.0  # one POST /locate/batch body
DEFAULT_MAX_DECODES = 2  # uploads decoded at the same time
DEFAULT_MAX_PIXELS = 40_000_000  # largest image accepted, checked from its header
DEFAULT_READ_TIMEOUT_S = 30.0  # a request's head, then its body
DEFAULT_MAX_BATCH = 8  # concurrent requests described in one forward pass
DEFAULT_WINDOW_MS = 10.0  # how long a request waits for others to batch with
