"""`vpr serve`: a geolocation HTTP service and web page over a location index."""

from vpr.serve.app import create_app
from vpr.serve.server import serve, serve_in_background

__all__ = ["create_app", "serve", "serve_in_background"]
