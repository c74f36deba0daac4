"""Executors: how a step is launched. They differ in that alone (as Kedro's runners do).

``Executor.submit(task, options)`` returns a ``concurrent.futures.Future`` of a ``StepResult``; the
runner does everything else (ordering, caching, retries, registration). ``capacity`` is the number
of CPU slots the runner may fill at once (``None``: the executor schedules by resources itself).

- ``local`` (:class:`LocalExecutor`): steps run in threads of this process, so a trivial step costs
  well under a millisecond of overhead; a step with ``timeout=`` or ``isolate=True`` (or every step,
  with ``isolate_all``) runs in a fresh Python process that can be killed.
- ``ray`` / ``ray://head:10001`` (:class:`RayExecutor`, the ``loopline[ray]`` extra): each step is a
  Ray task with the step's ``cpus``, ``gpus`` and ``memory``.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol

from loopline.errors import InvalidInput
from loopline.pipelines.options import StepOptions
from loopline.pipelines.task import StepResult, StepTask


class Executor(Protocol):
    name: str
    capacity: float | None

    def submit(self, task: StepTask, options: StepOptions) -> Future[StepResult]: ...

    def close(self) -> None: ...


def open_executor(
    spec: str | None = None, *, max_workers: int | None = None, isolate_all: bool = False
) -> Executor:
    """The executor ``spec`` names: ``local`` (default), ``ray`` (connect or start) or ``ray://host:port``."""
    spec = (spec or "local").strip()
    if spec == "local":
        from loopline.pipelines.executors.local import LocalExecutor

        return LocalExecutor(max_workers=max_workers, isolate_all=isolate_all)
    if spec == "ray" or spec.startswith("ray://"):
        from loopline.pipelines.executors.ray import RayExecutor

        return RayExecutor(None if spec == "ray" else spec)
    raise InvalidInput(f"Unknown executor {spec!r}.", hint="Use local, ray or ray://head:10001.")


__all__ = ["Executor", "open_executor"]
