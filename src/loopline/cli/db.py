"""``loopline db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    store_uri: Annotated[
        str | None,
        typer.Argument(
            envvar="LOOPLINE_TRACKING_URI",
            help="Database URI. Default: ./.loopline/loopline.db",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Apply pending schema migrations. Loopline also does this when it opens a store; run it by hand
    to upgrade a shared PostgreSQL database at a time of your choosing."""
    from loopline.config import Settings
    from loopline.metadata.engine import HEAD_REVISION, create_store_engine

    settings = Settings.from_env(tracking_uri=store_uri)
    create_store_engine(settings.tracking_uri).dispose()
    typer.echo(f"{settings.tracking_uri} is at schema revision {HEAD_REVISION}.")
