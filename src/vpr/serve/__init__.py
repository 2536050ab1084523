"""`vpr serve`: a geolocation HTTP service and web page over a location index.

The app and server are imported on first use (they need FastAPI and uvicorn), so that
`vpr.serve.defaults` can be read by the CLI's parser without them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"create_app": "vpr.serve.app", "serve": "vpr.serve.server",
         "serve_in_background": "vpr.serve.server"}

__all__ = ["create_app", "serve", "serve_in_background"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vpr.serve' has no attribute {name!r}")
