"""The database goes away under a running controller and comes back: the controller's ticks fail
and are retried (nothing is half-done: each step is one transaction), and it resumes the rollout
where it was. PostgreSQL is reached through a TCP proxy inside the test, which the test cuts (every
connection closed, new ones refused) and restores; the shared PostgreSQL itself is never stopped."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from support import free_port

from automation.test_controller import Loop, S, _wait, make_loop
from loopline.automation import events as ev
from loopline.automation.controller import Controller
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context


class Proxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until ``cut()``; ``restore()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self.listener is not None
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.sockets.clear()


@pytest.fixture
def pg_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_uri: str
) -> Iterator[tuple[Loop, Proxy]]:
    loop = make_loop(tmp_path, monkeypatch, postgres_uri)
    parts = urlsplit(postgres_uri)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield loop, proxy
    with contextlib.suppress(OSError):
        proxy.cut()


def test_the_controller_waits_out_a_database_outage_and_resumes(pg_loop: tuple[Loop, Proxy]) -> None:
    loop, proxy = pg_loop
    parts = urlsplit(loop.context.settings.tracking_uri)
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    settings = Settings.from_env(
        {}, tracking_uri=via_proxy, artifacts_uri=loop.context.settings.artifacts_uri
    )
    ctl = Controller(Context(settings), lease_s=60)
    stop = threading.Event()
    runner = threading.Thread(target=ctl.run, args=(stop, 0.1), daemon=True)
    runner.start()
    try:
        loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
        r = _wait(loop, lambda r: r.state is S.ROLLING and r.step == 0)
        proxy.cut()
        loop.traffic("2", 12, role="shadow")  # the step could now move on, but the database is gone
        time.sleep(1.5)
        assert loop.store.get_rollout(r.id).step == 0  # nothing moved while it was out of reach
        proxy.restore()
        _wait(loop, lambda r: r.step == 1, timeout=60)  # it came back and went on
        loop.traffic("2", 12)
        done = _wait(loop, lambda r: r.state.terminal, timeout=60)
    finally:
        stop.set()
        runner.join(30)
    assert done.state is S.PROMOTED
    assert loop.actions(done).count(ev.ROLLOUT_STEP) == 2  # each step acted once
