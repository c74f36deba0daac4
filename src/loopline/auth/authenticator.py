"""Who a request is: its credential (an API token, an OIDC JWT, HTTP Basic, a web session), looked
up in the identity store or asked of ``loopline server``, with a short-lived cache and a limit on
failed attempts. Used by both servers: ``server/auth.py`` and ``loopline serve``.

Verified credentials are cached for ``CACHE_S`` seconds, so a password's scrypt hash (~50 ms) is paid
once per credential and window, not per request; revoking a token or a role takes effect within that
window (at once on the replica where it was revoked).
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from loopline.auth.credentials import TOKEN_PREFIX
from loopline.auth.types import Identity, identity_from_json

if TYPE_CHECKING:
    from loopline.auth.sql_store import SqlAuthStore

CACHE_S = 10.0
_CACHE_MAX = 10_000
_FAILURES_MAX, _FAILURES_WINDOW_S = 20, 60.0  # failed sign-ins per client address and window


Lookup = Callable[[str, str], "Identity | None"]  # (kind, secret) -> who it is, or None


class Authenticator:
    """Turns a request's credentials into an ``Identity``, with a short-lived cache, and counts failed
    attempts per client address."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup  # a blocking call: ``store_lookup`` or ``server_lookup``
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, Identity | None]:
        hit = self._cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def identify(self, key: str, kind: str, secret: str) -> Identity | None:
        """Look a credential up (a blocking call: run it off the event loop) and cache the answer."""
        found = self.lookup(kind, secret)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + CACHE_S, found)
        return found

    def forget(self) -> None:
        """Drop every cached identity (after a change of users, tokens or roles made here)."""
        with self._lock:
            self._cache.clear()

    def too_many_failures(self, client: str) -> float:
        """Seconds the client must wait before trying again (0: it may try now)."""
        seen = self._failures.get(client)
        if seen is None:
            return 0.0
        now = time.monotonic()
        while seen and seen[0] < now - _FAILURES_WINDOW_S:
            seen.popleft()
        return seen[0] + _FAILURES_WINDOW_S - now if len(seen) >= _FAILURES_MAX else 0.0

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failures) >= _CACHE_MAX:
                self._failures.clear()
            self._failures.setdefault(client, collections.deque(maxlen=_FAILURES_MAX)).append(
                time.monotonic()
            )


def parse_credential(
    headers: Iterable[tuple[bytes, bytes]], *, session_cookie: str = ""
) -> tuple[str, str, str] | None:
    """A request's credential as (cache key, kind, secret), or None when it sends none. Kinds:
    "token", "jwt", "basic" ("user:password"), "session" (the cookie), "malformed"."""
    authorization = cookie = None
    for header, raw in headers:
        if header == b"authorization":
            authorization = raw.decode("latin-1")
        elif header == b"cookie":
            cookie = raw.decode("latin-1")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        kind = scheme.lower()
        if kind == "bearer":
            kind = "token" if value.startswith(TOKEN_PREFIX) else "jwt"
        elif kind == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ("", "malformed", "")
        else:
            return ("", "malformed", "")
        return (_key(kind, value), kind, value)
    if cookie:
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if session_cookie and name == session_cookie and value:
                return (_key("session", value), "session", value)
    return None


def _key(kind: str, secret: str) -> str:
    # The cache holds digests, not secrets: a heap dump or a debugger shows no password.
    return kind + ":" + hashlib.sha256(secret.encode()).hexdigest()


def store_lookup(store: SqlAuthStore, oidc: Callable[[str], Identity | None] | None = None) -> Lookup:
    """Credentials checked against the identity store (and the OIDC provider, for JWTs)."""

    def lookup(kind: str, secret: str) -> Identity | None:
        if kind == "token":
            return store.token_identity(secret)
        if kind == "jwt":
            return None if oidc is None else oidc(secret)
        if kind == "basic":
            user, _, password = secret.partition(":")
            return store.check_password(user, password)
        if kind == "session":
            return store.session_identity(secret)
        return None

    return lookup


def server_lookup(base_url: str) -> Lookup:
    """Credentials checked by asking ``loopline server`` who they are (for ``loopline serve`` when
    its tracking URI is a server: it has no database to look in)."""
    import httpx

    def lookup(kind: str, secret: str) -> Identity | None:
        if kind not in ("token", "jwt", "basic"):
            return None
        header = (
            f"Basic {base64.b64encode(secret.encode()).decode()}" if kind == "basic" else f"Bearer {secret}"
        )
        resp = httpx.get(f"{base_url.rstrip('/')}/api/2.0/loopline/auth/whoami",
                         headers={"Authorization": header}, timeout=10)  # fmt: skip
        if resp.status_code in (401, 403):
            return None
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return identity_from_json(body) if body.get("auth") else None

    return lookup
