"""Cron schedules for pipelines, run by ``loopline server``'s background task, in every workspace.

Each tick, for every enabled schedule, the scheduler takes the newest cron slot that is due (at
or before now, and not before the schedule was created) and *claims* it: one INSERT into
``pipeline_schedule_slots``, whose primary key (workspace, schedule, slot) lets exactly one
claimant win however many servers race or restart. The winner launches the run as
``loopline pipeline run TARGET`` in a process of its own (the server never imports user code),
which records its run id on the slot. So a slot runs once across restarts; slots missed while no
server was up are not replayed, except the newest, which runs when a server comes back. The server
ticks every workspace's schedules with one query (``WorkspaceSchedulers``), and a scheduler asks the
database about a schedule only when its next slot has come.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.pipelines.store import PipelineStore
from loopline.pipelines.types import ScheduleRecord

if TYPE_CHECKING:
    from loopline.context import Context

log = logging.getLogger("loopline.pipelines.schedule")

Launcher = Callable[[ScheduleRecord, int], Any]


def validate_cron(expr: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(expr):
        raise InvalidInput(
            f"Invalid cron expression {expr!r}.", hint="Use five fields, e.g. '0 * * * *' (hourly)."
        )
    return expr


def due_slot(cron: str, now_ms: int) -> int:
    """The newest slot of ``cron`` at or before ``now_ms`` (milliseconds, UTC)."""
    from croniter import croniter

    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    # croniter's get_prev is strictly before its start: start a moment later so "now" itself counts.
    prev = croniter(cron, now + dt.timedelta(microseconds=1)).get_prev(dt.datetime)
    return int(prev.timestamp() * 1000)


def next_slot(cron: str, now_ms: int) -> int:
    """The first slot of ``cron`` after ``now_ms``: until then, ``due_slot`` stays what it is."""
    from croniter import croniter

    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    return int(croniter(cron, now).get_next(dt.datetime).timestamp() * 1000)


def launch_process(settings: Settings, workspace: str | None = None) -> Launcher:
    """A launcher that runs each claimed slot as ``python -m loopline.cli pipeline run …``, in
    ``workspace`` (default: the settings'), as the settings' user."""
    workspace = workspace or settings.workspace

    def launch(schedule: ScheduleRecord, slot_ms: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "loopline.cli", "pipeline", "run", schedule.target,
               "--schedule", schedule.name, "--slot", str(slot_ms), "--quiet"]  # fmt: skip
        for k, v in schedule.params.items():
            cmd += ["-p", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        if schedule.executor:
            cmd += ["--executor", schedule.executor]
        env = {
            **os.environ,
            "LOOPLINE_TRACKING_URI": settings.tracking_uri,
            "LOOPLINE_ARTIFACTS_URI": settings.artifacts_uri,
            "LOOPLINE_WORKSPACE": workspace,
            "LOOPLINE_USER": settings.user,
        }
        name = f"loopline-schedule-{workspace}-{schedule.name}-{slot_ms}.log"
        with open(os.path.join(tempfile.gettempdir(), name), "ab") as out:
            # A session of its own: a server restart does not take a running pipeline down.
            return subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    return launch


class Scheduler:
    """Claims due slots of one workspace's schedules and launches their runs, a ``tick`` at a time."""

    def __init__(self, store: PipelineStore, launcher: Launcher, *, identity: str | None = None) -> None:
        self.store = store
        self.launcher = launcher
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self._children: list[Any] = []
        # Per schedule: its cron, the slot last asked for (won or lost: a claim is final, and
        # idempotent for its holder, so a retried request must not lose it) and when the next one
        # falls. Until then a tick asks the database nothing about it.
        self._asked: dict[str, tuple[str, int, int]] = {}

    def tick(
        self, now_ms: int | None = None, schedules: Sequence[ScheduleRecord] | None = None
    ) -> list[tuple[str, int]]:
        """Claim and launch every due slot of ``schedules`` (default: the store's enabled ones);
        returns the (schedule, slot) pairs this scheduler won."""
        now = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        self.reap()
        if schedules is None:
            schedules = self.store.list_schedules(enabled_only=True)
        won: list[tuple[str, int]] = []
        for schedule in schedules:
            asked = self._asked.get(schedule.name)
            if asked is not None and asked[0] == schedule.cron and now < asked[2]:
                continue  # the slot it asked for last is still the newest
            try:
                slot, following = due_slot(schedule.cron, now), next_slot(schedule.cron, now)
            except Exception as e:  # a schedule that cannot be read must not stop the others
                log.warning("schedule %s: %s", schedule.name, e)
                continue
            if slot < schedule.created_time or (asked is not None and slot <= asked[1]):
                self._asked[schedule.name] = (schedule.cron, asked[1] if asked else -1, following)
                continue
            claimed = self.store.claim_slot(schedule.name, slot, self.identity)
            self._asked[schedule.name] = (schedule.cron, slot, following)
            if not claimed:
                continue
            won.append((schedule.name, slot))
            try:
                child = self.launcher(schedule, slot)
                if child is not None:
                    self._children.append(child)
            except Exception as e:
                log.exception("schedule %s: launching slot %s failed", schedule.name, slot)
                self.store.set_slot_result(schedule.name, slot, error=str(e))
        return won

    def reap(self) -> None:
        """Forget the launched runs that ended (their exit status collected: no zombie is left)."""
        self._children = [p for p in self._children if getattr(p, "poll", lambda: 0)() is None]


class WorkspaceSchedulers:
    """The server's scheduler: one ``Scheduler`` per workspace (its own store, so claims and events
    are in that workspace; runs launched in it), fed each tick by one query for every workspace's
    enabled schedules (``enabled_schedules``). A workspace with nothing newly due costs no query."""

    def __init__(self, context: Context, launch: Callable[[str], Launcher]) -> None:
        self.context = context
        self.launch = launch  # the launcher of a workspace's runs
        self.schedulers: dict[str, Scheduler] = {}

    def tick(self, now_ms: int | None = None) -> list[tuple[str, str, int]]:
        """Claim and launch every due slot in every workspace: the (workspace, schedule, slot) won."""
        from loopline.pipelines.sql_store import enabled_schedules
        from loopline.pipelines.store import open_pipeline_store

        won: list[tuple[str, str, int]] = []
        listed = enabled_schedules(self.context.engine)
        for workspace, idle in self.schedulers.items():
            if workspace not in listed:  # no schedule left to tick it: its ended runs are reaped here
                idle.reap()
        for workspace, schedules in listed.items():
            scheduler = self.schedulers.get(workspace)
            if scheduler is None:
                store = open_pipeline_store(self.context.scoped(workspace=workspace))
                scheduler = self.schedulers[workspace] = Scheduler(store, self.launch(workspace))
            try:
                won += [(workspace, name, slot) for name, slot in scheduler.tick(now_ms, schedules)]
            except Exception:  # one workspace's trouble must not stop the others
                log.exception("scheduler tick of workspace %s failed", workspace)
        return won

    async def serve(self, interval: float) -> None:
        """Tick every ``interval`` seconds until cancelled (errors are logged, never fatal)."""
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(interval)
