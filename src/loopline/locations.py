"""Where things live by default, from URIs alone: no third-party import, so the lean paths of the
CLI (``loopline data status``) can use it without paying for pydantic or SQLAlchemy."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_HOME = ".loopline"


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs and in-memory databases)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def normalize_store_uri(uri: str) -> str:
    """Accept the spellings users type: a bare path means SQLite, ``postgresql://`` means psycopg 3."""
    if uri.startswith(("http://", "https://", "sqlite:", "postgresql+")):
        return uri
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith("file:"):
        uri = uri.removeprefix("file://").removeprefix("file:")
    if "://" not in uri:
        path = Path(uri)
        return sqlite_uri(path / "loopline.db" if path.suffix == "" else path)
    return uri


def default_tracking_uri(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    uri = env.get("LOOPLINE_TRACKING_URI") or env.get("MLFLOW_TRACKING_URI")
    return normalize_store_uri(uri) if uri else sqlite_uri(Path(DEFAULT_HOME) / "loopline.db")


def cache_dir(tracking_uri: str, environ: Mapping[str, str] | None = None) -> Path:
    """This machine's caches (file hashes): beside a SQLite database, else ~/.cache/loopline."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        return db.parent / "cache"
    env = os.environ if environ is None else environ
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loopline"
