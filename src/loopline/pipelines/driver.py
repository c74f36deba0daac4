"""The driver of one pipeline run: ready steps → cache or executor → registration.

``Runner`` (``runner.py``) prepares a run and closes it; a :class:`RunDriver` takes it from its first
step to its last, on the backends it is handed (tracking client, pipeline store, executor).

Each turn: launch retries that are due; for every pending step whose inputs are all done, compute
its cache key (BLAKE3 of its code fingerprint, its inputs' digests and its constant arguments),
then reuse a registered output under that key or submit the step (within the executor's CPU
slots); write everything that changed in one transaction; wait for the next step to finish. A
failure, after the step's retries with exponential back-off, marks its dependants
``upstream_failed``; independent branches carry on.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from loopline.clock import now_ms
from loopline.errors import InvalidInput
from loopline.pipelines.graph import Graph, Step, handles_in, substitute
from loopline.pipelines.task import _MISSING, InputRef, StepResult, StepTask
from loopline.pipelines.types import Finished, StepRecord

if TYPE_CHECKING:
    from loopline.artifacts import ArtifactStore
    from loopline.context import Context
    from loopline.pipelines.executors import Executor
    from loopline.pipelines.store import PipelineStore
    from loopline.tracking.client import Client

DONE = ("succeeded", "cached")
BROKEN = ("failed", "upstream_failed")

Listener = Callable[[str, dict[str, Any]], None]


def digest(*parts: str) -> str:
    import blake3

    return str(blake3.blake3("\0".join(parts).encode()).hexdigest())


def constants(step: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments that are not step outputs (handles become ``{"$step": node}``), as JSON data."""
    out = {}
    for k, v in args.items():
        const = substitute(v, lambda h: {"$step": h.node})
        try:
            json.dumps(const, sort_keys=True)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"Argument {k!r} of step {step!r} is a {type(v).__name__}: it cannot be in a cache key.",
                hint="Pass JSON data (numbers, strings, lists, dicts) or the output of another step.",
            ) from None
        out[k] = const
    return out


def why(
    last: StepRecord | None,
    fingerprint: str,
    inputs: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    cache: bool,
    step_cache: bool,
    interrupted: bool,
) -> str:
    """Why a step runs: what differs from its newest earlier run (shown by ``--explain``)."""
    if interrupted:
        return "ran: it did not finish before the run was interrupted, or its code or inputs changed since"
    if not cache:
        return "ran: caching is off for this run (--no-cache)"
    if not step_cache:
        return "ran: the step has cache=False"
    if last is None:
        return "ran: first run of this step"
    out = []
    if last.fingerprint != fingerprint:
        out.append("its code changed")
    changed = sorted(k for k in set(inputs) | set(last.inputs) if inputs.get(k) != last.inputs.get(k))
    if changed:
        out.append(f"input{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed")
    diffs = [
        f"{k} {last.params.get(k)!r} → {params.get(k)!r}"
        for k in sorted(set(params) | set(last.params))
        if params.get(k) != last.params.get(k)
    ]
    if diffs:
        out.append("parameters changed: " + ", ".join(diffs))
    if not out:
        return "ran: its earlier output is gone or is not reusable"
    return f"ran: {'; '.join(out)} since run {last.run_id}"


def artifacts_uri(context: Context) -> str:
    """Where steps store outputs: the artifact root, or the server (its artifact proxy) when remote."""
    settings = context.settings
    return settings.tracking_uri if context.is_remote else settings.artifacts_uri


def task_env(context: Context) -> dict[str, str]:
    """The ``LOOPLINE_*`` settings a step needs wherever it runs (to read ``datasets:/`` inputs)."""
    s = context.settings
    env = {
        "LOOPLINE_TRACKING_URI": s.tracking_uri,
        "LOOPLINE_WORKSPACE": s.workspace,
        "LOOPLINE_USER": s.user,
    }
    if not context.is_remote:  # a server keeps its own artifact root
        env["LOOPLINE_ARTIFACTS_URI"] = s.artifacts_uri
    return env


def output_exists(artifacts: ArtifactStore, hit: StepRecord) -> bool:
    """Whether a cached output's bytes are still in the artifact store (gc may have taken them)."""
    if hit.output_inline is not None:
        return True
    path = hit.output_path
    with contextlib.suppress(Exception):
        if hit.serializer == "model":
            return bool(artifacts.list(path))
        if hasattr(artifacts, "exists"):
            return bool(artifacts.exists(path))
        parent = path.rpartition("/")[0]  # a store without exists() (the server's proxy): list
        return any(f.path == path for f in artifacts.list(parent))
    return False


def register_model(client: Client, model_name: str, path: str, meta: dict[str, Any], run_id: str) -> str:
    """Register a step's model output (its files stay where the step wrote them) as a new version."""
    from loopline.registry import RegistryClient
    from loopline.uris import artifact_location

    mv = RegistryClient(client).register(
        artifact_location(path), model_name, run_id=run_id, digests=meta.get("files", {})
    )
    return f"models:/{model_name}/{mv.version}"


@dataclass(frozen=True)
class Plan:
    """What a launched step will be registered with."""

    key: str
    inputs: dict[str, str]
    params: dict[str, Any]
    reason: str
    cpus: float


class RunDriver:
    """Runs the steps of one pipeline run to completion (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        store: PipelineStore,
        executor: Executor,
        on_event: Listener,
        name: str,
        graph: Graph,
        order: Sequence[str],
        run_id: str,
        seed: int,
        datasets: dict[str, InputRef],
        *,
        cache: bool,
        done: Mapping[str, StepRecord],
    ) -> None:
        self.client, self.store, self.executor, self.on_event = client, store, executor, on_event
        self.name, self.graph, self.run_id, self.seed = name, graph, run_id, seed
        self.datasets, self.cache, self.done = datasets, cache, done
        self.refs: dict[str, InputRef] = dict(datasets)
        self.status: dict[str, str] = dict.fromkeys(datasets, "succeeded")
        for n, rec in done.items():
            self.refs[n] = _ref(n, rec)
        self.pending = [n for n in order if graph.nodes[n].step is not None]
        # Ready steps are found by counting unsettled inputs, so a turn costs O(changes), not O(steps).
        self.position = {n: i for i, n in enumerate(order)}
        self.children = graph.children()
        self.blocked = {n: {d for d in graph.nodes[n].deps if d not in self.status} for n in self.pending}
        self.ready = {n for n in self.pending if not self.blocked[n]}
        fingerprints = {self.step(n).fingerprint for n in self.pending}
        self.known = store.known_keys(sorted(fingerprints)) if cache else set()
        self.running: dict[Future[StepResult], tuple[str, Plan]] = {}
        self.retry: list[tuple[float, str, Plan]] = []
        self.attempts: dict[str, int] = {}
        self.free = executor.capacity
        self.unsaved: list[Finished] = []  # written with the next batch of starts, in one transaction
        self.previous = store.last_steps(name, run_id)
        # In-memory outputs are dropped once every consumer has its inputs (outputs of the run are kept).
        self.consumers = {n: len(c) for n, c in self.children.items()}
        self.keep = {h.node for h in handles_in(graph.outputs)}
        self.first_error = ""
        self.env = task_env(client.context)

    def step(self, n: str) -> Step:
        step = self.graph.nodes[n].step
        assert step is not None
        return step

    def emit(self, kind: str, **data: Any) -> None:
        self.on_event(kind, data)

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self.emit("start", run_id=self.run_id, name=self.name, total=len(self.pending))
        while self.pending or self.running or self.retry:
            started = self._launch_due_retries() + self._launch_ready()
            if started or self.unsaved:
                self.store.progress(self.run_id, finished=self.unsaved, started=started, start_time=now_ms())
                self.unsaved.clear()
            if not self.running:
                if self.retry:
                    time.sleep(max(0.0, min(r[0] for r in self.retry) - time.monotonic()))
                    continue
                break
            timeout = max(0.0, min(r[0] for r in self.retry) - time.monotonic()) if self.retry else None
            finished, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                n, plan = self.running.pop(fut)
                if self.free is not None:
                    self.free += plan.cpus
                self._collect(n, plan, fut.result())
        self.store.progress(self.run_id, finished=self.unsaved)
        self.unsaved.clear()

    def _launch_due_retries(self) -> list[str]:
        now = time.monotonic()
        due = [r for r in self.retry if r[0] <= now]
        for item in due:
            self.retry.remove(item)
            self._launch(item[1], item[2])
        return [n for _, n, _ in due]

    def _launch_ready(self) -> list[str]:
        started: list[str] = []
        progressed = True
        while progressed:  # a cache hit or a skip can make further steps ready at once
            progressed = False
            for n in sorted(self.ready, key=self.position.__getitem__):
                outcome = self._consider(n)
                if outcome != "waiting":
                    self.ready.discard(n)
                    self.pending.remove(n)
                    self._release_inputs(n)
                    progressed = True
                if outcome == "started":
                    started.append(n)
        return started

    def _consider(self, n: str) -> str:
        """Skip, reuse or launch step ``n`` if its inputs are ready: "waiting", "settled" or "started"."""
        node, step = self.graph.nodes[n], self.step(n)
        states = [self.status.get(d) for d in node.deps]
        if any(s in BROKEN for s in states):
            bad = [d for d in node.deps if self.status.get(d) in BROKEN]
            self._finish(
                n,
                StepRecord(
                    self.run_id,
                    self.name,
                    n,
                    node.name,
                    "upstream_failed",
                    reason=f"not run: upstream {', '.join(bad)} failed",
                ),
            )
            return "settled"
        if not all(s in DONE for s in states):
            return "waiting"
        inputs = {d: self.refs[d].digest for d in node.deps}
        params = constants(n, node.args)
        key = digest(
            step.fingerprint,
            json.dumps(inputs, sort_keys=True),
            json.dumps(params, sort_keys=True),
            step.options.serializer or "",
        )
        kept = self.done.get(n)
        if kept is not None and kept.cache_key == key:
            self._settle(n, kept.status)
            self.emit(
                "step",
                node=n,
                status=kept.status,
                duration_ms=kept.duration_ms,
                reason="kept: finished before the run was interrupted",
            )
            return "settled"
        if self.cache and step.options.cache and self._reuse(n, key):
            return "settled"
        capacity = self.executor.capacity
        need = min(step.options.cpus, capacity or 0.0)
        if self.free is not None and self.running and need > self.free:
            return "waiting"  # for slots (a step never needs more than all of them)
        reason = why(
            self.previous.get(n),
            step.fingerprint,
            inputs,
            params,
            cache=self.cache,
            step_cache=step.options.cache,
            interrupted=kept is not None,
        )
        self._launch(n, Plan(key, inputs, params, reason, need))
        return "started"

    def _settle(self, n: str, status: str) -> None:
        self.status[n] = status
        for c in self.children[n]:
            waiting = self.blocked.get(c)
            if waiting is not None and n in waiting:
                waiting.discard(n)
                if not waiting:
                    self.ready.add(c)

    def _release_inputs(self, n: str) -> None:
        """Forget in-memory upstream values ``n`` was the last consumer of (retries reload them)."""
        for d in dict.fromkeys(self.graph.nodes[n].deps):
            self.consumers[d] -= 1
            ref = self.refs.get(d)
            if (
                self.consumers[d] == 0
                and d not in self.keep
                and ref is not None
                and ref.value is not _MISSING
            ):
                self.refs[d] = replace(ref, value=_MISSING)

    def _reuse(self, n: str, key: str) -> bool:
        if self.known is not None and key not in self.known:
            return False  # no registered output under this key when the run started: no query
        hit = self.store.find_cached(key)
        if hit is None or not output_exists(self.client.artifacts, hit):
            return False
        self.refs[n] = _ref(n, hit)
        t = now_ms()
        model = hit.output_meta.get("model_version", "")
        self._finish(
            n,
            replace(
                hit,
                run_id=self.run_id,
                status="cached",
                attempts=0,
                cached_from=hit.run_id,
                reason=f"skipped: same code, inputs and parameters as run {hit.run_id}",
                error="",
                start_time=t,
                end_time=t,
            ),
            [model] if model else [],
        )
        return True

    def _launch(self, n: str, plan: Plan) -> None:
        node, step = self.graph.nodes[n], self.step(n)
        self.attempts[n] = self.attempts.get(n, 0) + 1
        args = {k: substitute(v, lambda h: self.refs[h.node]) for k, v in node.args.items()}
        task = StepTask(
            self.run_id,
            self.name,
            n,
            step.name,
            step.code_ref(),
            args,
            artifacts_uri(self.client.context),
            f"pipelines/{self.name}/{self.run_id}/{n}/{self.attempts[n]}",
            self.seed,
            step.options.serializer,
            self.env,
            step.fn,
        )
        self.running[self.executor.submit(task, step.options)] = (n, plan)
        if self.free is not None:
            self.free -= plan.cpus
        self.emit("step_start", node=n, attempt=self.attempts[n])

    def _collect(self, n: str, plan: Plan, result: StepResult) -> None:
        node, opts = self.graph.nodes[n], self.step(n).options
        tries = self.attempts[n]
        if result.ok and opts.register and result.serializer != "model":
            result = StepResult(
                False,
                error=f"Step {n!r} has register={opts.register!r} but returned no model "
                f"(it was stored as {result.serializer}).",
                retryable=False,
                started_ms=result.started_ms,
                ended_ms=result.ended_ms,
            )
        base = StepRecord(
            self.run_id,
            self.name,
            n,
            node.name,
            "running",
            tries,
            plan.key,
            self.step(n).fingerprint,
            plan.inputs,
            plan.params,
            reason=plan.reason,
            start_time=result.started_ms or None,
            end_time=result.ended_ms or now_ms(),
        )
        if result.ok:
            produced, meta = [], dict(result.meta)
            if opts.register:
                produced = [register_model(self.client, opts.register, result.path, meta, self.run_id)]
                meta["model_version"] = produced[0]
            self.refs[n] = InputRef(
                n,
                result.serializer,
                result.digest,
                result.path,
                result.inline,
                meta,
                value=result.value if result.has_value else _MISSING,
            )
            self._finish(
                n,
                replace(
                    base,
                    status="succeeded",
                    serializer=result.serializer,
                    output_path=result.path,
                    output_digest=result.digest,
                    output_size=result.size,
                    output_inline=result.inline,
                    output_meta=meta,
                ),
                produced,
            )
        elif result.retryable and tries <= opts.retries:
            delay = opts.retry_delay * opts.backoff ** (tries - 1)
            self.retry.append((time.monotonic() + delay, n, plan))
            self.emit("retry", node=n, attempt=tries, delay=delay, error=result.error)
        else:
            message = f"Step {n!r} failed{f' (after {tries} attempts)' if tries > 1 else ''}: {result.error}"
            self.first_error = self.first_error or message
            detail = message + ("\n" + result.traceback if result.traceback else "")
            self._finish(n, replace(base, status="failed", error=detail))

    def _finish(self, n: str, rec: StepRecord, produced: Sequence[str] = ()) -> None:
        deps = self.graph.nodes[n].deps
        upstream = tuple(d for d in deps if self.graph.nodes[d].step is not None)
        datasets = tuple(
            self.refs[d].path
            for d in deps
            if d in self.datasets and self.refs[d].path.startswith("datasets:/")
        )
        self.unsaved.append(Finished(rec, upstream, datasets, tuple(produced)))
        self._settle(n, rec.status)
        self.emit(
            "step", node=n, status=rec.status, reason=rec.reason, duration_ms=rec.duration_ms, error=rec.error
        )


def _ref(n: str, rec: StepRecord) -> InputRef:
    return InputRef(
        n, rec.serializer, rec.output_digest, rec.output_path, rec.output_inline, dict(rec.output_meta)
    )
