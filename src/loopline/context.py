"""The scoped context every client is built from: settings, workspace, actor and the connections.

A ``Context`` answers, for one tracking URI, the questions every domain's client asks: which database
engine (embedded or PostgreSQL), which HTTP client (against ``loopline server``), which artifact store,
on behalf of which workspace and actor. Connections are made on first use and shared:

- one SQLAlchemy engine per database per process (``shared_engine``): each client of the same
  database, whatever its domain, uses the same connection pool, and a migration check runs once;
- one HTTP client per ``Context`` family: ``scoped()`` copies share it, so the registry, data and
  pipeline clients of a remote tracking client reuse its connection pool (each new HTTP client costs
  70-130 ms to make).

The server makes one ``Context`` per process and a ``scoped(workspace=…, actor=…)`` copy per request;
that is where authentication plugs in.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING

from loopline.config import Settings
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from loopline.artifacts.protocol import ArtifactStore
    from loopline.protocol.http import RestClient

# Engines live while some client uses them: a process that opens many short-lived stores (tests, a
# server's GC) does not keep a pool per database forever.
_ENGINES: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()
_ENGINES_LOCK = threading.Lock()


def shared_engine(uri: str, *, create: bool = True) -> Engine:
    """The engine of the database ``uri``, one per process while in use (migrated to head once).
    ``create=False``: a SQLite file that does not exist is a ``NotFound``, not a new store."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(uri)
        if engine is None:
            from loopline.metadata.engine import create_store_engine

            engine = create_store_engine(uri, create=create)
            _ENGINES[uri] = engine
        return engine


@dataclasses.dataclass
class _Connections:
    """What the copies of one context share, made on first use."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    engine: Engine | None = None
    http: dict[str, RestClient] = dataclasses.field(default_factory=dict)  # per workspace: its header
    artifacts: dict[str, ArtifactStore] = dataclasses.field(default_factory=dict)  # per workspace


class Context:
    """Settings, workspace and actor, and the engine, HTTP client and artifact store they name."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        _connections: _Connections | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.workspace = workspace or self.settings.workspace
        self.actor = actor or self.settings.user
        self._conn = _connections or _Connections()

    def __repr__(self) -> str:
        return f"Context({self.settings.tracking_uri!r}, workspace={self.workspace!r}, actor={self.actor!r})"

    @property
    def is_remote(self) -> bool:
        """True when the tracking URI names a server: every store is then its REST implementation."""
        return self.settings.is_remote

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> Context:
        """A copy for another workspace or actor that shares this context's connections."""
        return Context(
            self.settings,
            workspace=workspace or self.workspace,
            actor=actor or self.actor,
            _connections=self._conn,
        )

    @property
    def engine(self) -> Engine:
        """The metadata database's engine; a server URI has none (use the REST stores)."""
        if self.is_remote:
            raise InvalidInput(
                f"{self.settings.tracking_uri} is a server, not a database: there is no engine to open.",
                hint="Go through the domain's REST store (open_<domain>_store picks it from the URI).",
            )
        with self._conn.lock:
            if self._conn.engine is None:
                self._conn.engine = shared_engine(
                    self.settings.tracking_uri, create=self.settings.create_store
                )
            return self._conn.engine

    @property
    def http(self) -> RestClient:
        """The HTTP client of the server the tracking URI names (shared by every domain's REST store),
        which names this context's workspace to the server in each request (all but "default", which
        leaves the choice to the server: its own LOOPLINE_WORKSPACE)."""
        if not self.is_remote:
            raise InvalidInput(f"{self.settings.tracking_uri} is a database, not a server.")
        with self._conn.lock:
            client = self._conn.http.get(self.workspace)
            if client is None:
                from loopline.protocol.http import RestClient, authorization

                # "default" (LOOPLINE_WORKSPACE unset) defers to the server's own workspace.
                named = None if self.workspace == "default" else self.workspace
                s = self.settings
                client = self._conn.http[self.workspace] = RestClient(
                    s.tracking_uri,
                    workspace=named,
                    authorization=authorization(s.token, s.username, s.password),
                )
            return client

    @property
    def artifacts(self) -> ArtifactStore:
        """The workspace's artifact store: its folder under the configured root
        (``loopline.artifacts.workspaces``), or the server's artifact proxy when remote."""
        store = self._conn.artifacts.get(self.workspace)
        if store is None:
            if self.is_remote:
                from loopline.artifacts.http import HttpArtifactStore

                store = HttpArtifactStore(self.settings.tracking_uri, client=self.http)
            else:
                from loopline.artifacts import open_artifact_store

                store = open_artifact_store(self.settings.artifacts_uri, workspace=self.workspace)
            with self._conn.lock:
                store = self._conn.artifacts.setdefault(self.workspace, store)
        return store


__all__ = ["Context", "shared_engine"]
