"""The loop's controllers of every workspace, as ``loopline server`` runs them.

Each workspace has its own ``Controller`` (its context, leases, event cursor, cron claims and,
with auth on, its own role check), made on first need. A tick asks the database one question for
all of them (``loop_overview``: which workspaces have policies, which are busy, where each one's
event cursor is, and the newest event id), plus, only when events were appended since the last
tick, which workspaces they belong to (``new_event_workspaces``). A workspace gets a pass only when
it has something to do: a rollout in flight or a trigger queued, events its controller has not read,
a cron slot it has not asked about, or policies changed. So a server with a hundred idle workspaces
issues one statement a tick, as with one.

Passes run on a small pool, at most one per workspace at a time: a workspace whose pass is slow
(a big inference log to measure) holds up no other, and is simply not ticked again until it is done.
The guarantees are each workspace's own, as for one: a rollout moves under its deployment's lease,
events are read under the workspace's ``events`` lease, a cron slot is claimed once in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from loopline.automation.controller import Action, Controller, Pass
from loopline.automation.sql_store import LoopState, loop_overview, new_event_workspaces
from loopline.clock import now_ms

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("loopline.automation")


class WorkspaceControllers:
    """Drives the policies of every workspace of ``engine``'s database; ``make(workspace)`` gives the
    controller of one (acting in it as whom it should)."""

    def __init__(
        self, engine: Engine, make: Callable[[str], Controller], *, workers: int = 4, lease_s: float = 30.0
    ) -> None:
        self.engine = engine
        self.make = make
        self.lease_s = lease_s
        self.controllers: dict[str, Controller] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="loopline-loop-ws")
        self._running: dict[str, tuple[Future[Pass], int]] = {}  # workspace -> its pass, the top event then
        self._seen = -1  # the newest event id looked at (-1: none yet)
        self._unread: dict[str, int] = {}  # workspace -> its newest event its controller may not have read
        self._retry: dict[str, float] = {}  # workspace -> when to try its events lease again (monotonic)
        self._shapes: dict[str, tuple[int, int, int]] = {}  # workspace -> its policies when last read

    def dispatch(self, at_ms: int | None = None) -> list[Future[Pass]]:
        """Start a pass in every workspace that has work and none running; returns the passes started."""
        self.collect()
        now = at_ms if at_ms is not None else now_ms()
        top, loops = loop_overview(self.engine)
        if not loops:
            return []  # no policy anywhere (the newest event id is not known then: nothing read)
        if 0 <= self._seen < top:  # (at the first look, every controller is new and listens once)
            for workspace, newest in new_event_workspaces(self.engine, self._seen, top).items():
                self._unread[workspace] = max(newest, self._unread.get(workspace, 0))
        self._seen = max(self._seen, top)
        started = []
        for workspace, state in loops.items():
            if workspace in self._running:
                continue  # still at its last pass: it is not held up, nor does it hold up others
            future = self._start(workspace, state, top, now)
            if future is not None:
                started.append(future)
        return started

    def _start(self, workspace: str, state: LoopState, top: int, now: int) -> Future[Pass] | None:
        ctl = self.controllers.get(workspace)
        if ctl is None:  # a workspace new to this process: its controller listens once, as at a start
            ctl = self.controllers[workspace] = self.make(workspace)
            self._unread.setdefault(workspace, top)
        unread = self._unread.get(workspace)
        if unread is not None and unread <= state.cursor:
            del self._unread[workspace]  # read by this or another replica's controller meanwhile
        listen = workspace in self._unread and time.monotonic() >= self._retry.get(workspace, 0.0)
        reshaped = self._shapes.get(workspace) != state.policies
        if not (state.busy or listen or reshaped or ctl.cron_due(now)):
            return None
        self._shapes[workspace] = state.policies

        def work() -> Pass:
            if reshaped:
                ctl.policies = {p.name: p for p in ctl.store.list_policies()}
            return ctl.step(now, listen=listen, busy=state.busy)

        future = self._pool.submit(work)
        self._running[workspace] = (future, top if listen else -1)
        return future

    def collect(self) -> list[Action]:
        """The actions of the passes that ended, logged; a workspace that read its events is
        caught up, one whose events lease another holds is asked again after a while."""
        done: list[Action] = []
        for workspace, (future, listened_to) in list(self._running.items()):
            if not future.done():
                continue
            del self._running[workspace]
            try:
                result = future.result()
            except Exception:
                self._shapes.pop(workspace, None)  # read its policies again next time
                log.exception("the loop's pass in workspace %s failed; retrying", workspace)
                continue
            for action in result.actions:
                log.info("%s: %s %s", workspace, action.uri, action.what)
            done += result.actions
            if listened_to < 0:
                continue
            if not result.listened:  # another controller holds the lease: it reads them (or it
                self._retry[workspace] = time.monotonic() + self.lease_s / 3  # died: the lease expires)
                continue
            self._retry.pop(workspace, None)
            if result.caught_up and self._unread.get(workspace, 0) <= listened_to:
                self._unread.pop(workspace, None)  # (more than a pass reads: the next pass goes on)
        return done

    def tick(self, at_ms: int | None = None) -> list[Action]:
        """One dispatch, waiting for its passes (tests, and a one-off run)."""
        wait(self.dispatch(at_ms))
        return self.collect()

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Dispatch every ``interval_s`` until ``stop`` is set; a failed round is logged and retried."""
        while not stop.is_set():
            try:
                self.dispatch()
            except Exception:
                log.exception("the loop's controllers' round failed; retrying")
            stop.wait(interval_s)
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for ctl in self.controllers.values():
            ctl.close()


__all__ = ["WorkspaceControllers"]
