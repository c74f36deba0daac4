"""HTTP with keep-alive and retries, mapping MLflow-shaped error bodies back to Loopline errors.

Shared by the REST tracking store and the HTTP artifact store. Transient failures (connection
errors, 429, 502-504) are retried with exponential back-off, so a short server restart loses no
logged data.

A retried write must not run twice when only its answer was lost (a timeout, a dropped connection):
each JSON write carries an ``Idempotency-Key`` (a fresh UUID per call, the same on every retry of
it), and ``loopline server`` answers a retry with the first answer (``server/idempotency.py``), or
with 409 + ``Retry-After`` while the first still runs, which is retried here like a 503. MLflow's
server ignores the header.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from loopline._version import API_VERSION, MIN_SERVER_API, __version__
from loopline.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    IncompatibleVersion,
    InvalidInput,
    LooplineError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

_RETRY_STATUS = {429, 502, 503, 504}
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# JSON writes that go without a key: reads sent as POST (MLflow's searches, blob and key lookups) and
# the hot logging writes, which the server makes idempotent itself (a metric point is stored once, a
# param is write-once, a tag an upsert). A repeat of these is harmless; a key would cost each one two
# more database writes on the server. Uploads (not JSON) never carry one: blobs are content-addressed.
_REPEATABLE = frozenset(
    {"search", "log-batch", "log-metric", "log-parameter", "set-tag", "missing", "known-keys", "online"}
)
RUNNING_WAIT_S = 60.0  # above the server's idempotency lease (10 s) with room for a restart

_ERRORS: dict[str, type[LooplineError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "RESOURCE_ALREADY_EXISTS": AlreadyExists,
    "INVALID_PARAMETER_VALUE": InvalidInput,
    "BAD_REQUEST": InvalidInput,
    "INVALID_STATE": Conflict,
    "TEMPORARILY_UNAVAILABLE": BackendUnavailable,
    "INCOMPATIBLE_VERSION": IncompatibleVersion,
    "IDEMPOTENCY_KEY_REUSED": InvalidInput,
    "IDEMPOTENCY_KEY_IN_USE": Conflict,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
}
# Sent with every request; a Loopline server answers with its own (an MLflow server with neither).
# The workspace a request acts in (the server's own when absent, as from MLflow's client). The server
# checks the name and, with auth on, the caller's role in it.
WORKSPACE_HEADER = "Loopline-Workspace"
VERSION_HEADERS = {
    "User-Agent": f"loopline/{__version__}",
    "Loopline-Version": __version__,
    "Loopline-Api": str(API_VERSION),
}


def authorization(token: str = "", username: str = "", password: str = "") -> str | None:
    """The ``Authorization`` header for a token (preferred) or a username and password."""
    if token:
        return f"Bearer {token}"
    if username:
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return None


class RestClient:
    """JSON over HTTP with retries, mapping error bodies back to Loopline errors."""

    def __init__(
        self,
        base_url: str,
        *,
        retries: int = 5,
        timeout: float = 60.0,
        workspace: str | None = None,
        authorization: str | None = None,
        running_wait: float = RUNNING_WAIT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.running_wait = running_wait
        self.workspace = workspace  # the one its requests name (None: the server's own)
        # A plain-http client never does TLS (paths only, redirects not followed), so it skips loading
        # the CA bundle: 30-130 ms, a tenth of a cold model load. https keeps full verification.
        tls = self.base_url.startswith("https://")
        headers = VERSION_HEADERS | ({WORKSPACE_HEADER: workspace} if workspace else {})
        if authorization:
            headers["Authorization"] = authorization
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, verify=tls)
        self._server_checked = False

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if method == "GET":
            kwargs["params"] = {k: v for k, v in (body or {}).items() if v is not None}
        else:
            kwargs["content"] = orjson.dumps(body or {})
            kwargs["headers"] = {"Content-Type": "application/json"}
        resp = self.request(method, path, **kwargs)
        return dict(orjson.loads(resp.content)) if resp.content else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.get("headers") or {}
        keyed = any(k.lower() == "idempotency-key" for k in headers)  # the caller's own key
        if not keyed and needs_key(method, path, headers):  # one key per call, sent on every retry
            kwargs["headers"] = {**headers, "Idempotency-Key": f'"{uuid.uuid4()}"'}
            keyed = True
        delay, attempt = 0.1, 0
        # A call whose first try still runs (409 + Retry-After to the same key) is waited for up to
        # ``running_wait`` s, beyond the retries: after a server crash, its claim lapses with its lease.
        running_until = time.monotonic() + self.running_wait
        while True:
            wait = delay
            try:
                resp = self.http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise BackendUnavailable(
                        f"Cannot reach the tracking server at {self.base_url}: {e}.",
                        hint="Start it with `loopline server`, or check LOOPLINE_TRACKING_URI.",
                    ) from e
                attempt += 1
            else:
                if not self._server_checked:
                    self._check_server(resp)
                running = keyed and resp.status_code == 409 and "retry-after" in resp.headers
                if running and time.monotonic() < running_until:
                    wait = max(delay, _seconds(resp.headers["retry-after"]))
                elif resp.status_code in _RETRY_STATUS and attempt < self.retries:
                    attempt += 1
                else:
                    raise_for_error(resp)
                    return resp
            time.sleep(wait)
            delay = min(delay * 2, 5.0)

    def _check_server(self, resp: httpx.Response) -> None:
        """On the first answer: refuse a Loopline server whose API this client no longer speaks."""
        api = resp.headers.get("loopline-api")
        if api is None:  # an MLflow (or older Loopline) server: MLflow's routes are all we use
            self._server_checked = True
            return
        if not api.isdigit() or int(api) < MIN_SERVER_API:
            server = resp.headers.get("loopline-version", "unknown")
            raise IncompatibleVersion(
                f"The server at {self.base_url} runs Loopline {server} (API {api}); this client, "
                f"Loopline {__version__} (API {API_VERSION}), needs API {MIN_SERVER_API} or newer.",
                hint="Upgrade the server, or use a client of the server's version "
                f"(pip install 'loopline=={server}').",
            )
        self._server_checked = True

    def close(self) -> None:
        self.http.close()


def needs_key(method: str, path: str, headers: Mapping[str, str] | None) -> bool:
    """Whether a call carries an ``Idempotency-Key``: a JSON write that is not safe to repeat."""
    if method not in _UNSAFE or not headers:
        return False
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if kind.split(";")[0].strip().lower() != "application/json":
        return False
    return path.rstrip("/").rsplit("/", 1)[-1] not in _REPEATABLE


def _seconds(retry_after: str) -> float:
    """A Retry-After in seconds, within [0, 5] like the back-off (an HTTP date counts as 1 s)."""
    try:
        return min(max(float(retry_after), 0.0), 5.0)
    except ValueError:
        return 1.0


def raise_for_error(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    hint = ""
    try:
        body = resp.json()
        code, message = body.get("error_code", ""), body.get("message", resp.text)
        hint = str(body.get("hint") or "")  # Loopline's own refusals (versions, idempotency keys) carry one
    except ValueError:
        code, message = "", resp.text
    raise error_from(resp.status_code, code, message, hint)


def error_from(status_code: int, code: str, message: str, hint: str = "") -> LooplineError:
    """The Loopline error an error body stands for (a failed job's error is one too)."""
    if status_code == 404 and not code:
        code = "RESOURCE_DOES_NOT_EXIST"
    cls = _ERRORS.get(code, LooplineError)
    if status_code in _RETRY_STATUS:  # still failing after the retries: transient, not a refusal
        cls = BackendUnavailable
    err = cls(message or f"HTTP {status_code}", hint=hint)
    err.status_code = status_code
    return err
