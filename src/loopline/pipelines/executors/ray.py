"""The Ray executor (``loopline[ray]``): every step a Ray task with the step's resources.

``RayExecutor()`` joins the Ray instance this process already started (``ray.init(...)``), or the
cluster ``RAY_ADDRESS`` names, or starts a local one; ``RayExecutor("ray://head:10001")`` joins a
remote cluster through Ray Client. Workers import the step's code by module name, or by file path
for scripts, so a remote cluster needs the project's code: pass ``runtime_env={"working_dir": "."}``.
Workers read and write step outputs through the artifact store, so it must be one they can reach
(S3, or a shared folder); the metadata store is written by the runner only.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future, InvalidStateError
from typing import Any

from loopline.clock import now_ms
from loopline.errors import MissingExtra
from loopline.pipelines.options import StepOptions
from loopline.pipelines.task import StepResult, StepTask, execute, strip_for_transfer


def _execute(task: StepTask) -> StepResult:
    return execute(task)


def _settle(out: Future[StepResult], result: StepResult) -> None:
    with contextlib.suppress(InvalidStateError):  # the timeout and the task's end raced: first wins
        out.set_result(result)


class RayExecutor:
    """Steps as Ray tasks (``num_cpus``/``num_gpus``/``memory`` from the step's options)."""

    name = "ray"
    capacity: float | None = None  # Ray queues tasks by their resources itself

    def __init__(
        self, address: str | None = None, *, runtime_env: dict[str, Any] | None = None, **init: Any
    ) -> None:
        try:
            import ray
        except ImportError:
            raise MissingExtra("ray", "ray") from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, **init}
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            ray.init(address=address, **kwargs)
        self.name = address or "ray"
        self._remote = ray.remote(_execute)

    def submit(self, task: StepTask, options: StepOptions) -> Future[StepResult]:
        opts: dict[str, Any] = {"num_cpus": options.cpus, "num_gpus": options.gpus, "max_retries": 0}
        if options.memory:
            opts["memory"] = options.memory
        ref = self._remote.options(**opts).remote(strip_for_transfer(task))
        out: Future[StepResult] = Future()
        inner = ref.future()
        started = now_ms()

        def settle(f: Future[StepResult]) -> None:
            try:
                _settle(out, f.result())
            except Exception as e:  # the worker died, or Ray could not run the task
                _settle(
                    out,
                    StepResult(
                        False,
                        error=f"Ray could not run step {task.node!r}: {e}",
                        started_ms=started,
                        ended_ms=now_ms(),
                    ),
                )

        inner.add_done_callback(settle)
        if options.timeout is not None:

            def expire() -> None:
                if out.done():
                    return
                self._ray.cancel(ref, force=True)
                _settle(
                    out,
                    StepResult(
                        False,
                        error=f"Step {task.node!r} timed out after {options.timeout:g} s and was cancelled.",
                        started_ms=started,
                        ended_ms=now_ms(),
                    ),
                )

            timer = threading.Timer(options.timeout, expire)
            timer.daemon = True
            timer.start()
            out.add_done_callback(lambda _: timer.cancel())
        return out

    def close(self) -> None:
        """Leave Ray running: it may be shared with other work of this process."""
