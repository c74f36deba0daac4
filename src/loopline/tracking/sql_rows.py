"""The tracking store's SQL on the logging hot path, and the rows it reads and writes.

Statements are built once at import (building one cost as much as running it) and the new-run write
goes through plain DB-API statements; ``sql_store`` and ``sql_experiments`` use these.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from loopline.errors import Conflict, InvalidInput
from loopline.metadata import schema as t
from loopline.metadata.engine import insert_for
from loopline.tracking.types import LifecycleStage, Metric, RunInfo, RunStatus, ViewType
from loopline.tracking.validation import db_value


def views(view_type: ViewType) -> tuple[str, ...]:
    return {
        "ACTIVE_ONLY": (LifecycleStage.ACTIVE.value,),
        "DELETED_ONLY": (LifecycleStage.DELETED.value,),
        "ALL": (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value),
    }[view_type]


# Statements on the logging hot path, built once (building them cost as much as running them).
SELECT_RUN = select(t.runs).where(
    t.runs.c.run_uuid == bindparam("run_id"), t.runs.c.workspace == bindparam("workspace")
)
SELECT_RUN_BY_ID = select(t.runs).where(t.runs.c.run_uuid == bindparam("run_id"))
SELECT_EXPERIMENT = select(t.experiments).where(
    t.experiments.c.experiment_id == bindparam("experiment_id"),
    t.experiments.c.workspace == bindparam("workspace"),
)
FINISH_RUN = (
    update(t.runs)
    .where(t.runs.c.run_uuid == bindparam("run_id"))
    .values(status=bindparam("status"), end_time=bindparam("end_time"))
)
SELECT_PARAMS = select(t.params.c.key, t.params.c.value).where(
    t.params.c.run_uuid == bindparam("run_id"), t.params.c.key.in_(bindparam("keys", expanding=True))
)
METRIC_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")


@functools.cache
def upsert_tags_stmt(dialect_name: str) -> Any:
    """Set run tags (a repeated key overwrites). Built once per dialect: building it cost half a write."""
    ins = insert_for(dialect_name, t.tags)
    return ins.on_conflict_do_update(index_elements=["run_uuid", "key"], set_={"value": ins.excluded.value})


@functools.cache
def upsert_latest_stmt(dialect_name: str) -> Any:
    """Keep the point with the highest (step, timestamp, value) per run and key, as MLflow does."""
    ins = insert_for(dialect_name, t.latest_metrics)
    lm = t.latest_metrics.c
    newer = tuple_(lm.step, lm.timestamp, lm.value) <= tuple_(
        ins.excluded.step, ins.excluded.timestamp, ins.excluded.value
    )
    return ins.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={c: ins.excluded[c] for c in ("value", "timestamp", "step", "is_nan")},
        where=newer,
    )


MetricRow = tuple[str, str, float, int, int, bool]


def metric_rows(run_id: str, metrics: Sequence[Metric]) -> tuple[list[MetricRow], list[MetricRow]]:
    """Rows for ``metrics`` and, per key, the latest point (highest step, timestamp, value)."""
    rows: list[MetricRow] = []
    latest: dict[str, MetricRow] = {}
    for m in metrics:
        value, is_nan = db_value(m.value)
        row = (run_id, m.key, value, m.timestamp, m.step, is_nan)
        rows.append(row)
        cur = latest.get(m.key)
        if cur is None or (m.step, m.timestamp, value) >= (cur[4], cur[3], cur[2]):
            latest[m.key] = row
    return rows, list(latest.values())


def param_mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def insert_new_run(
    conn: Connection,
    values: Mapping[str, object],
    tags: Mapping[str, str],
    params: Mapping[str, str],
    metrics: Sequence[Metric],
) -> None:
    """Write a new run in its final form (status, end time, latest metrics) with plain DB-API
    statements: SQLAlchemy's per-statement work cost as much as SQLite's own on this path, and a
    new run has no rows to compare with or upsert over."""
    mark, run_id = param_mark(conn), str(values["run_uuid"])
    conn.exec_driver_sql(insert_sql("runs", tuple(values), mark), tuple(values.values()))
    kv = ("run_uuid", "key", "value")
    conn.exec_driver_sql(insert_sql("tags", kv, mark), [(run_id, k, v) for k, v in tags.items()])
    if params:
        conn.exec_driver_sql(insert_sql("params", kv, mark), [(run_id, k, v) for k, v in params.items()])
    if metrics:
        rows, latest = metric_rows(run_id, metrics)
        conn.exec_driver_sql(insert_sql("metrics", METRIC_COLUMNS, mark) + " ON CONFLICT DO NOTHING", rows)
        conn.exec_driver_sql(insert_sql("latest_metrics", METRIC_COLUMNS, mark), latest)


def same_creation(row: Any, values: Mapping[str, object]) -> bool:
    """Whether run ``row`` is the one ``values`` describe (a retried create), not another run."""
    return all(
        getattr(row, k) == values[k] for k in ("workspace", "experiment_id", "name", "user_id", "start_time")
    )


def run_id_taken(run_id: str) -> Conflict:
    return Conflict(
        f"Run ID {run_id} is already in use by another run.",
        hint="Let the store choose the ID, or use a fresh uuid.uuid4().hex.",
    )


def latest_points(metrics: Sequence[Metric]) -> tuple[Metric, ...]:
    """Each key's latest point, as ``latest_metrics`` keeps it: highest (step, timestamp, value)."""
    latest: dict[str, Metric] = {}
    for m in metrics:
        cur = latest.get(m.key)
        if cur is None or (m.step, m.timestamp, m.value) >= (cur.step, cur.timestamp, cur.value):
            latest[m.key] = m
    return tuple(latest.values())


def run_info(row: Any) -> RunInfo:
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
    )


def history_token(token: str) -> tuple[int, int, float, bool]:
    try:
        ts, step, value, is_nan = json.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception:
        raise InvalidInput(
            f"Invalid page token {token!r}.", hint="Pass back next_page_token as given."
        ) from None
    ints_ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (ts, step))
    if (
        not ints_ok
        or not isinstance(value, int | float)
        or isinstance(value, bool)
        or not isinstance(is_nan, bool)
    ):
        raise InvalidInput(f"Invalid page token {token!r}.", hint="Pass back next_page_token as given.")
    return ts, step, float(value), is_nan
