"""Options and helpers shared by the command modules."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.config import Settings

if TYPE_CHECKING:
    from loopline.tracking.client import Client

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        "-t",
        envvar="LOOPLINE_TRACKING_URI",
        help="Database URI, folder or http:// server. Default: ./.loopline",
        show_default=False,
    ),
]


ArtifactsUri = Annotated[
    str | None,
    typer.Option(
        "--artifacts-uri",
        envvar="LOOPLINE_ARTIFACTS_URI",
        help="Artifact root. Default: ./.loopline/artifacts",
        show_default=False,
    ),
]


class Format(StrEnum):
    """What a listing prints: a table for people, JSON for scripts."""

    table = "table"
    json = "json"


# `-f` is --format in every command; a filter is spelled --filter (or -F).
FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="table for people, json for scripts (one document).")
]


def print_json(value: object) -> None:
    """One JSON document on stdout (nothing else is printed there with --format json)."""
    import json

    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def settings(tracking_uri: str | None, *, create: bool = False, **overrides: str | None) -> Settings:
    """The settings a command works with. Only commands that make something new (``experiments
    create``, ``data add``, ``pipeline run``…) pass ``create=True`` and may create the store; for the
    others a store that does not exist is an error naming it (and the closest existing path)."""
    return Settings.from_env(None, tracking_uri=tracking_uri, create_store=create, **overrides)


def client(tracking_uri: str | None, *, create: bool = False) -> Client:
    from loopline.tracking import Client

    return Client(settings(tracking_uri, create=create))


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "-"
    s = (end - start) / 1000
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}min"


def fmt_value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def require_free_port(host: str, port: int) -> None:
    """Fail with a message, before anything starts, when ``host:port`` cannot be listened on."""
    import errno
    import socket

    from loopline.errors import InvalidInput

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InvalidInput(f"Cannot listen on {host!r}: {e.strerror}.", hint="Check --host.") from e
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise InvalidInput(
                    f"Port {port} on {host} is already in use.",
                    hint="Stop the process that listens there, or pick another port with --port.",
                ) from e
            raise InvalidInput(
                f"Cannot listen on {host}:{port}: {e.strerror}.", hint="Check --host and --port."
            ) from e
