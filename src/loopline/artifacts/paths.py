"""Artifact paths: relative, POSIX, and unable to escape their root."""

from __future__ import annotations

import posixpath
import re

from loopline.errors import InvalidInput

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_path(path: str, *, allow_root: bool = False) -> str:
    """Return ``path`` normalised, or raise ``InvalidInput`` if it could leave the artifact root.

    Refused: absolute paths, ``..`` segments, NUL bytes, backslashes, drive letters.

    >>> safe_path("model/MLmodel")
    'model/MLmodel'
    """
    if not isinstance(path, str):
        raise InvalidInput(f"An artifact path must be a string, got {type(path).__name__}.")
    stripped = path.strip("/") if allow_root else path.rstrip("/")
    if not stripped:
        if allow_root:
            return ""
        raise InvalidInput("An artifact path must not be empty.")
    problem = None
    if "\x00" in path:
        problem = "contains a NUL byte"
    elif "\\" in path:
        problem = "contains a backslash"
    elif stripped.startswith("/") or _DRIVE.match(stripped):
        problem = "is absolute"
    elif any(part in ("..", ".") for part in stripped.split("/")) or "//" in stripped:
        problem = "has '..', '.' or empty segments"
    if problem:
        raise InvalidInput(
            f"Invalid artifact path {path!r}: it {problem}.",
            hint="Use a relative path inside the run's artifact folder, like 'plots/loss.png'.",
        )
    return posixpath.normpath(stripped)


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))
