"""What every SQL store shares: an engine, a workspace, an actor, and one-transaction writes."""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Self

from sqlalchemy import Connection, Engine, RowMapping, TextClause, text

from loopline.errors import InvalidInput
from loopline.metadata.engine import insert_for, write_transaction
from loopline.metadata.lineage import add_edge, append_event

IN_CHUNK = 500  # ids per IN (...) list: well under every backend's bound-parameter limit


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception:
        raise InvalidInput(
            f"Invalid page token {token!r}.", hint="Pass back next_page_token as given."
        ) from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**62:
        raise InvalidInput(f"Invalid page token {token!r}.")
    return offset


_text: Callable[[str], TextClause] = functools.cache(text)  # each SQL text is compiled once


def text_runner(conn: Connection) -> Callable[[str, Mapping[str, object]], Sequence[RowMapping]]:
    """Runs plain SQL with named parameters on ``conn`` and returns rows by column name: how a
    statement written once as text (for a ``sqlite3`` path too) runs through SQLAlchemy."""

    def run(sql: str, params: Mapping[str, object]) -> Sequence[RowMapping]:
        result = conn.execute(_text(sql), params)
        return result.mappings().all() if result.returns_rows else ()

    return run


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i : i + IN_CHUNK]


class SqlStore:
    """Base of the SQL stores: scoped to one workspace and acting as one actor."""

    def __init__(self, engine: Engine, *, workspace: str = "default", actor: str = "unknown") -> None:
        self.engine = engine
        self.workspace = workspace
        self.actor = actor

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> Self:
        """The same store seen by another workspace or actor (shares the engine)."""
        clone = copy.copy(self)
        clone.workspace = workspace or self.workspace
        clone.actor = actor or self.actor
        return clone

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine)

    @staticmethod
    def _insert(conn: Connection, table: Any) -> Any:
        """An INSERT that supports ``on_conflict_*`` on both dialects."""
        return insert_for(conn.dialect.name, table)

    def _event(self, conn: Connection, action: str, uri: str, **payload: object) -> None:
        append_event(conn, self.workspace, self.actor, action, uri, payload)

    def _edge(
        self, conn: Connection, from_uri: str, to_uri: str, relation: str, *, external: bool = False
    ) -> None:
        add_edge(conn, self.workspace, from_uri, to_uri, relation, external=external)
