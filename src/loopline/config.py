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
``LOOPLINE_DIRECT_ARTIFACTS_   ``loopline server --no-serve-artifacts``: new experiments get
ROOT``                         ``<root>/<id>`` and clients write there directly (unset: off)
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
``LOOPLINE_SCHEDULER_INTERVAL`` ``loopline server``: seconds between pipeline scheduler ticks
                               (``30``; ``0``: off)
``LOOPLINE_MONITOR_POLL``      ``loopline server``: seconds between due-monitor polls (``30``; ``0``: off)
``LOOPLINE_SERVER_RUN_UDFS``   ``loopline server`` runs on-demand feature views' stored code
                               (``0``: clients run it)
``LOOPLINE_JOB_WAIT``          ``loopline server``: seconds a long request (materialise, monitor
                               run…) is waited for before it answers 202 with a job id (``2``)
``LOOPLINE_IDEMPOTENCY_TTL``   ``loopline server``: seconds an ``Idempotency-Key``'s answer is kept
                               for replay (``86400``: a day)
``LOOPLINE_IDEMPOTENCY_LEASE`` ``loopline server``: seconds after which a keyed request's claim that
                               its server stopped renewing (it died) is taken over by a retry (``10``)
``LOOPLINE_CONTROLLER_INTERVAL`` ``loopline server``: seconds between the loop controller's ticks
                               (``1``; ``0``: off)
``LOOPLINE_PIPELINE_ROOTS``    ``loopline server``: folders whose pipeline files the loop's controller
                               may run (``:``-separated; unset: none, retraining is refused)
``LOOPLINE_WEBHOOK_SECRET``    signs the loop's webhooks (``X-Loopline-Signature``; unset: unsigned)
``LOOPLINE_AUTH``              ``loopline server``: require authentication and check roles (``0``)
``LOOPLINE_ACCESS_LOG``        ``loopline server``: a JSON line per request, with its request id and
                               actor, on stdout (``0``; on with auth)
``LOOPLINE_TOKEN``             the client's API token (``MLFLOW_TRACKING_TOKEN`` is honoured too)
``LOOPLINE_USERNAME`` /        the client's HTTP Basic credentials (``MLFLOW_TRACKING_USERNAME`` /
``LOOPLINE_PASSWORD``          ``MLFLOW_TRACKING_PASSWORD`` are honoured too)
``LOOPLINE_OIDC_ISSUER``       ``loopline server``: an OpenID Connect issuer whose JWTs are accepted
                               (with ``LOOPLINE_OIDC_CLIENT_ID`` / ``_CLIENT_SECRET`` / ``_AUDIENCE``)
``LOOPLINE_ALLOWED_HOSTS``     ``Host`` names the servers answer (``,``-separated, ``.example.com``
                               for a domain; unset: loopback names when bound to loopback, else
                               any; ``*``: any)
``LOOPLINE_ALLOWED_ORIGINS``   other origins allowed to send state-changing requests (unset: none;
                               ``*``: any)
``LOOPLINE_MAX_JSON_BYTES``    largest JSON request body the servers read (``16777216``)
``LOOPLINE_ARTIFACT_ROOTS``    roots a client-chosen artifact location must lie under
                               (``,``-separated; unset: only the server's own, when auth is on)
``LOOPLINE_WEBHOOK_ALLOW``     webhook targets allowed besides public addresses (hosts, addresses
                               or CIDRs, ``,``-separated, ``*``: any; unset: loopback, private and
                               link-local addresses are refused)
=============================  =========================================================
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loopline.errors import InvalidInput
from loopline.locations import DEFAULT_HOME, cache_dir, normalize_store_uri, sqlite_path, sqlite_uri


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


# A plain frozen dataclass, not a pydantic model: every CLI process builds one, and pydantic's
# import alone cost more than the rest of a `loopline data status` (~80 ms of CPU).
@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Frozen: make a new one with ``dataclasses.replace(settings, …)``."""

    tracking_uri: str = field(default_factory=lambda: sqlite_uri(Path(DEFAULT_HOME) / "loopline.db"))
    artifacts_uri: str = field(default_factory=lambda: str(Path(DEFAULT_HOME) / "artifacts"))
    workspace: str = "default"
    user: str = field(default_factory=_default_user)
    flush_interval: float = 0.5
    gc_interval: float = 0.0
    gc_older_than: float = 30 * 86400.0
    # Online feature store: "sqlite" (a file beside the metadata database) or redis://host:port/db.
    online_store: str = "sqlite"
    # Pipeline executor: "local" (processes on this machine), "ray" (auto) or ray://head:10001.
    executor: str = "local"
    # Where `loopline data push/pull` send and fetch dataset versions (e.g. s3://bucket/data).
    data_remote: str = ""
    # MLflow's `--no-serve-artifacts` mode of the server (off when empty): new experiments' artifact
    # locations lie under this URI and clients write there directly, bypassing the server.
    direct_artifacts_root: str = ""
    # loopline server: seconds between the pipeline scheduler's ticks and between monitor polls (0: off).
    scheduler_interval: float = 30.0
    monitor_poll: float = 30.0
    # loopline server: run on-demand feature views' stored Python for clients (off: they run it).
    server_run_udfs: bool = False
    # loopline server: FastAPI's native OpenTelemetry (spans, metrics and logs to the globally configured
    # providers). Off unless asked for: even unconfigured, its per-request checks cost CPU.
    server_otel: bool = False
    # loopline server: seconds a long request runs before it answers 202 with a job to poll instead.
    job_wait: float = 2.0
    # loopline server: seconds a retried write (same Idempotency-Key) gets the first answer back.
    idempotency_ttl: float = 86400.0
    # loopline server: seconds a keyed request's claim outlives its server (renewed while it runs).
    idempotency_lease: float = 10.0
    # The loop's controller: seconds between its ticks inside `loopline server` (0: off), and the key
    # that signs its webhooks (X-Loopline-Signature; unsigned when empty).
    controller_interval: float = 1.0
    # loopline server: folders (os.pathsep-separated) whose pipeline files its controller may run.
    # Empty: none — a policy sent to a server could otherwise name any file on its disk.
    pipeline_roots: str = ""
    webhook_secret: str = ""
    # Security (docs/security.md). The servers' side: authentication and roles on every route, the
    # OIDC issuer whose tokens are accepted, and the request checks that hold with auth off too.
    auth: bool = False
    access_log: bool = False
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_audience: str = ""
    allowed_hosts: str = ""
    allowed_origins: str = ""
    max_json_bytes: float = 16 * 1024 * 1024
    artifact_roots: str = ""
    webhook_allow: str = ""
    # The client's side: what it sends a server that requires authentication.
    token: str = ""
    username: str = ""
    password: str = ""
    # False for read-only work (`loopline runs list`…): a SQLite store that does not exist is an error
    # naming it instead of a new empty one, so a typo in a path never creates a store. Not from the
    # environment: the command decides.
    create_store: bool = True

    def __repr__(self) -> str:  # no secret ever reaches a log line
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for secret in _SECRETS:
            shown[secret] = "***" if shown[secret] else ""
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def __post_init__(self) -> None:
        # Values from the environment arrive as strings: coerce them as a validating model would.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                object.__setattr__(self, f.name, _flag(f.name, value))
            elif f.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    raise _invalid(f.name, value)
                try:
                    object.__setattr__(self, f.name, float(value))
                except ValueError:
                    raise _invalid(f.name, value) from None
            elif not isinstance(value, str):
                raise _invalid(f.name, value)

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
        for name in (
            "artifacts_uri",
            "workspace",
            "user",
            "flush_interval",
            "gc_interval",
            "gc_older_than",
            "online_store",
            "executor",
            "data_remote",
            "direct_artifacts_root",
            "scheduler_interval",
            "monitor_poll",
            "server_run_udfs",
            "server_otel",
            "job_wait",
            "idempotency_ttl",
            "idempotency_lease",
            "controller_interval",
            "pipeline_roots",
            "webhook_secret",
            "auth",
            "access_log",
            "oidc_issuer",
            "oidc_client_id",
            "oidc_client_secret",
            "oidc_audience",
            "allowed_hosts",
            "allowed_origins",
            "max_json_bytes",
            "artifact_roots",
            "webhook_allow",
            "token",
            "username",
            "password",
        ):
            raw = env.get(f"LOOPLINE_{name.upper()}") or env.get(_MLFLOW_ALIASES.get(name, ""))
            if raw:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "tracking_uri" in values:
            values["tracking_uri"] = normalize_store_uri(str(values["tracking_uri"]))
            db = sqlite_path(str(values["tracking_uri"]))
            if db is not None and "artifacts_uri" not in values:  # artifacts live beside their database
                values["artifacts_uri"] = str(db.parent / "artifacts")
        if unknown := values.keys() - {f.name for f in dataclasses.fields(cls)}:
            raise InvalidInput(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        return cls(**values)  # type: ignore[arg-type]  # __post_init__ checks and coerces the types

    @property
    def cache_dir(self) -> Path:
        """This machine's caches (file hashes): beside a SQLite database, else ~/.cache/loopline."""
        return cache_dir(self.tracking_uri)

    @property
    def is_remote(self) -> bool:
        """True when the tracking URI names a Loopline (or MLflow-compatible) server."""
        return self.tracking_uri.startswith(("http://", "https://"))


_SECRETS = ("webhook_secret", "oidc_client_secret", "token", "password")
# The unmodified mlflow client's credentials work for Loopline's own client too.
_MLFLOW_ALIASES = {
    "token": "MLFLOW_TRACKING_TOKEN",
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInput(f"Invalid setting {name}={value!r}: it must be 1/true/yes/on or 0/false/no/off.")


def _invalid(name: str, value: object) -> InvalidInput:
    kind = "a number" if name.endswith(("interval", "older_than", "poll", "wait", "bytes")) else "a string"
    return InvalidInput(f"Invalid setting {name}={value!r}: it must be {kind}.")


__all__ = ["DEFAULT_HOME", "Settings", "normalize_store_uri", "sqlite_path", "sqlite_uri"]
