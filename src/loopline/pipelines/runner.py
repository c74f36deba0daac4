"""The runner: orders a pipeline's steps, skips cached ones, launches the rest, records everything.

One pipeline run is one tracking run (same id: ``runs:/<id>`` carries its parameters, tags and the
numeric outputs as metrics) plus records of the pipeline store for the run and each step.
Step runs are records, not tracking runs: a step costs one small transaction, not five requests.

Everything comes from the tracking client's ``Context``: on a database the store is SQL and outputs
go to the artifact root; with a server URI the store is REST and outputs go through the server's
artifact proxy, so cache hits are shared by everyone using that server. Steps always run here.

For each step whose inputs are ready the runner computes the cache key — BLAKE3 of the step's
code fingerprint, the digests of its inputs and its constant arguments — and reuses the newest
output registered under that key, or submits the step to the executor. A finished step's output
is in the artifact store before its row says ``succeeded``; a failed step (after its retries,
with exponential back-off) marks its dependants ``upstream_failed`` while independent branches go
on; the run can then be resumed, which re-runs only what did not finish.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Mapping
from typing import Any, Self

from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import Conflict, InvalidInput
from loopline.pipelines.driver import DONE, Listener, RunDriver, task_env
from loopline.pipelines.executors import Executor, open_executor
from loopline.pipelines.graph import Graph, substitute, to_template
from loopline.pipelines.pipeline import Pipeline, load_target
from loopline.pipelines.results import PipelineRun, resume_command
from loopline.pipelines.store import PipelineStore, open_pipeline_store
from loopline.pipelines.task import _MISSING, InputRef
from loopline.pipelines.types import RunRecord, StepRecord


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runner:
    """Runs pipelines against one metadata store, artifact store and executor."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        executor: Executor | str | None = None,
        client: Any = None,
        context: Context | None = None,
        max_workers: int | None = None,
        isolate_all: bool = False,
        on_event: Listener | None = None,
    ) -> None:
        """On ``client``'s context if given, else on ``context``, else on ``settings`` (default: the
        environment's); the tracking client, the pipeline store and the artifacts all come from it."""
        from loopline.tracking import Client

        self.client = client or Client(settings, context=context)
        self.context: Context = self.client.context
        self.settings: Settings = self.context.settings
        self.store: PipelineStore = open_pipeline_store(self.context)
        self._own_executor = executor is None or isinstance(executor, str)
        self.executor: Executor = (
            open_executor(
                executor or self.settings.executor, max_workers=max_workers, isolate_all=isolate_all
            )
            if executor is None or isinstance(executor, str)
            else executor
        )
        self.on_event = on_event or (lambda kind, payload: None)
        self._own_client = client is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_executor:
            self.executor.close()
        if self._own_client:
            self.client.close()

    # ---- entry points ------------------------------------------------------------------------

    def run(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        cache: bool = True,
        seed: int | None = None,
        rerun_of: str = "",
        sweep_id: str = "",
        schedule: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRun:
        """Run ``pipeline`` with ``params`` (defaults filled in); never raises for a failed step."""
        from loopline.pipelines import environment

        values = pipeline.resolve_params(params)
        graph = pipeline.build(values)
        order = graph.order()
        for n in order:  # fingerprints now: a step whose code cannot be read fails before the run exists
            step = graph.nodes[n].step
            if step is not None:
                _ = step.fingerprint
        datasets = self._resolve_datasets(graph)
        seed = (
            seed
            if seed is not None
            else pipeline.seed
            if pipeline.seed is not None
            else random.randrange(2**31)
        )
        env = environment.capture(pipeline.source_path)
        env["seeds"] = {"python": seed, "numpy": seed % 2**32, "torch": seed}
        env["inputs"] = {n: {"ref": d.path, "digest": d.digest} for n, d in datasets.items()}
        exp = self.client.set_experiment(pipeline.name)
        run_tags = {
            "loopline.pipeline": pipeline.name,
            "loopline.pipeline.target": pipeline.target,
            "mlflow.source.name": pipeline.target,
            "mlflow.source.type": "PIPELINE",
            **({"mlflow.source.git.commit": env["git"]["commit"]} if env["git"].get("commit") else {}),
            **({"loopline.sweep_id": sweep_id} if sweep_id else {}),
            **({"loopline.rerun_of": rerun_of} if rerun_of else {}),
            **dict(tags or {}),
        }
        tracked = self.client.create_run(exp.experiment_id, run_name=pipeline.name, tags=run_tags)
        run_id = tracked.info.run_id
        try:
            self.client.log_batch(
                run_id, params={**{k: str(v)[:6000] for k, v in values.items()}, "seed": seed}
            )
            record = RunRecord(
                run_id,
                pipeline.name,
                pipeline.target,
                "running",
                values,
                seed,
                self.executor.name,
                env,
                graph.to_json(),
                to_template(graph.outputs),
                "",
                rerun_of,
                sweep_id,
                schedule,
                socket.gethostname(),
                os.getpid(),
                now_ms(),
                None,
            )
            steps = [(n, graph.nodes[n].name) for n in order if graph.nodes[n].step is not None]
            self.store.create_run(record, steps)
            lineage = [d.path for d in datasets.values() if d.path.startswith("datasets:/")]
            if lineage:
                self.store.add_inputs(run_id, pipeline.name, lineage)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        return self._execute(pipeline, graph, order, run_id, seed, datasets, cache, {})

    def resume(self, run_id: str, pipeline: Pipeline | None = None, *, cache: bool = True) -> PipelineRun:
        """Continue a failed or interrupted run: finished steps are kept, the rest run."""
        rec = self.store.get_run(run_id)
        mine = rec.host == socket.gethostname() and rec.pid != os.getpid()
        if rec.status == "running" and mine and _pid_alive(rec.pid):
            raise Conflict(
                f"Pipeline run {run_id} is still running (pid {rec.pid}).",
                hint=f"Wait for it to finish, or stop it first (kill {rec.pid}).",
            )
        if rec.status == "succeeded":
            raise InvalidInput(
                f"Pipeline run {run_id} succeeded: nothing to resume.", hint="Use rerun to repeat it."
            )
        pipeline = pipeline or load_target(rec.target)
        graph = pipeline.build(pipeline.resolve_params(rec.params))
        order = graph.order()
        datasets = self._resolve_datasets(graph, pinned=rec.environment.get("inputs", {}))
        known = {s.node: s for s in self.store.steps(run_id)}
        missing = [n for n in order if graph.nodes[n].step is not None and n not in known]
        if missing:
            raise Conflict(
                f"Pipeline {pipeline.name!r} no longer has the shape of run {run_id}: "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} new.",
                hint="Start a new run instead: loopline pipeline run …",
            )
        self.store.restart_run(
            run_id, host=socket.gethostname(), pid=os.getpid(), executor=self.executor.name
        )
        done = {n: s for n, s in known.items() if s.status in DONE}
        return self._execute(pipeline, graph, order, run_id, rec.seed, datasets, cache, done)

    # ---- one run ------------------------------------------------------------------------------

    def _resolve_datasets(self, graph: Graph, pinned: Mapping[str, Any] | None = None) -> dict[str, InputRef]:
        """Each dataset node's resolved version and digest (pinned to the earlier run's on resume)."""
        import importlib

        from loopline.artifacts import hash_file

        out: dict[str, InputRef] = {}
        for n, node in graph.nodes.items():
            src = node.source
            if src is None:
                continue
            if pinned and n in pinned:
                out[n] = InputRef(n, "dataset", pinned[n]["digest"], path=pinned[n]["ref"], source=src)
            elif src.ref.startswith("datasets:/"):
                data = importlib.import_module("loopline.data")
                dv = data.get_dataset_version(src.ref, client=data.DataClient(self.settings))
                out[n] = InputRef(n, "dataset", str(dv.digest), path=str(dv.uri), source=src)
            else:
                path = os.path.abspath(src.ref)
                if not os.path.isfile(path):
                    raise InvalidInput(
                        f"Dataset file {src.ref!r} of node {n!r} does not exist.",
                        hint="Pass an existing Parquet/CSV/JSON file or a datasets:/name/version URI.",
                    )
                out[n] = InputRef(n, "dataset", hash_file(path), path=path, source=src)
        return out

    def _execute(
        self,
        pipeline: Pipeline,
        graph: Graph,
        order: list[str],
        run_id: str,
        seed: int,
        datasets: dict[str, InputRef],
        cache: bool,
        done: dict[str, StepRecord],
    ) -> PipelineRun:
        driver = RunDriver(
            self.client,
            self.store,
            self.executor,
            self.on_event,
            pipeline.name,
            graph,
            order,
            run_id,
            seed,
            datasets,
            cache=cache,
            done=done,
        )
        try:
            driver.run()
        except BaseException as e:  # Ctrl-C or a lost database: say so, then let it propagate
            with contextlib.suppress(Exception):
                self.store.finish_run(run_id, "failed", None, f"interrupted: {type(e).__name__}: {e}")
                self.client.set_terminated(run_id, "KILLED")
            raise
        return self._close_run(pipeline, graph, run_id, driver.refs, driver.status, driver.first_error)

    def _close_run(
        self,
        pipeline: Pipeline,
        graph: Graph,
        run_id: str,
        refs: dict[str, InputRef],
        status: dict[str, str],
        first_error: str,
    ) -> PipelineRun:
        from loopline.pipelines import serializers

        ok = all(status.get(n) in DONE for n, node in graph.nodes.items() if node.step is not None)
        final = "succeeded" if ok else "failed"
        outputs: Any = None
        stored: Any = to_template(graph.outputs)
        if ok:

            def value(n: str) -> Any:
                ref = refs[n]
                if ref.value is not _MISSING:
                    return ref.value
                if ref.source is not None:
                    return serializers.read_dataset(ref.source, ref.path, task_env(self.context))
                return serializers.load(ref.serializer, self.client.artifacts, ref.path, ref.inline, ref.meta)

            outputs = substitute(graph.outputs, lambda h: value(h.node))
            metrics = _numbers(outputs)
            if metrics:
                self.client.log_batch(run_id, [_metric(k, v) for k, v in metrics.items()])
            stored = {"template": stored, "values": {k: v for k, v in metrics.items()}}
        self.store.finish_run(run_id, final, stored, first_error)
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED")
        steps = {s.node: s for s in self.store.steps(run_id)}
        command = resume_command(run_id, self.settings)
        self.on_event("finish", {"run_id": run_id, "status": final, "error": first_error, "resume": command})
        return PipelineRun(run_id, pipeline.name, final, steps, outputs, first_error, command, self.settings)


def _numbers(outputs: Any) -> dict[str, float]:
    if isinstance(outputs, bool):
        return {}
    if isinstance(outputs, int | float):
        return {"output": float(outputs)}
    out: dict[str, float] = {}
    if isinstance(outputs, dict):
        for k, v in outputs.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[str(k)] = float(v)
            elif isinstance(v, dict):
                for k2, v2 in v.items():
                    if isinstance(v2, int | float) and not isinstance(v2, bool):
                        out[f"{k}.{k2}"] = float(v2)
    return out


def _metric(key: str, value: float) -> Any:
    from loopline.tracking.types import Metric

    return Metric(key, value, now_ms(), 0)
