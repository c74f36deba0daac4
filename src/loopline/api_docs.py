"""The API page (``/docs``) of both servers: Swagger UI from files shipped in the package.

``loopline server`` and ``loopline serve`` each answer ``/docs`` with this page and its assets under
``/docs/assets/``; nothing is loaded from a CDN, so the page works on a cluster without Internet
access. The files are Swagger UI's own (``static/swagger-ui``, refreshed by ``make vendor``, with
their version, licence and checksums in ``VENDOR.json``).
"""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "swagger-ui"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
ASSETS_PATH = "/docs/assets"


@functools.cache
def asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of one of the page's files, or None for any other name."""
    if name not in ASSETS:
        return None
    return (VENDOR / name).read_bytes(), ASSETS[name]


def page(title: str, openapi_url: str, root_path: str = "") -> str:
    """Swagger UI for the OpenAPI document at ``openapi_url``; ``root_path``: a proxy's prefix."""
    assets = f"{root_path}{ASSETS_PATH}"
    config = json.dumps(
        {
            "url": f"{root_path}{openapi_url}",
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "validatorUrl": None,  # the default would send the document to validator.swagger.io
        }
    ).replace("<", "\\u003c")  # nothing in it can close the <script>
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle(Object.assign({config}, {{
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout"
}}));
</script>
</body>
</html>
"""
