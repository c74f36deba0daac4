"""``loopline server``: MLflow's REST API (tracking, artifacts), Loopline's own routes, later the UI.

``create_app(settings)`` builds the ASGI app; nothing is opened at import time.
"""

from loopline.server.app import create_app

__all__ = ["create_app"]
