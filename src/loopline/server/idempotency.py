"""Idempotent retries: a write sent with an ``Idempotency-Key`` runs once; its retries get its answer.

After the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe's API. For a POST, PUT,
PATCH or DELETE carrying the header, the key is claimed in ``idempotency_keys`` (scoped by
workspace) together with the request's method, path and fingerprint (BLAKE3 of query and body):

- a new key: the request runs; its answer (status, content type, body) is stored, then sent;
- the same key and request again: the stored answer, with ``Idempotency-Replayed: true``;
- the same key for another request: 422;
- the same key while the first request still runs: 409 with ``Retry-After`` (a retry of a call whose
  answer was lost may arrive before the call ends; Loopline's client retries it like a 503);
- a bad key (empty, longer than 255 characters, not visible ASCII): 400; a body over ``MAX_BODY``:
  413 (uploads by digest are idempotent by themselves and are sent without a key).

5xx and 429 answers are not stored, nor an exception: the claim is released and a retry runs
again. Claims expire after ``ttl_s`` (a day by default); expired rows are purged by range delete at
most every ``PURGE_EVERY_S`` per process, inside a claim's transaction. A claim is a lease: its
request renews it every quarter of ``lease_s`` while it runs (a long request keeps its claim), so one
whose server died mid-request is taken over by a retry ``lease_s`` (10 s by default) after its last
renewal, not held until it expires.

Pure ASGI, like ``versioning.py``: a request without the header costs a method check and one scan of
the headers (the hot logging routes are measured per request); one with it costs one INSERT (the
claim) and one UPDATE (the answer), each in its own short transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import blake3
import orjson
from sqlalchemy import Engine, bindparam, delete, select, update
from starlette.concurrency import run_in_threadpool

from loopline.errors import BackendUnavailable, InvalidInput, LooplineError
from loopline.metadata.engine import insert_for, write_transaction
from loopline.metadata.schema_idempotency import idempotency_keys as t
from loopline.protocol.http import WORKSPACE_HEADER

log = logging.getLogger("loopline.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEADER = b"idempotency-key"
_WORKSPACE = WORKSPACE_HEADER.lower().encode()
REPLAYED = (b"idempotency-replayed", b"true")
MAX_BODY = 4 << 20  # bytes of request, or of answer, kept per key: JSON calls, not uploads
LEASE_S = 10.0  # a claim not renewed for this long is presumed dead (its server was killed)
PURGE_EVERY_S = 600.0
RETRY_AFTER_S = 1
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY = re.compile(rb"[\x21-\x7e]{1,255}")  # visible ASCII, as Stripe's keys and the draft's UUIDs


def fingerprint(query: bytes, body: bytes) -> str:
    """What makes two requests the same request (with method and path): BLAKE3 of query and body."""
    h = blake3.blake3(len(query).to_bytes(8, "big"))
    h.update(query)
    h.update(body)
    return str(h.hexdigest())


def parse_key(raw: bytes) -> str | None:
    """The key of a header value (bare, or the draft's quoted sf-string), or None if invalid."""
    if len(raw) >= 2 and raw.startswith(b'"') and raw.endswith(b'"'):
        raw = raw[1:-1]
    return raw.decode("ascii") if _KEY.fullmatch(raw) else None


@dataclass(frozen=True)
class Record:
    """A key's row: the request it was first used for and, once answered, the answer."""

    method: str
    path: str
    fingerprint: str
    created_at: int
    status: int | None
    content_type: str | None
    body: bytes | None


class KeyStore:
    """The ``idempotency_keys`` rows: claim, finish, release (each in the request's workspace; the
    server's own, ``workspace``, when the request names none) and purge (every workspace's).

    The statements are built once: building and cache-keying a new one per call cost about twice
    the INSERT itself (SQLite: 470 µs of CPU per claim, 160 µs prebuilt)."""

    def __init__(self, engine: Engine, workspace: str, *, ttl_s: float, lease_s: float = LEASE_S) -> None:
        if ttl_s <= 0:
            raise InvalidInput(
                f"LOOPLINE_IDEMPOTENCY_TTL must be a positive number of seconds, not {ttl_s}.",
                hint="Leave it unset for a day (86400).",
            )
        if lease_s <= 0:
            raise InvalidInput(
                f"LOOPLINE_IDEMPOTENCY_LEASE must be a positive number of seconds, not {lease_s}.",
                hint=f"Leave it unset for {LEASE_S:g}.",
            )
        self.engine = engine
        self.workspace = workspace
        self.ttl_ms = int(ttl_s * 1000)
        self.lease_ms = int(min(lease_s, ttl_s) * 1000)
        self.renew_every_s = self.lease_ms / 4000  # three renewals may stall before a retry takes over
        self._next_purge = 0.0  # monotonic seconds; a race that purges twice is harmless
        request: dict[str, Any] = {
            c: bindparam(f"new_{c}") for c in ("method", "path", "fingerprint", "created_at")
        }
        mine = (t.c.workspace == bindparam("ws")) & (t.c.key == bindparam("k"))
        held = mine & (t.c.created_at == bindparam("token"))  # the row as its claimant made it
        self._insert = (
            insert_for(engine.dialect.name, t)
            .values(workspace=bindparam("ws"), key=bindparam("k"), **request)
            .on_conflict_do_nothing()
            .returning(t.c.key)  # says whether the row is new (psycopg's rowcount does not, here)
        )
        self._select = select(t).where(mine)
        self._take_over = update(t).where(held).values(**request, status=None, content_type=None, body=None)
        running = held & t.c.status.is_(None)
        self._renew = update(t).where(running).values(created_at=bindparam("new_created_at"))
        self._finish = (
            update(t)
            .where(held)
            .values(
                status=bindparam("new_status"), content_type=bindparam("new_type"), body=bindparam("new_body")
            )
        )
        self._release = delete(t).where(held)
        self._purge = delete(t).where(t.c.created_at < bindparam("cutoff"))

    def claim(self, ws: str, key: str, method: str, path: str, fp: str) -> tuple[int, Record | None]:
        """Claim ``key`` for this request: (the claim's token, None) if it is ours to run, else the
        existing row. The INSERT is atomic on the primary key, so concurrent claimants get one winner."""
        now = int(time.time() * 1000)
        args: dict[str, Any] = {"ws": ws, "k": key}
        args |= {"new_method": method, "new_path": path, "new_fingerprint": fp, "new_created_at": now}
        with write_transaction(self.engine) as conn:
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY_S
                conn.execute(self._purge, {"cutoff": now - self.ttl_ms})
            for _ in range(3):  # a row released between our INSERT and SELECT (PostgreSQL): claim again
                if conn.execute(self._insert, args).first() is not None:
                    return now, None
                row = conn.execute(self._select, args).first()
                if row is None:
                    continue
                found = Record(
                    row.method,
                    row.path,
                    row.fingerprint,
                    row.created_at,
                    row.status,
                    row.content_type,
                    row.body,
                )
                expired = found.created_at < now - self.ttl_ms
                abandoned = found.status is None and found.created_at < now - self.lease_ms
                if not (expired or abandoned):
                    return now, found
                # Take the row over only as it was read: of two retries, one takes it.
                took = conn.execute(self._take_over, args | {"token": found.created_at})
                return (now, None) if took.rowcount == 1 else (now, found)
        raise AssertionError("unreachable: a key claimed and released three times within one transaction")

    def renew(self, ws: str, key: str, token: int) -> int | None:
        """Move the claim ``token`` forward to now: its new token, or None if it is ours no more (a
        retry took it over while this server stalled)."""
        new = max(int(time.time() * 1000), token + 1)
        with write_transaction(self.engine) as conn:
            done = conn.execute(self._renew, {"ws": ws, "k": key, "token": token, "new_created_at": new})
            return new if done.rowcount == 1 else None

    def finish(
        self, ws: str, key: str, token: int, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Store the answer of the request that holds the claim ``token``."""
        args = {"ws": ws, "k": key, "token": token}
        with write_transaction(self.engine) as conn:
            conn.execute(
                self._finish, args | {"new_status": status, "new_type": content_type, "new_body": body}
            )

    def release(self, ws: str, key: str, token: int) -> None:
        """Forget the claim ``token``: its request failed in a way a retry should run again."""
        with write_transaction(self.engine) as conn:
            conn.execute(self._release, {"ws": ws, "k": key, "token": token})


async def _error(
    send: Send, status: int, code: str, message: str, hint: str, *extra: tuple[bytes, bytes]
) -> None:
    """Loopline's JSON error body, sent from here: the app's error handlers lie inside this middleware."""
    body = orjson.dumps({"error_code": code, "message": message, "hint": hint})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


class _Lease:
    """A claim kept alive while its request runs: renewed every ``renew_every_s`` from the event loop,
    until ``end`` gives the token it holds then."""

    def __init__(self, keys: KeyStore, ws: str, key: str, token: int) -> None:
        self.keys, self.ws, self.key, self.token = keys, ws, key, token
        self._over = asyncio.Event()
        self._task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._over.wait(), self.keys.renew_every_s)
                return
            try:
                token = await run_in_threadpool(self.keys.renew, self.ws, self.key, self.token)
            except Exception as e:  # the database is out for now: the next renewal tries again
                log.warning("could not renew Idempotency-Key %r: %s", self.key, e)
                continue
            if token is None:
                return
            self.token = token

    async def end(self) -> int:
        """Stop renewing (a renewal under way finishes first): the claim's token now."""
        self._over.set()
        await self._task
        return self.token

    def cancel(self) -> None:
        self._over.set()
        self._task.cancel()


class _Gone(Exception):
    """The client disconnected while sending its body."""


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole request body, or None when it exceeds ``MAX_BODY``."""
    length = _header(scope, b"content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class IdempotencyMiddleware:
    """Runs a keyed write once per (workspace, key) and replays its answer to retries."""

    def __init__(self, app: Any, *, keys: KeyStore) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        raw = _header(scope, HEADER)
        if raw is None:
            await self.app(scope, receive, send)
            return
        key = parse_key(raw)
        if key is None:
            await _error(
                send,
                400,
                "BAD_REQUEST",
                "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
                'Send a fresh UUID per call, e.g. Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324".',
            )
            return
        try:
            body = await _read_body(scope, receive)
        except _Gone:
            return
        if body is None:
            await _error(
                send,
                413,
                "BAD_REQUEST",
                f"A body sent with an Idempotency-Key may hold at most {MAX_BODY >> 20} MiB; "
                "this one holds more.",
                "Send uploads without the header: blob and artifact PUTs are idempotent by themselves.",
            )
            return
        method, path = scope["method"], scope["path"]
        fp = fingerprint(scope.get("query_string", b""), body)
        try:
            named = _header(scope, _WORKSPACE)  # the route checks the name itself
            ws = named.decode("latin-1") if named else self.keys.workspace
            token, found = await run_in_threadpool(self.keys.claim, ws, key, method, path, fp)
        except LooplineError as e:  # the database is out (503): the client retries with the same key
            retry = [(b"retry-after", str(RETRY_AFTER_S).encode())] if e.status_code == 503 else []
            await _error(send, e.status_code, e.error_code, e.message, e.hint, *retry)
            return
        if found is None:
            await self._run(scope, body, receive, send, ws, key, token)
        elif (found.method, found.path, found.fingerprint) != (method, path, fp):
            same_route = (found.method, found.path) == (method, path)
            first = "with another body or query" if same_route else f"for {found.method} {found.path}"
            await _error(
                send,
                422,
                "IDEMPOTENCY_KEY_REUSED",
                f"This Idempotency-Key was first used {first}: a key names one request.",
                "Send a fresh key (a new UUID) with each new call; reuse a key only to retry the same call.",
            )
        elif found.status is None:
            await _error(
                send,
                409,
                "IDEMPOTENCY_KEY_IN_USE",
                "A request with this Idempotency-Key is still running.",
                f"Retry in {RETRY_AFTER_S} s: the retry gets the first request's answer.",
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            )
        else:
            stored = found.body or b""
            headers = [(b"content-length", str(len(stored)).encode()), REPLAYED]
            if found.content_type:
                headers.append((b"content-type", found.content_type.encode("latin-1")))
            await send({"type": "http.response.start", "status": found.status, "headers": headers})
            await send({"type": "http.response.body", "body": stored})

    async def _run(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, ws: str, key: str, token: int
    ) -> None:
        """Run the request with its buffered body; store its answer before the client sees it, so that
        a retry arriving after the answer was lost finds it."""
        given = False

        async def receive_body() -> Message:
            nonlocal given
            if given:
                return await receive()  # the app waits for the disconnect: pass it on
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        lease = _Lease(self.keys, ws, key, token)
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        state = "buffering"  # → "passing" (answer too big to keep) or "done"

        async def capture(message: Message) -> None:
            nonlocal start, size, state
            if state == "passing":
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if more and size <= MAX_BODY:
                return
            status = int(start["status"])
            token = await lease.end()
            if more or status >= 500 or status == 429:  # too big to keep, or "try again": forget the key
                await self._forget(ws, key, token)
            else:
                await self._keep(ws, key, token, start, b"".join(chunks))
            state = "passing" if more else "done"
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": more})

        try:
            await self.app(scope, receive_body, capture)
        finally:
            try:
                if state == "buffering":  # the app answered nothing (it raised, or the client left)
                    await self._forget(ws, key, await lease.end())  # a retry runs again
            finally:
                lease.cancel()  # a no-op once ended: no renewal outlives its request

    async def _keep(self, ws: str, key: str, token: int, start: Message, body: bytes) -> None:
        content_type = next(
            (v.decode("latin-1") for k, v in start.get("headers", ()) if k == b"content-type"), None
        )
        try:
            await run_in_threadpool(
                self.keys.finish, ws, key, token, int(start["status"]), content_type, body
            )
        # The answer still goes out; a retry (its answer lost too) meets the claim until its lease ends.
        except BackendUnavailable as e:  # the database is out: one line, not a traceback
            log.warning("could not store the answer for Idempotency-Key %r: %s", key, e.message)
        except Exception:
            log.exception("could not store the answer for Idempotency-Key %r", key)

    async def _forget(self, ws: str, key: str, token: int) -> None:
        try:
            await run_in_threadpool(self.keys.release, ws, key, token)
        except BackendUnavailable as e:  # as above: the claim then blocks retries until its lease ends
            log.warning("could not release Idempotency-Key %r: %s", key, e.message)
        except Exception:
            log.exception("could not release Idempotency-Key %r", key)
