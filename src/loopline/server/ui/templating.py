"""The Jinja2 environment of the UI and the filters its templates use to show values."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from loopline.server.auth import identity_of
from loopline.server.state import state, workspace

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as UTC time to the second, ``""`` for none."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    if start is None or end is None or end < start:
        return ""
    s = (end - start) / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def number(value: float | None) -> str:
    """A metric value in at most 6 significant digits (the exact value is in the title)."""
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def value(v: Any) -> str:
    """A statistic as read from JSON: numbers as ``number`` shows them, the rest as text, none as —."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        return number(float(v)) if isinstance(v, float) else f"{v:,}"
    return str(v)


def pretty(v: Any) -> str:
    """JSON to read (indented, characters as they are); escaped by the template like any text,
    unlike ``tojson``, which is for inside attributes and scripts and shows ' as \\u0027."""
    return json.dumps(v, indent=2, ensure_ascii=False, default=str)


def size(n: int | None) -> str:
    """A file size in B, KB, MB or GB (powers of 1024)."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def query(**params: Any) -> str:
    """A query string of the non-empty ``params`` (lists repeat their key)."""
    pairs = [
        (k, item)
        for k, v in params.items()
        for item in (v if isinstance(v, list | tuple) else [v])
        if item not in (None, "")
    ]
    return "?" + urlencode(pairs) if pairs else ""


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the page (and its test), not blank text
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    when=when, number=number, value=value, pretty=pretty, size=size, path=lambda s: quote(str(s), safe="")
)
_env.globals.update(duration=duration, query=query)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``; pages extend ``base.html``, fragments (``_*.html``) don't."""
    who = identity_of(request.scope)  # signed in (auth on): the header shows them, forms carry the CSRF token
    html = _env.get_template(template).render(
        {
            "nav": "",
            "request_path": request.url.path,
            "who": who,
            "csrf": who.csrf if who else "",
            "workspace": workspace(request),  # the selector's choice: htmx sends it to the API as a header
            "choose_workspace": who is not None or not state(request).settings.auth,  # not before sign-in
            **context,
        }
    )
    return HTMLResponse(html, status_code=status_code, headers={"Vary": "HX-Request"})
