"""A TCP proxy in front of a real server that records each request and can lose answers.

The first ``lose`` requests whose path contains ``lose_on`` reach the server, but their client sees
the connection closed without an answer, as after a timeout or a dropped link: with ``early`` as
soon as the request has gone upstream (the server is still working on it), otherwise once the
server's answer has begun (the work is done). Clients do not pipeline requests on a connection, so
the answer that follows a lost request is that request's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Proxy:
    upstream: tuple[str, int]
    lose_on: str = ""
    lose: int = 0
    early: bool = False
    seen: list[Seen] = field(default_factory=list)
    lost: int = 0

    def start(self) -> str:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def stop(self) -> None:
        self._listener.close()

    def paths(self, part: str) -> list[Seen]:
        """The requests seen whose path contains ``part``."""
        return [s for s in self.seen if part in s.path]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        losing = threading.Event()  # set: the answer now due is dropped, and the connection with it
        threading.Thread(target=self._answers, args=(upstream, client, losing), daemon=True).start()
        buf = b""
        with contextlib.suppress(OSError):
            while data := client.recv(1 << 16):
                buf, requests = self._record(buf + data)
                lose = any(self.lose_on in r.path for r in requests) and self.lost < self.lose
                if lose:  # decided before the request goes upstream: its answer cannot slip through
                    self.lost += 1
                    losing.set()
                upstream.sendall(data)
                if lose and self.early:
                    break
        _close(client)
        if not losing.is_set():
            _close(upstream)  # else the answers' thread waits for the answer, then closes it

    def _answers(self, upstream: socket.socket, client: socket.socket, losing: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(1 << 16):
                if losing.is_set():  # the answer exists on the server; the client never gets it
                    break
                client.sendall(data)
        _close(client)
        _close(upstream)

    def _record(self, buf: bytes) -> tuple[bytes, list[Seen]]:
        """Note each whole request in ``buf``: what is left of an unfinished one, and those noted."""
        noted: list[Seen] = []
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines = buf[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
            assert "chunked" not in headers.get("transfer-encoding", ""), "chunked bodies are not parsed here"
            length = int(headers.get("content-length", "0"))
            if len(buf) < end + 4 + length:
                break
            method, path, _ = lines[0].split(" ", 2)
            noted.append(Seen(method, path, headers))
            buf = buf[end + 4 + length :]
        self.seen += noted
        return buf, noted


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextlib.contextmanager
def proxy_to(
    url: str, *, lose_on: str = "", lose: int = 0, early: bool = False
) -> Iterator[tuple[str, Proxy]]:
    """A proxy to the server at ``url``: yields the proxy's URL and the proxy."""
    host, port = url.removeprefix("http://").split(":")
    proxy = Proxy((host, int(port)), lose_on=lose_on, lose=lose, early=early)
    try:
        yield proxy.start(), proxy
    finally:
        proxy.stop()
