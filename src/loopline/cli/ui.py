"""``loopline ui``: the web UI on this machine's embedded store, opened in a browser."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer

from loopline.cli.common import ArtifactsUri


def ui(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1 only).")] = 5000,
    store_uri: Annotated[
        str | None,
        typer.Option(
            "--store-uri",
            envvar="LOOPLINE_STORE_URI",
            help="Metadata database. Default: the embedded store, ./.loopline/loopline.db",
            show_default=False,
        ),
    ] = None,
    artifacts_uri: ArtifactsUri = None,
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the UI in the default web browser.")
    ] = True,
) -> None:
    """Start a server on the embedded store, on 127.0.0.1 only, and open its web UI in a browser.

    Example: [bold]loopline ui --port 5001[/]  (Ctrl+C stops it)
    """
    from loopline.cli.server import server

    url = f"http://127.0.0.1:{port}/ui/"
    if browser:  # once the server answers: a browser opened earlier would show an error page
        threading.Thread(target=_open_when_up, args=(url,), name="loopline-ui-browser", daemon=True).start()
    typer.echo(f"Loopline UI on {url}  (Ctrl+C stops it)")
    server(host="127.0.0.1", port=port, store_uri=store_uri, artifacts_uri=artifacts_uri)


def _open_when_up(url: str, timeout: float = 60.0) -> None:
    import webbrowser

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url.replace("/ui/", "/health"), timeout=1.0).status_code == 200:
                webbrowser.open(url)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
