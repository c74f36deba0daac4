"""Where a client may point an experiment's artifacts: under the configured roots only.

A client-chosen ``artifact_location`` (``experiments/create``) is where that experiment's runs write
and where the server later reads logged models from, so an unchecked one (``/etc``, ``s3://other``)
lets a client aim the server at anything it can reach. When ``LOOPLINE_ARTIFACT_ROOTS`` is set, or
authentication is on, a location must lie under one of the roots: the listed ones (default: none),
the ``--no-serve-artifacts`` root when that mode is on, and the server's own store
(``mlflow-artifacts:/…``, what experiments get when no location is given). Locations are normalised
before they are compared (``..``, ``%2e%2e``, symlinks of local paths), so no path climbs out.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import unquote, urlsplit

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.uris import ARTIFACT_SCHEME


def allowed_roots(settings: Settings) -> tuple[str, ...] | None:
    """The normalised roots a location must lie under, or None when locations are not confined."""
    listed = [r.strip() for r in settings.artifact_roots.split(",") if r.strip()]
    if not listed and not settings.auth:
        return None
    if settings.direct_artifacts_root:
        listed.append(settings.direct_artifacts_root)
    return tuple(normalize_location(r) for r in listed)


def normalize_location(location: str) -> str:
    """A location as a URI with its path made canonical: a local path becomes ``file://`` and its
    symlinks are resolved; ``.``/``..`` segments (also percent-encoded) are folded away."""
    if "://" not in location and ":/" not in location:  # a plain path, as the store keeps it
        return "file://" + os.path.realpath(unquote(location))
    parts = urlsplit(location)
    path = unquote(parts.path)
    if parts.scheme == "file":
        return "file://" + os.path.realpath(path or "/")
    folded = posixpath.normpath(path) if path else ""
    if folded == ".":
        folded = ""
    return f"{parts.scheme}://{parts.netloc}{folded}"


def confine(location: str | None, settings: Settings) -> None:
    """Refuse (400) a client-chosen ``location`` outside the allowed roots."""
    if location is None:
        return
    if location.startswith(ARTIFACT_SCHEME):  # the server's own store: only its inside
        if ".." not in unquote(location).replace("\\", "/").split("/"):
            return
        raise InvalidInput(
            f"Invalid artifact_location {location[:200]!r}: '..' may not appear in it.",
            hint="Leave artifact_location out: the server then stores the experiment's artifacts itself.",
        )
    roots = allowed_roots(settings)
    if roots is None:
        return
    seen = normalize_location(location)
    if any(seen == root or seen.startswith(root.rstrip("/") + "/") for root in roots):
        return
    under = ", ".join(roots) if roots else "none but the server's own store"
    raise InvalidInput(
        f"Invalid artifact_location {location[:200]!r}: it lies outside the server's artifact roots "
        f"({under}).",
        hint="Leave artifact_location out: the server then stores the experiment's artifacts itself. "
        "An operator can allow more roots with LOOPLINE_ARTIFACT_ROOTS.",
    )
