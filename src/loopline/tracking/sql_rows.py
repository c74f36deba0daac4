"""The tracking store's SQL on the logging hot path, and the rows it reads and writes.

Statements are built once at import (building one cost as much as running it); the new-run write and
the run and experiment reads go through the driver's cursor (``metadata.engine.driver_execute``).
``sql_store`` and ``sql_experiments`` use these.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, tuple_, update

from loopline.errors import Conflict, InvalidInput
from loopline.metadata import schema as t
from loopline.metadata.engine import driver_execute, driver_rows, insert_for, insert_sql, param_mark
from loopline.tracking.types import LifecycleStage, Metric, RunInfo, RunStatus, ViewType
from loopline.tracking.validation import db_value


def views(view_type: ViewType) -> tuple[str, ...]:
    return {
        "ACTIVE_ONLY": (LifecycleStage.ACTIVE.value,),
        "DELETED_ONLY": (LifecycleStage.DELETED.value,),
        "ALL": (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value),
    }[view_type]


# Statements on the logging hot path, built once (building them cost as much as running them).
SELECT_RUN_BY_ID = select(t.runs).where(t.runs.c.run_uuid == bindparam("run_id"))
SELECT_EXPERIMENT_BY_NAME = select(t.experiments).where(
    t.experiments.c.workspace == bindparam("workspace"), t.experiments.c.name == bindparam("name")
)
SELECT_EXPERIMENT_TAGS = select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
    t.experiment_tags.c.experiment_id == bindparam("experiment_id")
)
SELECT_RUN_LINKS = (
    select(t.run_logged_models.c.model_id, t.run_logged_models.c.direction, t.run_logged_models.c.step)
    .where(t.run_logged_models.c.run_uuid == bindparam("run_id"))
    .order_by(t.run_logged_models.c.model_id)
)
_d, _ri = t.datasets.c, t.run_inputs.c
SELECT_RUN_INPUTS = (
    select(_ri.run_uuid, _ri.tags, _d.name, _d.digest, _d.source_type, _d.source, _d.schema, _d.profile)
    .join(t.datasets, _d.dataset_uuid == _ri.dataset_uuid)
    .where(_ri.run_uuid.in_(bindparam("run_ids", expanding=True)))
)


@functools.cache
def update_run_stmt(columns: tuple[str, ...]) -> Any:
    """``UPDATE runs SET <columns> WHERE run_uuid = :run_id``, built once per set of columns."""
    return (
        update(t.runs)
        .where(t.runs.c.run_uuid == bindparam("run_id"))
        .values({c: bindparam(f"new_{c}") for c in columns})
    )


def _row_reader(table: Table, *keys: str) -> tuple[Any, dict[str, str]]:
    """A named-tuple type for ``table``'s rows and its ``SELECT … WHERE <keys>`` in each paramstyle."""
    names = [c.name for c in table.c]
    where = " AND ".join(f"{k} = {{m}}" for k in keys)
    sql = f"SELECT {', '.join(names)} FROM {table.name} WHERE {where}"
    return collections.namedtuple(f"{table.name}_row", names), {m: sql.format(m=m) for m in ("?", "%s")}


# The run and experiment rows every logging call reads first, through the driver (driver_rows): the
# same columns SQLAlchemy's select(t.runs) returns, as attributes (row.lifecycle_stage …).
_RunRow, _SELECT_RUN = _row_reader(t.runs, "run_uuid", "workspace")
_ExperimentRow, _SELECT_EXPERIMENT = _row_reader(t.experiments, "experiment_id", "workspace")


def select_run(conn: Connection, run_id: str, workspace: str) -> Any | None:
    rows = driver_rows(conn, _SELECT_RUN[param_mark(conn)], (run_id, workspace))
    return _RunRow(*rows[0]) if rows else None


def select_experiment(conn: Connection, experiment_id: int, workspace: str) -> Any | None:
    rows = driver_rows(conn, _SELECT_EXPERIMENT[param_mark(conn)], (experiment_id, workspace))
    return _ExperimentRow(*rows[0]) if rows else None


FINISH_RUN = (
    update(t.runs)
    .where(t.runs.c.run_uuid == bindparam("run_id"))
    .values(status=bindparam("status"), end_time=bindparam("end_time"))
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
    driver_execute(conn, insert_sql("runs", tuple(values), mark), tuple(values.values()))
    kv = ("run_uuid", "key", "value")
    for table, pairs in (("tags", tags), ("params", params)):
        if pairs:
            rows_kv = [(run_id, k, v) for k, v in pairs.items()]
            driver_execute(conn, insert_sql(table, kv, mark), rows_kv, many=True)
    if metrics:
        rows, latest = metric_rows(run_id, metrics)
        sql = insert_sql("metrics", METRIC_COLUMNS, mark) + " ON CONFLICT DO NOTHING"
        driver_execute(conn, sql, rows, many=True)
        driver_execute(conn, insert_sql("latest_metrics", METRIC_COLUMNS, mark), latest, many=True)


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
