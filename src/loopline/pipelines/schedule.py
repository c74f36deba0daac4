"""Cron schedules for pipelines, run by ``loopline server``'s background task.

Each tick, for every enabled schedule, the scheduler takes the newest cron slot that is due (at
or before now, and not before the schedule was created) and *claims* it: one INSERT into
``pipeline_schedule_slots``, whose primary key (workspace, schedule, slot) lets exactly one
claimant win however many servers race or restart. The winner launches the run as
``loopline pipeline run TARGET`` in a process of its own (the server never imports user code),
which records its run id on the slot. So a slot runs once across restarts; slots missed while no
server was up are not replayed, except the newest, which runs when a server comes back.
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
from collections.abc import Callable
from typing import Any

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.pipelines.store import PipelineStore
from loopline.pipelines.types import ScheduleRecord

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


def launch_process(settings: Settings) -> Launcher:
    """A launcher that runs each claimed slot as ``python -m loopline.cli pipeline run …``."""

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
            "LOOPLINE_WORKSPACE": settings.workspace,
        }
        logfile = os.path.join(tempfile.gettempdir(), f"loopline-schedule-{schedule.name}-{slot_ms}.log")
        with open(logfile, "ab") as out:
            # A session of its own: a server restart does not take a running pipeline down.
            return subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    return launch


class Scheduler:
    """Claims due slots and launches their runs; ``tick`` once, or ``serve`` forever."""

    def __init__(self, store: PipelineStore, launcher: Launcher, *, identity: str | None = None) -> None:
        self.store = store
        self.launcher = launcher
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self._children: list[Any] = []
        # The newest slot launched per schedule: a claim is idempotent for its holder (a retried
        # request must not lose it), so the holder itself remembers what it already launched.
        self._launched: dict[str, int] = {}

    def tick(self, now_ms: int | None = None) -> list[tuple[str, int]]:
        """Claim and launch every due slot; returns the (schedule, slot) pairs this scheduler won."""
        now = now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        self._children = [p for p in self._children if getattr(p, "poll", lambda: 0)() is None]  # reap
        won: list[tuple[str, int]] = []
        for schedule in self.store.list_schedules(enabled_only=True):
            try:
                slot = due_slot(schedule.cron, now)
            except Exception as e:  # a schedule that cannot be read must not stop the others
                log.warning("schedule %s: %s", schedule.name, e)
                continue
            if slot < schedule.created_time or slot <= self._launched.get(schedule.name, -1):
                continue
            if not self.store.claim_slot(schedule.name, slot, self.identity):
                continue
            self._launched[schedule.name] = slot
            won.append((schedule.name, slot))
            try:
                child = self.launcher(schedule, slot)
                if child is not None:
                    self._children.append(child)
            except Exception as e:
                log.exception("schedule %s: launching slot %s failed", schedule.name, slot)
                self.store.set_slot_result(schedule.name, slot, error=str(e))
        return won

    async def serve(self, interval: float) -> None:
        """Tick every ``interval`` seconds until cancelled (errors are logged, never fatal)."""
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(interval)
