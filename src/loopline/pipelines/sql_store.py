"""Pipeline runs, step runs, schedules and sweeps on SQLAlchemy (SQLite ▸ PostgreSQL).

Every write is one transaction that also appends an event and the lineage edges it implies:

    datasets:/d/3 ──input_of──► pipelines:/p/<run>/<step> ──input_of──► pipelines:/p/<run>/<next>
    pipelines:/p/<run> ──has_step──► pipelines:/p/<run>/<step> ──produced──► models:/m/7
    pipelines:/p/<run> ──tracked_as──► runs:/<run>

A step's output is registered by ``progress`` (its ``finished`` steps) only, after its bytes are in
the artifact store: a step killed before that leaves a ``running`` row and no output, and the run
stays resumable.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from loopline.clock import now_ms
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata.base import SqlStore
from loopline.metadata.engine import insert_for
from loopline.metadata.schema import lineage_edges
from loopline.metadata.schema_pipelines import (
    pipeline_runs,
    pipeline_schedule_slots,
    pipeline_schedules,
    pipeline_steps,
    pipeline_sweeps,
)
from loopline.names import check_name
from loopline.pipelines.types import Finished, RunRecord, ScheduleRecord, StepRecord, pipeline_uri

if TYPE_CHECKING:
    from sqlalchemy import Engine

TERMINAL = ("succeeded", "failed")

_c = pipeline_steps.c
# Built once with bind parameters: the runner executes these for every step (see ``progress``).
# Run ids are global: each statement also names the workspace, so no other workspace's run moves.
_UPDATE_STEP = update(pipeline_steps).where(
    _c.workspace == bindparam("w_ws"), _c.run_id == bindparam("w_run"), _c.node == bindparam("w_node")
)
_START_STEP = (
    update(pipeline_steps)
    .where(_c.workspace == bindparam("w_ws"), _c.run_id == bindparam("w_run"), _c.node == bindparam("w_node"))
    .values(status=bindparam("status"), start_time=bindparam("start_time"), end_time=None, error="")
)
_FIND_CACHED = (
    select(pipeline_steps)
    .where(_c.workspace == bindparam("ws"), _c.cache_key == bindparam("key"), _c.status == "succeeded")
    .order_by(_c.id.desc())
    .limit(1)
)


@functools.cache
def _insert_edge(dialect_name: str) -> Any:
    return insert_for(dialect_name, lineage_edges).on_conflict_do_nothing()


def _run(r: Any) -> RunRecord:
    return RunRecord(
        r.run_id,
        r.name,
        r.target,
        r.status,
        json.loads(r.params),
        r.seed,
        r.executor,
        json.loads(r.environment),
        json.loads(r.graph),
        json.loads(r.outputs),
        r.error,
        r.rerun_of,
        r.sweep_id,
        r.schedule,
        r.host,
        r.pid,
        r.start_time,
        r.end_time,
    )


def _step(r: Any) -> StepRecord:
    return StepRecord(
        r.run_id,
        r.pipeline,
        r.node,
        r.step,
        r.status,
        r.attempts,
        r.cache_key,
        r.fingerprint,
        json.loads(r.inputs),
        json.loads(r.params),
        r.cached_from,
        r.serializer,
        r.output_path,
        r.output_digest,
        r.output_size,
        r.output_inline,
        json.loads(r.output_meta),
        r.reason,
        r.error,
        r.start_time,
        r.end_time,
    )


def _step_values(s: StepRecord) -> dict[str, Any]:
    return {
        "status": s.status,
        "attempts": s.attempts,
        "cache_key": s.cache_key,
        "fingerprint": s.fingerprint,
        "inputs": json.dumps(dict(s.inputs), sort_keys=True),
        "params": json.dumps(dict(s.params), sort_keys=True, default=str),
        "cached_from": s.cached_from,
        "serializer": s.serializer,
        "output_path": s.output_path,
        "output_digest": s.output_digest,
        "output_size": s.output_size,
        "output_inline": s.output_inline,
        "output_meta": json.dumps(dict(s.output_meta), default=str),
        "reason": s.reason,
        "error": s.error,
        "start_time": s.start_time,
        "end_time": s.end_time,
    }


class SqlPipelineStore(SqlStore):
    """Pipeline runs and their steps, schedules and sweeps, for one workspace."""

    # ---- runs --------------------------------------------------------------------------------

    def create_run(self, run: RunRecord, steps: Sequence[tuple[str, str]]) -> None:
        """Record a new run (status ``running``) and its steps (``pending``), in one transaction.

        The client picks the run id, so a retried call (its answer lost) finds its own run and
        succeeds without a second one; another run under that id is refused.
        """
        try:
            self._create_run(run, steps)
        except IntegrityError:
            with self.engine.connect() as conn:
                row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.run_id == run.run_id)).first()
            same = row is not None and (row.workspace, row.name, row.target, row.start_time) == (
                self.workspace,
                run.name,
                run.target,
                run.start_time,
            )
            if not same:
                raise AlreadyExists(f"A pipeline run {run.run_id!r} exists already.") from None

    def _create_run(self, run: RunRecord, steps: Sequence[tuple[str, str]]) -> None:
        with self._write() as conn:
            conn.execute(
                pipeline_runs.insert().values(
                    run_id=run.run_id,
                    workspace=self.workspace,
                    name=run.name,
                    target=run.target,
                    status=run.status,
                    params=json.dumps(dict(run.params), default=str),
                    seed=run.seed,
                    executor=run.executor,
                    environment=json.dumps(dict(run.environment), default=str),
                    graph=json.dumps(dict(run.graph)),
                    outputs=json.dumps(run.outputs),
                    error="",
                    rerun_of=run.rerun_of,
                    sweep_id=run.sweep_id,
                    schedule=run.schedule,
                    host=run.host,
                    pid=run.pid,
                    start_time=run.start_time,
                    end_time=None,
                )
            )
            if steps:
                conn.execute(
                    pipeline_steps.insert(),
                    [
                        {
                            "workspace": self.workspace,
                            "run_id": run.run_id,
                            "pipeline": run.name,
                            "node": node,
                            "step": step,
                            **_step_values(StepRecord("", "", "", "", "pending")),
                        }
                        for node, step in steps
                    ],
                )
            uri, now = run.uri, now_ms()
            edges = [(uri, f"runs:/{run.run_id}", "tracked_as")]
            edges += [(uri, pipeline_uri(run.name, run.run_id, node), "has_step") for node, _ in steps]
            conn.execute(
                _insert_edge(conn.dialect.name),
                [
                    {"workspace": self.workspace, "from_uri": a, "to_uri": b, "relation": r, "time_ms": now}
                    for a, b, r in edges
                ],
            )
            self._event(conn, "pipeline_run.start", uri, target=run.target, params=run.params, seed=run.seed)

    def restart_run(self, run_id: str, *, host: str, pid: int, executor: str) -> None:
        """Mark a run ``running`` again for ``resume`` (its finished steps stay as they are)."""
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id)
                .values(status="running", host=host, pid=pid, executor=executor, error="", end_time=None)
            )
            self._event(conn, "pipeline_run.resume", pipeline_uri(row.name, run_id), pid=pid)

    def add_inputs(self, run_id: str, name: str, dataset_uris: Sequence[str]) -> None:
        with self._write() as conn:
            self._run_row(conn, run_id)
            for uri in dataset_uris:
                self._edge(conn, uri, pipeline_uri(name, run_id), "input_of")

    def finish_run(self, run_id: str, status: str, outputs: Any, error: str = "") -> None:
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id)
                .values(
                    status=status, outputs=json.dumps(outputs, default=str), error=error, end_time=now_ms()
                )
            )
            self._event(conn, "pipeline_run.finish", pipeline_uri(row.name, run_id), status=status)

    def _run_row(self, conn: Any, run_id: str) -> Any:
        row = conn.execute(
            select(pipeline_runs).where(
                pipeline_runs.c.workspace == self.workspace, pipeline_runs.c.run_id == run_id
            )
        ).first()
        if row is None:
            raise NotFound(f"No pipeline run {run_id!r}.", hint="List runs with `loopline pipeline list`.")
        return row

    def get_run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            return _run(self._run_row(conn, run_id))

    def list_runs(
        self, name: str | None = None, status: str | None = None, sweep_id: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        c = pipeline_runs.c
        q = select(pipeline_runs).where(c.workspace == self.workspace)
        if name:
            q = q.where(c.name == name)
        if status:
            q = q.where(c.status == status)
        if sweep_id:
            q = q.where(c.sweep_id == sweep_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.start_time.desc(), c.run_id).limit(limit)).all()
        return [_run(r) for r in rows]

    # ---- steps -------------------------------------------------------------------------------

    def progress(
        self,
        run_id: str,
        *,
        finished: Sequence[Finished] = (),
        started: Sequence[str] = (),
        start_time: int | None = None,
    ) -> None:
        """Register finished steps (state, output, lineage, events) and mark others running, at once.

        The runner calls this once per turn of its loop with everything that changed, so a chain
        of trivial steps costs one small transaction per step.
        """
        if not finished and not started:
            return
        edges: list[dict[str, Any]] = []
        now = now_ms()
        for f in finished:
            s = f.step
            if s.status not in ("succeeded", "cached"):
                continue
            uri = pipeline_uri(s.pipeline, s.run_id, s.node)
            run_uri = pipeline_uri(s.pipeline, s.run_id)
            pairs = [(pipeline_uri(s.pipeline, s.run_id, n), uri, "input_of") for n in f.upstream]
            for ds in f.datasets:
                pairs += [(ds, uri, "input_of"), (ds, run_uri, "input_of")]
            for out in f.produced:
                pairs += [(uri, out, "produced"), (run_uri, out, "produced")]
            if s.cached_from:
                pairs.append((pipeline_uri(s.pipeline, s.cached_from, s.node), uri, "reused_by"))
            edges += [
                {"workspace": self.workspace, "from_uri": a, "to_uri": b, "relation": r, "time_ms": now}
                for a, b, r in pairs
            ]
        with self._write() as conn:
            self._run_row(conn, run_id)  # NotFound for a run of another workspace
            if any(f.step.run_id != run_id for f in finished):
                raise InvalidInput(f"Every finished step must be a step of pipeline run {run_id}.")
            if finished:
                rows = [
                    {
                        "w_ws": self.workspace,
                        "w_run": f.step.run_id,
                        "w_node": f.step.node,
                        **_step_values(f.step),
                    }
                    for f in finished
                ]
                done = conn.execute(_UPDATE_STEP, rows)
                if done.rowcount != len(rows) and (
                    len(rows) == 1 or conn.dialect.supports_sane_multi_rowcount
                ):
                    raise NotFound(f"A step of pipeline run {run_id} is not part of it.")
                if edges:
                    conn.execute(_insert_edge(conn.dialect.name), edges)
                for f in finished:
                    uri = pipeline_uri(f.step.pipeline, f.step.run_id, f.step.node)
                    self._event(
                        conn, "pipeline_step.finish", uri, status=f.step.status, attempts=f.step.attempts
                    )
            if started:
                conn.execute(
                    _START_STEP,
                    [
                        {
                            "w_ws": self.workspace,
                            "w_run": run_id,
                            "w_node": n,
                            "status": "running",
                            "start_time": start_time,
                        }
                        for n in started
                    ],
                )

    def steps(self, run_id: str) -> list[StepRecord]:
        c = pipeline_steps.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pipeline_steps).where(c.workspace == self.workspace, c.run_id == run_id).order_by(c.id)
            ).all()
        return [_step(r) for r in rows]

    def known_keys(self, fingerprints: Sequence[str], limit: int = 100_000) -> set[str] | None:
        """Every cache key with a registered output for these code fingerprints (None: too many to hold).

        The runner reads them once per run, so a step that misses the cache costs no query.
        """
        c = pipeline_steps.c
        q = (
            select(c.cache_key)
            .where(c.workspace == self.workspace, c.fingerprint.in_(list(fingerprints)))
            .where(c.status == "succeeded")
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            keys = set(conn.execute(q).scalars())
        return keys if len(keys) <= limit else None

    def find_cached(self, cache_key: str) -> StepRecord | None:
        """The newest step, in any run, that produced an output under ``cache_key``."""
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_CACHED, {"ws": self.workspace, "key": cache_key}).first()
        return _step(row) if row is not None else None

    def last_steps(self, pipeline: str, before_run: str) -> dict[str, StepRecord]:
        """The newest finished run of each node in earlier runs of ``pipeline`` (to explain changes)."""
        c = pipeline_steps.c
        newest = (
            select(func.max(c.id))
            .where(
                c.workspace == self.workspace,
                c.pipeline == pipeline,
                c.run_id != before_run,
                c.status.in_(("succeeded", "cached")),
            )
            .group_by(c.node)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(pipeline_steps).where(c.id.in_(newest))).all()
        return {r.node: _step(r) for r in rows}

    # ---- schedules ---------------------------------------------------------------------------

    def add_schedule(self, s: ScheduleRecord) -> None:
        check_name("schedule", s.name)  # the scheduler also names a log file after it
        try:
            with self._write() as conn:
                conn.execute(
                    pipeline_schedules.insert().values(
                        workspace=self.workspace,
                        name=s.name,
                        target=s.target,
                        cron=s.cron,
                        params=json.dumps(dict(s.params), default=str),
                        executor=s.executor,
                        enabled=s.enabled,
                        created_time=s.created_time,
                    )
                )
                self._event(
                    conn, "pipeline_schedule.create", f"pipelines:/{s.name}", cron=s.cron, target=s.target
                )
        except IntegrityError:
            if any(_same_schedule(s, old) for old in self.list_schedules() if old.name == s.name):
                return  # a retry of this very call (its answer lost): the schedule is there
            raise AlreadyExists(
                f"A schedule named {s.name!r} exists already.",
                hint=f"Remove it first: loopline pipeline schedule remove {s.name}",
            ) from None

    def list_schedules(self, enabled_only: bool = False) -> list[ScheduleRecord]:
        c = pipeline_schedules.c
        q = select(pipeline_schedules).where(c.workspace == self.workspace)
        if enabled_only:
            q = q.where(c.enabled.is_(True))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.name)).all()
        return [_schedule(r) for r in rows]

    def set_schedule_enabled(self, name: str, enabled: bool) -> None:
        c = pipeline_schedules.c
        with self._write() as conn:
            done = conn.execute(
                update(pipeline_schedules)
                .where(c.workspace == self.workspace, c.name == name)
                .values(enabled=enabled)
            )
            if done.rowcount == 0:
                raise NotFound(f"No schedule named {name!r}.", hint="See `loopline pipeline schedule list`.")
            self._event(conn, "pipeline_schedule.update", f"pipelines:/{name}", enabled=enabled)

    def remove_schedule(self, name: str) -> None:
        c = pipeline_schedules.c
        with self._write() as conn:
            done = conn.execute(
                delete(pipeline_schedules).where(c.workspace == self.workspace, c.name == name)
            )
            if done.rowcount == 0:
                raise NotFound(f"No schedule named {name!r}.", hint="See `loopline pipeline schedule list`.")
            self._event(conn, "pipeline_schedule.delete", f"pipelines:/{name}")

    def claim_slot(self, schedule: str, slot_ms: int, claimed_by: str) -> bool:
        """Claim one cron slot; True for exactly one caller however many race (the primary key decides).

        A claimant asking again for a slot it holds gets True again (a retried request).
        """
        try:
            with self._write() as conn:
                conn.execute(
                    pipeline_schedule_slots.insert().values(
                        workspace=self.workspace,
                        schedule=schedule,
                        slot_ms=slot_ms,
                        claimed_by=claimed_by,
                        claimed_time=now_ms(),
                        run_id="",
                        error="",
                    )
                )
                self._event(conn, "pipeline_schedule.claim", f"pipelines:/{schedule}", slot_ms=slot_ms)
            return True
        except IntegrityError:
            c = pipeline_schedule_slots.c
            with self.engine.connect() as conn:
                holder = conn.execute(
                    select(c.claimed_by).where(
                        c.workspace == self.workspace, c.schedule == schedule, c.slot_ms == slot_ms
                    )
                ).scalar()
            return bool(holder == claimed_by)

    def set_slot_result(self, schedule: str, slot_ms: int, *, run_id: str = "", error: str = "") -> None:
        c = pipeline_schedule_slots.c
        with self._write() as conn:
            conn.execute(
                update(pipeline_schedule_slots)
                .where(c.workspace == self.workspace, c.schedule == schedule, c.slot_ms == slot_ms)
                .values(run_id=run_id, error=error)
            )

    def slots(self, schedule: str) -> list[tuple[int, str, str, str]]:
        """(slot_ms, claimed_by, run_id, error) of every claimed slot, oldest first."""
        c = pipeline_schedule_slots.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.slot_ms, c.claimed_by, c.run_id, c.error)
                .where(c.workspace == self.workspace, c.schedule == schedule)
                .order_by(c.slot_ms)
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # ---- sweeps ------------------------------------------------------------------------------

    def create_sweep(
        self, sweep_id: str, name: str, target: str, method: str, metric: str, direction: str, space: Any
    ) -> None:
        if direction not in ("max", "min"):
            raise InvalidInput(f"Unknown direction {direction!r}.", hint="Use max or min.")
        try:
            self._create_sweep(sweep_id, name, target, method, metric, direction, space)
        except IntegrityError:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(pipeline_sweeps).where(pipeline_sweeps.c.sweep_id == sweep_id)
                ).first()
            if row is None or (row.workspace, row.name, row.target) != (self.workspace, name, target):
                raise AlreadyExists(f"A sweep {sweep_id!r} exists already.") from None

    def _create_sweep(
        self, sweep_id: str, name: str, target: str, method: str, metric: str, direction: str, space: Any
    ) -> None:
        with self._write() as conn:
            conn.execute(
                pipeline_sweeps.insert().values(
                    sweep_id=sweep_id,
                    workspace=self.workspace,
                    name=name,
                    target=target,
                    method=method,
                    metric=metric,
                    direction=direction,
                    space=json.dumps(space, default=str),
                    status="running",
                    best_run_id="",
                    best_value="",
                    start_time=now_ms(),
                )
            )
            self._event(conn, "sweep.start", f"pipelines:/{name}", sweep_id=sweep_id, method=method)

    def finish_sweep(self, sweep_id: str, status: str, best_run_id: str, best_value: float | None) -> None:
        with self._write() as conn:
            done = conn.execute(
                update(pipeline_sweeps)
                .where(pipeline_sweeps.c.sweep_id == sweep_id, pipeline_sweeps.c.workspace == self.workspace)
                .values(
                    status=status,
                    best_run_id=best_run_id,
                    best_value="" if best_value is None else repr(best_value),
                    end_time=now_ms(),
                )
            )
            if done.rowcount == 0:
                raise NotFound(f"No sweep {sweep_id!r}.")
            self._event(conn, "sweep.finish", f"pipelines:/sweeps/{sweep_id}", best_run_id=best_run_id)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pipeline_sweeps).where(
                    pipeline_sweeps.c.sweep_id == sweep_id, pipeline_sweeps.c.workspace == self.workspace
                )
            ).first()
        if row is None:
            raise NotFound(f"No sweep {sweep_id!r}.")
        out = {str(k): v for k, v in row._mapping.items()}  # plain str keys (not quoted_name) for JSON
        out["space"] = json.loads(out["space"])
        return out


def _schedule(r: Any) -> ScheduleRecord:
    return ScheduleRecord(
        r.name, r.target, r.cron, json.loads(r.params), r.executor, r.enabled, r.created_time
    )


def enabled_schedules(engine: Engine) -> dict[str, list[ScheduleRecord]]:
    """Every workspace's enabled schedules, by workspace and name: one statement for all workspaces
    (what an idle tick of the server's scheduler costs, however many workspaces there are)."""
    c = pipeline_schedules.c
    q = select(pipeline_schedules).where(c.enabled.is_(True)).order_by(c.workspace, c.name)
    found: dict[str, list[ScheduleRecord]] = {}
    with engine.connect() as conn:
        for r in conn.execute(q):
            found.setdefault(r.workspace, []).append(_schedule(r))
    return found


def _same_schedule(a: ScheduleRecord, b: ScheduleRecord) -> bool:
    return (a.target, a.cron, json.dumps(dict(a.params), default=str), a.executor) == (
        b.target,
        b.cron,
        json.dumps(dict(b.params), default=str),
        b.executor,
    )


# The records are defined in ``types``; importing them from here still works.
__all__ = ["Finished", "RunRecord", "ScheduleRecord", "SqlPipelineStore", "StepRecord", "pipeline_uri"]
