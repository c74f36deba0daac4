"""The local executor: threads of this process, or a fresh Python process per step when asked.

Threads keep a trivial step's overhead far below a millisecond and let steps that release the
GIL (NumPy, pandas, Arrow, scikit-learn's native code, I/O) run in parallel. A step with a
``timeout`` or ``isolate=True`` runs as ``python -m loopline.pipelines.worker`` instead: a process
that can be killed at the deadline, whose crash (even SIGKILL) cannot take the runner down, and
that re-imports nothing of the parent's ``__main__`` (spawn-safe without an ``if __name__`` guard in
the caller's CLI). Its task and result travel as pickles through two temporary files.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor

from loopline.artifacts import open_artifact_store
from loopline.clock import now_ms
from loopline.pipelines.options import StepOptions
from loopline.pipelines.task import StepResult, StepTask, execute, strip_for_transfer


def run_in_process(task: StepTask, timeout: float | None) -> StepResult:
    """Run one task in a fresh interpreter; kill it at ``timeout`` seconds."""
    started = now_ms()
    with tempfile.TemporaryDirectory(prefix="loopline-task-") as tmp:
        task_file, result_file = os.path.join(tmp, "task.pkl"), os.path.join(tmp, "result.pkl")
        with open(task_file, "wb") as f:
            pickle.dump(strip_for_transfer(task), f, protocol=pickle.HIGHEST_PROTOCOL)
        proc = subprocess.Popen([sys.executable, "-m", "loopline.pipelines.worker", task_file, result_file])
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return StepResult(
                False,
                error=f"Step {task.node!r} timed out after {timeout:g} s and was killed.",
                started_ms=started,
                ended_ms=now_ms(),
            )
        except BaseException:
            proc.kill()  # the runner is going away: take the step with it
            proc.wait()
            raise
        if code != 0 or not os.path.exists(result_file):
            if code < 0:
                try:
                    why = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    why = f"killed by signal {-code}"
            else:
                why = f"exited with status {code}"
            return StepResult(
                False,
                error=f"The process running step {task.node!r} was {why}; its output was discarded.",
                started_ms=started,
                ended_ms=now_ms(),
            )
        with open(result_file, "rb") as f:
            result: StepResult = pickle.load(f)
        return result


class LocalExecutor:
    """Threads for ordinary steps; a process each for ``timeout``/``isolate`` steps (or all of them)."""

    name = "local"

    def __init__(self, max_workers: int | None = None, *, isolate_all: bool = False) -> None:
        self.capacity: float | None = float(max_workers or os.cpu_count() or 1)
        self.isolate_all = isolate_all
        self._pool = ThreadPoolExecutor(
            max_workers=max(int(self.capacity), 1), thread_name_prefix="loopline-step"
        )
        self._stores: dict[str, object] = {}

    def submit(self, task: StepTask, options: StepOptions) -> Future[StepResult]:
        if self.isolate_all or options.isolate or options.timeout is not None:
            return self._pool.submit(run_in_process, task, options.timeout)
        key = f"{task.workspace}:{task.artifacts_uri}"
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = open_artifact_store(task.artifacts_uri, workspace=task.workspace)
        return self._pool.submit(execute, task, store, True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
