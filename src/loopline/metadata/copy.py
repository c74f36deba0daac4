"""Copy one metadata store into another, ids and all: how a team moves its embedded ``./.loopline``
(SQLite) onto a shared server's PostgreSQL.

Both stores are brought to the same schema revision first. The destination must be empty: copying
keeps every id (run ids, experiment ids, model and dataset ids), so lineage edges, events and
artifact URIs stay valid as they are, and merging two histories could not keep that promise. Rows go
table by table in foreign-key order, in batches, in one transaction: a failed copy leaves the
destination as empty as it was. PostgreSQL's id sequences are then moved past the copied ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from loopline.errors import Conflict
from loopline.metadata.engine import write_transaction

BATCH = 5_000
Progress = Callable[[str, int], None]  # (table, rows just copied)


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _tables(engine: sa.Engine) -> list[sa.Table]:
    meta = sa.MetaData()
    meta.reflect(engine)
    return [t for t in meta.sorted_tables if t.name != "alembic_version"]


def count_rows(engine: sa.Engine) -> dict[str, int]:
    """Rows per table (what a copy will move, for a progress bar's total)."""
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in _tables(engine)
        }


def _batches(conn: sa.Connection, table: sa.Table, columns: list[str]) -> Iterator[list[dict[str, Any]]]:
    result = conn.execution_options(stream_results=True).execute(sa.select(*(table.c[c] for c in columns)))
    while rows := result.fetchmany(BATCH):
        yield [dict(r._mapping) for r in rows]


def copy_store(source: sa.Engine, dest: sa.Engine, progress: Progress | None = None) -> CopyReport:
    """Copy every row of ``source`` into the empty ``dest`` (both at the same schema revision)."""
    from loopline.metadata.engine import current_revision

    with source.connect() as s, dest.connect() as d:
        src_rev, dst_rev = current_revision(s), current_revision(d)
    if src_rev != dst_rev:
        raise Conflict(
            f"The stores are at different schema revisions ({src_rev} and {dst_rev}).",
            hint="Open both with this version of Loopline first (loopline db upgrade URI).",
        )
    dest_tables = {t.name: t for t in _tables(dest)}
    nonempty = {name: n for name, n in count_rows(dest).items() if n}
    if nonempty:
        raise Conflict(
            f"The destination already holds data ({', '.join(f'{k}: {v}' for k, v in nonempty.items())}).",
            hint="Copy into a new, empty database: ids are kept, so two histories cannot be merged.",
        )
    rows: dict[str, int] = {}
    with source.connect() as src, write_transaction(dest) as dst:
        for table in _tables(source):
            target = dest_tables.get(table.name)
            if target is None:
                continue
            columns = [c.name for c in table.columns if c.name in target.c]
            rows[table.name] = 0
            for batch in _batches(src, table, columns):
                dst.execute(target.insert(), batch)
                rows[table.name] += len(batch)
                if progress is not None:
                    progress(table.name, len(batch))
        if dest.dialect.name == "postgresql":
            _advance_sequences(dst, dest_tables.values())
    return CopyReport(rows)


def _advance_sequences(conn: sa.Connection, tables: Any) -> None:
    """Rows were inserted with their ids: start each id sequence after the largest one copied."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        for column in table.primary_key.columns:
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if seq:
                largest = f"SELECT MAX({quote(column.name)}) FROM {quote(table.name)}"
                restart = sa.text(f"SELECT setval(:seq, COALESCE(({largest}), 0) + 1, false)")
                conn.execute(restart, {"seq": seq})
