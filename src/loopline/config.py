"""One ``Settings`` object resolves every backend.

Nothing is read at import time: ``Settings.from_env()`` reads the environment (or a mapping you
inject, which is how tests configure Loopline) when a client or server is made.

=============================  =========================================================
variable                       meaning (default)
=============================  =========================================================
``LOOPLINE_TRACKING_URI``      metadata store or server: ``sqlite:///…``,
                               ``postgresql+psycopg://…`` or ``http://host:port``
                               (``sqlite:///./.loopline/loopline.db``);
                               ``MLFLOW_TRACKING_URI`` is honoured when this is unset
``LOOPLINE_ARTIFACTS_URI``     artifact root: a folder or ``s3://bucket/prefix``
                               (``artifacts/`` beside a SQLite database, so ``./.loopline/artifacts``)
``LOOPLINE_STORE_URI``         ``loopline server``'s own database (else a database URI in
                               ``LOOPLINE_TRACKING_URI``; an ``http://`` one there is ignored)
``LOOPLINE_WORKSPACE``         workspace every object belongs to (``default``)
``LOOPLINE_USER``              actor recorded on events (the OS user name)
``LOOPLINE_FLUSH_INTERVAL``    seconds between background metric flushes (``0.5``)
``LOOPLINE_GC_INTERVAL``       seconds between the server's garbage collections (``0``: off)
``LOOPLINE_GC_OLDER_THAN``     server GC purges runs deleted at least this many seconds ago
                               (``2592000``: 30 days)
``LOOPLINE_ONLINE_STORE``      online feature store: ``sqlite`` (beside the database) or
                               ``redis://host:port/db`` (``sqlite``)
``LOOPLINE_EXECUTOR``          pipeline executor: ``local``, ``ray`` or ``ray://head:10001``
                               (``local``)
``LOOPLINE_DATA_REMOTE``       where ``loopline data push/pull`` send and fetch versions
                               (``s3://bucket/prefix`` or a folder; unset)
=============================  =========================================================
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from loopline.locations import DEFAULT_HOME, cache_dir, normalize_store_uri, sqlite_path, sqlite_uri


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class Settings(BaseModel):
    """Resolved configuration. Frozen: make a new one with ``model_copy(update=…)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str = Field(default_factory=lambda: sqlite_uri(Path(DEFAULT_HOME) / "loopline.db"))
    artifacts_uri: str = Field(default_factory=lambda: str(Path(DEFAULT_HOME) / "artifacts"))
    workspace: str = "default"
    user: str = Field(default_factory=_default_user)
    flush_interval: float = 0.5
    gc_interval: float = 0.0
    gc_older_than: float = 30 * 86400.0
    # Online feature store: "sqlite" (a file beside the metadata database) or redis://host:port/db.
    online_store: str = "sqlite"
    # Pipeline executor: "local" (processes on this machine), "ray" (auto) or ray://head:10001.
    executor: str = "local"
    # Where `loopline data push/pull` send and fetch dataset versions (e.g. s3://bucket/data).
    data_remote: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``LOOPLINE_*`` variables in ``environ`` (default ``os.environ``).

        Explicit ``overrides`` that are not ``None`` win over the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        tracking = env.get("LOOPLINE_TRACKING_URI") or env.get("MLFLOW_TRACKING_URI")
        if tracking:
            values["tracking_uri"] = tracking
        for field in (
            "artifacts_uri",
            "workspace",
            "user",
            "flush_interval",
            "gc_interval",
            "gc_older_than",
            "online_store",
            "executor",
            "data_remote",
        ):
            raw = env.get(f"LOOPLINE_{field.upper()}")
            if raw:
                values[field] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "tracking_uri" in values:
            values["tracking_uri"] = normalize_store_uri(str(values["tracking_uri"]))
            db = sqlite_path(str(values["tracking_uri"]))
            if db is not None and "artifacts_uri" not in values:  # artifacts live beside their database
                values["artifacts_uri"] = str(db.parent / "artifacts")
        return cls.model_validate(values)

    @property
    def cache_dir(self) -> Path:
        """This machine's caches (file hashes): beside a SQLite database, else ~/.cache/loopline."""
        return cache_dir(self.tracking_uri)

    @property
    def is_remote(self) -> bool:
        """True when the tracking URI names a Loopline (or MLflow-compatible) server."""
        return self.tracking_uri.startswith(("http://", "https://"))


__all__ = ["DEFAULT_HOME", "Settings", "normalize_store_uri", "sqlite_path", "sqlite_uri"]
