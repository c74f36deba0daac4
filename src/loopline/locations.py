"""Where things live by default, from URIs alone: no third-party import, and not even ``pathlib``
or ``typing`` on the paths ``loopline data status`` takes (they are a sixth of its run time)."""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_HOME = ".loopline"
DEFAULT_TRACKING_URI = f"sqlite:///{DEFAULT_HOME}/loopline.db"


def sqlite_uri(path: str | Path) -> str:
    return f"sqlite:///{path}"


def sqlite_file(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs and in-memory databases)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return uri.removeprefix("sqlite:///").split("?", 1)[0]


def sqlite_path(uri: str) -> Path | None:
    """``sqlite_file`` as a ``Path``."""
    from pathlib import Path

    file = sqlite_file(uri)
    return None if file is None else Path(file)


def normalize_store_uri(uri: str) -> str:
    """Accept the spellings users type: a bare path means SQLite, ``postgresql://`` means psycopg 3."""
    if uri.startswith(("http://", "https://", "sqlite:", "postgresql+")):
        return uri
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith("file:"):
        uri = uri.removeprefix("file://").removeprefix("file:")
    if "://" not in uri:
        from pathlib import Path

        path = Path(uri)
        return sqlite_uri(path / "loopline.db" if path.suffix == "" else path)
    return uri


def default_tracking_uri(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    uri = env.get("LOOPLINE_TRACKING_URI") or env.get("MLFLOW_TRACKING_URI")
    return normalize_store_uri(uri) if uri else DEFAULT_TRACKING_URI


def cache_folder(tracking_uri: str, environ: Mapping[str, str] | None = None) -> str:
    """This machine's caches (file hashes): beside a SQLite database, else ~/.cache/loopline."""
    db = sqlite_file(tracking_uri)
    if db is not None:
        return os.path.join(os.path.dirname(db), "cache")
    env = os.environ if environ is None else environ
    return os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "loopline"
    )


def cache_dir(tracking_uri: str, environ: Mapping[str, str] | None = None) -> Path:
    """``cache_folder`` as a ``Path``."""
    from pathlib import Path

    return Path(cache_folder(tracking_uri, environ))
