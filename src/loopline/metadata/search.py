"""Filter and order clauses turned into SQL.

Metric filters and ordering read ``latest_metrics`` (one row per run and key, indexed by
key and value), never the history table. Runs that lack an ordering key sort last, NaN just
before them, in both directions, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, not_, select

from loopline.errors import InvalidInput
from loopline.metadata import schema as t
from loopline.metadata.filter import (
    EXPERIMENT_ATTRIBUTES,
    NUMERIC_OPS,
    Clause,
    OrderBy,
    parse_filter,
    parse_order_by,
)

_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    "LIKE": lambda c, v: c.like(v),
    "ILIKE": lambda c, v: func.lower(c).like(func.lower(v)),
    "IN": lambda c, v: c.in_(v),
    "NOT IN": lambda c, v: c.not_in(v),
}


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    return _OPS[op](column, value)


def _attribute_column(key: str) -> Any:
    r = t.runs.c
    return {
        "run_id": r.run_uuid,
        "run_name": r.name,
        "status": r.status,
        "user_id": r.user_id,
        "artifact_uri": r.artifact_uri,
        "lifecycle_stage": r.lifecycle_stage,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "duration": r.end_time - r.start_time,
    }[key]


def _key_value_condition(
    table: Any, clause: Clause, extra: ColumnElement[bool] | None = None
) -> ColumnElement[bool]:
    """A condition on a (run_uuid, key, value) table; IS NULL means 'the key is absent'.

    Comparisons are ``run_uuid IN (…)`` rather than correlated EXISTS: the subquery walks the
    (key, value) index once instead of probing it for every run (50 ms instead of 230 ms for a
    selective metric filter over 100,000 runs on SQLite).
    """
    if clause.op in ("IS NULL", "IS NOT NULL"):
        present = exists().where(table.c.run_uuid == t.runs.c.run_uuid, table.c.key == clause.key)
        return not_(present) if clause.op == "IS NULL" else present
    where = [table.c.key == clause.key, compare(table.c.value, clause.op, clause.value)]
    if extra is not None:
        where.append(extra)
    return t.runs.c.run_uuid.in_(select(table.c.run_uuid).where(*where))


def _condition(clause: Clause) -> ColumnElement[bool]:
    if clause.kind == "metric":
        return _key_value_condition(t.latest_metrics, clause, t.latest_metrics.c.is_nan.is_(False))
    if clause.kind == "param":
        return _key_value_condition(t.params, clause)
    if clause.kind == "tag":
        return _key_value_condition(t.tags, clause)
    if clause.kind == "dataset":
        d, ri = t.datasets.c, t.run_inputs.c
        column = {"name": d.name, "digest": d.digest, "context": ri.context}[clause.key]
        return exists().where(
            ri.run_uuid == t.runs.c.run_uuid,
            d.dataset_uuid == ri.dataset_uuid,
            compare(column, clause.op, clause.value),
        )
    column = _attribute_column(clause.key)
    if clause.op in ("IS NULL", "IS NOT NULL"):
        cond: ColumnElement[bool] = column.is_(None) if clause.op == "IS NULL" else column.is_not(None)
        return cond
    return compare(column, clause.op, clause.value)


class RunQuery:
    """One run search: a workspace, experiments, lifecycle stages, a filter and an order."""

    def __init__(
        self,
        workspace: str,
        experiment_ids: Sequence[str],
        stages: Sequence[str],
        filter_string: str | None,
        order_by: Sequence[str] | None,
    ) -> None:
        try:
            ids = [int(e) for e in experiment_ids]
        except (TypeError, ValueError):
            raise InvalidInput(f"Experiment IDs must be integers, got {list(experiment_ids)!r}.") from None
        r = t.runs.c
        self.where: list[ColumnElement[bool]] = [r.workspace == workspace, r.lifecycle_stage.in_(stages)]
        if ids:  # no IDs = search across every experiment of the workspace (MLflow #21387)
            self.where.append(r.experiment_id.in_(ids))
        self.clauses = parse_filter(filter_string)
        self.order = parse_order_by(order_by)

    def count(self) -> Select[Any]:
        where = self.where + [_condition(c) for c in self.clauses]
        return select(func.count()).select_from(t.runs).where(and_(*where))

    def select(self) -> Select[Any]:
        # An ordered metric that the filter compares with a number has a real value in every
        # matching run: join it once, filter on the join, and the database walks its
        # (key, value) index in order and stops at the page (5 ms instead of 300 ms for
        # filter + order over 100,000 runs on SQLite).
        first = self.order[0] if self.order else None
        driving = {
            c
            for c in self.clauses
            if first is not None
            and first.kind == "metric"
            and c.kind == "metric"
            and c.key == first.key
            and c.op in NUMERIC_OPS
        }
        where = self.where + [_condition(c) for c in self.clauses if c not in driving]
        q = select(t.runs)
        order: list[Any] = []
        for i, ob in enumerate(self.order):
            if i == 0 and driving:
                lm = t.latest_metrics.alias("o0")
                q = q.join(lm, and_(lm.c.run_uuid == t.runs.c.run_uuid, lm.c.key == ob.key))
                where += [lm.c.is_nan.is_(False)] + [compare(lm.c.value, c.op, c.value) for c in driving]
                order.append(lm.c.value.asc() if ob.ascending else lm.c.value.desc())
                continue
            q, keys = _order(q, ob, i)
            order += keys
        r = t.runs.c
        if not any(ob.kind == "attribute" and ob.key == "start_time" for ob in self.order):
            order.append(r.start_time.desc())
        order.append(r.run_uuid)
        return q.where(and_(*where)).order_by(*order)


def _order(q: Select[Any], ob: OrderBy, i: int) -> tuple[Select[Any], list[Any]]:
    """Outer-join what ``ob`` sorts by; runs without the key sort last, NaN just before them."""

    def direction(col: Any) -> Any:
        return col.asc() if ob.ascending else col.desc()

    if ob.kind == "attribute":
        # NULLS LAST, not a CASE before the column: the same order, and SQLite then walks the
        # (experiment_id, lifecycle_stage, start_time) index and stops at the page (0.1 ms instead
        # of 110 ms for the first page of 100,000 runs by start time).
        return q, [direction(_attribute_column(ob.key)).nulls_last()]
    if ob.kind == "dataset":
        raise InvalidInput("Runs cannot be ordered by dataset fields.")
    table = {"metric": t.latest_metrics, "param": t.params, "tag": t.tags}[ob.kind].alias(f"o{i}")
    q = q.outerjoin(table, and_(table.c.run_uuid == t.runs.c.run_uuid, table.c.key == ob.key))
    if ob.kind == "metric":
        rank = case((table.c.value.is_(None), 2), (table.c.is_nan.is_(True), 1), else_=0)
    else:
        rank = case((table.c.value.is_(None), 1), else_=0)
    return q, [rank, direction(table.c.value)]


def experiment_query(
    workspace: str, stages: Sequence[str], filter_string: str | None, order_by: Sequence[str] | None
) -> Select[Any]:
    e = t.experiments.c
    columns = {
        "name": e.name,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "experiment_id": e.experiment_id,
    }
    q = select(t.experiments).where(e.workspace == workspace, e.lifecycle_stage.in_(stages))
    for c in parse_filter(filter_string, EXPERIMENT_ATTRIBUTES):
        if c.kind == "tag":
            et = t.experiment_tags.c
            cond = exists().where(et.experiment_id == e.experiment_id, et.key == c.key)
            if c.op not in ("IS NULL", "IS NOT NULL"):
                cond = exists().where(
                    et.experiment_id == e.experiment_id, et.key == c.key, compare(et.value, c.op, c.value)
                )
            q = q.where(not_(cond) if c.op == "IS NULL" else cond)
        elif c.kind == "attribute":
            q = q.where(compare(columns[c.key], c.op, c.value))
        else:
            raise InvalidInput(f"Experiments cannot be filtered by {c.kind}s.", hint="Use name or tags.")
    order: list[Any] = []
    for ob in parse_order_by(order_by, EXPERIMENT_ATTRIBUTES):
        if ob.kind != "attribute":
            raise InvalidInput(
                "Experiments can be ordered by name, experiment_id, creation_time or last_update_time."
            )
        col = columns[ob.key]
        order.append(col.asc() if ob.ascending else col.desc())
    if not order:
        order = [e.creation_time.desc()]
    order.append(e.experiment_id)
    return q.order_by(*order)


__all__ = ["RunQuery", "experiment_query"]
