"""Authentication and roles on every request of ``loopline server`` (when ``LOOPLINE_AUTH`` is on).

Who the caller is comes from, in order: an API token (``Authorization: Bearer llt_…``), an OIDC
JWT (``Authorization: Bearer eyJ…``, when an issuer is configured), HTTP Basic credentials (what the
unmodified mlflow client sends for ``MLFLOW_TRACKING_USERNAME/PASSWORD``), or the web UI's session
cookie. What they may do is ``auth.policy``'s rule for the route against their role in the
request's workspace (``Loopline-Workspace``, else the server's). The identity goes on the ASGI
scope, where ``server/state.py`` makes it the actor of everything the request records.

Pure ASGI, like the version check: a known credential costs one dict lookup. Verified credentials
are cached for ``CACHE_S`` seconds, so a password's scrypt hash (~50 ms) is paid once per
credential and window, not per request; revoking a token or a role takes effect within that window.
Failed attempts are rate-limited per client address.
"""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from starlette.concurrency import run_in_threadpool

from loopline.auth import policy
from loopline.auth.authenticator import Authenticator, parse_credential
from loopline.auth.types import Identity
from loopline.metadata.engine import is_outage
from loopline.protocol.http import WORKSPACE_HEADER

Scope = dict[str, Any]
SCOPE_KEY = "loopline.identity"
SESSION_COOKIE = "loopline_session"
CSRF_HEADER = b"x-csrf-token"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WORKSPACE = WORKSPACE_HEADER.lower().encode()


def credential(scope: Scope) -> tuple[str, str, str] | None:
    """The request's credential as (cache key, kind, secret), or None when it sends none."""
    return parse_credential(scope["headers"], session_cookie=SESSION_COOKIE)


WORKSPACE_COOKIE = "loopline_workspace"  # the web UI's workspace selector (a browser sends no header)


def requested_workspace(scope: MutableMapping[str, Any]) -> str | None:
    """The workspace a request names: its ``Loopline-Workspace`` header, else, for the web UI's own
    pages and chart data, the workspace its selector chose (a cookie); None: the server's."""
    cookie: str | None = None
    for name, value in scope["headers"]:
        if name == _WORKSPACE:
            return str(value.decode("latin-1"))
        if name == b"cookie":
            cookie = value.decode("latin-1")
    if cookie and scope["path"].startswith("/ui/"):
        for part in cookie.split(";"):
            key, _, chosen = part.strip().partition("=")
            if key == WORKSPACE_COOKIE and chosen:
                return chosen
    return None


def identity_of(scope: MutableMapping[str, Any]) -> Identity | None:
    """The authenticated identity of a request (None when auth is off)."""
    found: Identity | None = scope.get(SCOPE_KEY)
    return found


class AuthMiddleware:
    def __init__(self, app: Any, *, authenticator: Authenticator, default_workspace: str) -> None:
        self.app = app
        self.auth = authenticator
        self.default_workspace = default_workspace

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        rule = policy.rule(method, path)
        if rule.public:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "?"
        found = credential(scope)
        if found is None:
            await _refuse(scope, send, 401, "Authentication required.", _SIGN_IN_HINT, challenge=True)
            return
        key, kind, secret = found
        if kind == "malformed":
            await _refuse(scope, send, 401, "The Authorization header is malformed.", _SIGN_IN_HINT, True)
            return
        hit, who = self.auth.cached(key)
        if not hit:
            # Only a credential that must be checked waits out its address's failures: a signed-in
            # user behind the same address as a guesser keeps working.
            wait = self.auth.too_many_failures(client)
            if wait:
                await _refuse(scope, send, 429, "Too many failed sign-ins.", f"Try again in {wait:.0f} s.",
                              retry_after=wait)  # fmt: skip
                return
            try:
                who = await run_in_threadpool(self.auth.identify, key, kind, secret)
            except Exception as e:  # the identity store out of reach: "not now", like any outage
                if not is_outage(e):
                    raise
                await _refuse(scope, send, 503, "The metadata database is unavailable.", "Retry shortly.",
                              retry_after=1.0)  # fmt: skip
                return
        if who is None:
            self.auth.failed(client)
            what = "session has ended" if kind == "session" else "credentials are not valid"
            await _refuse(scope, send, 401, f"The {what}.", _SIGN_IN_HINT, challenge=True)
            return
        if (
            kind == "session"
            and method in _WRITES
            and not hmac.compare_digest(_header(scope, CSRF_HEADER) or "", who.csrf)
        ):
            await _refuse(scope, send, 403, "The request lacks the session's CSRF token.",
                          "Send the X-CSRF-Token the page carries.")  # fmt: skip
            return
        if rule.role is not None or rule.superuser:
            model = None
            if rule.model_scoped and not who.is_admin and who.models:
                model, receive = await _model_name(scope, receive)
            refusal = self._refusal(scope, rule, who, model)
            if refusal is not None:
                await _refuse(scope, send, 403, *refusal)
                return
        scope[SCOPE_KEY] = who
        await self.app(scope, receive, send)

    def _refusal(
        self, scope: Scope, rule: policy.Rule, who: Identity, model: str | None
    ) -> tuple[str, str] | None:
        """Why ``who`` may not make this request (message, hint), or None when they may."""
        if rule.superuser and not who.is_admin:
            return (f"User {who.user!r} is not an administrator of this server.",
                    "Ask an administrator (`loopline users update NAME --admin`).")  # fmt: skip
        workspace = requested_workspace(scope) or self.default_workspace
        role = who.role(workspace, model)
        if rule.role is None or (role is not None and role >= rule.role):
            return None
        has = f"is {role}" if role is not None else "has no role"
        why = f"User {who.user!r} {has} in workspace {workspace!r}"
        needs = f"{scope['method']} {scope['path']} needs {rule.role}"
        if who.scope < rule.role:
            fix = f"Use a token of scope {rule.role} or wider (loopline tokens create --scope …)."
            return f"{why}, as the token's scope allows; {needs}.", fix
        fix = f"Ask an admin of the workspace: loopline roles grant {who.user} {rule.role} -w {workspace}"
        return f"{why}; {needs}.", fix


_SIGN_IN_HINT = (
    "Send an API token (Authorization: Bearer …; LOOPLINE_TOKEN or MLFLOW_TRACKING_TOKEN for the "
    "clients) or a username and password (LOOPLINE_USERNAME/PASSWORD or MLFLOW_TRACKING_USERNAME/PASSWORD)."
)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


async def _model_name(scope: Scope, receive: Any) -> tuple[str | None, Any]:
    """The registered model a registry request names (query ``name``, else the JSON body's), and a
    ``receive`` that replays the body read to find it."""
    names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name")
    if names or scope["method"] in ("GET", "HEAD"):
        return (names[0] if names else None), receive
    chunks: list[bytes] = []
    more = True
    while more:  # the body's size is bounded by the guard before this middleware
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    name = parsed.get("name") if isinstance(parsed, dict) else None
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return dict(await receive())

    return (name if isinstance(name, str) else None), replay


async def _refuse(
    scope: Scope, send: Any, status: int, message: str, hint: str, challenge: bool = False,
    retry_after: float = 0.0,
) -> None:  # fmt: skip
    path = scope["path"]
    accepts_html = "text/html" in (_header(scope, b"accept") or "")
    if status == 401 and path.startswith("/ui/") and scope["method"] == "GET" and accepts_html:
        # A person at a browser: to the sign-in page, and back here afterwards.
        target = "/ui/login?next=" + quote(
            path + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
        )
        await send(
            {"type": "http.response.start", "status": 303, "headers": [(b"location", target.encode())]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    code = {
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        429: "RESOURCE_EXHAUSTED",
        503: "TEMPORARILY_UNAVAILABLE",
    }[status]
    headers = [(b"content-type", b"application/json")]
    if challenge:
        headers.append((b"www-authenticate", b'Bearer realm="loopline", Basic realm="loopline"'))
    if retry_after:
        headers.append((b"retry-after", str(int(retry_after) + 1).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {
            "type": "http.response.body",
            "body": orjson.dumps({"error_code": code, "message": message, "hint": hint}),
        }
    )
