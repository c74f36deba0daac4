"""What a server is serving right now, and how it changes without a restart.

The live state is one immutable :class:`Table` (routers, the versions by name, the shadow). A
refresh resolves the deployment again — its spec, re-read only when the store's revision of it
moved (one small read per poll), and every alias it names — loads and warms any version it does not
have yet, off the event loop, then swaps the table in one assignment. A
request that picked a model before the swap finishes on that model (it holds a reference), so an
alias move or a weight change drops nothing; a version that left the table has its prediction
threads stopped once it has answered everything it had queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.serving.batching import BatchConfig
from loopline.serving.deployments import Router
from loopline.serving.http import NotReady
from loopline.serving.model import ServedModel
from loopline.serving.resolve import resolve_uri
from loopline.serving.store import DeploymentStore, open_deployment_store
from loopline.serving.types import Deployment, DeploymentSpec

log = logging.getLogger("loopline.serving")


@dataclass(frozen=True)
class Resolved:
    """A deployment with every alias turned into a version: what is compared between polls."""

    routes: tuple[tuple[str, float], ...]  # (models:/name/version or folder, weight)
    shadow: tuple[str, float] | None  # (uri, sample rate)
    sticky_header: str | None


@dataclass(frozen=True)
class Table:
    resolved: Resolved
    deployment: str
    router: Router[ServedModel]
    by_name: dict[str, Router[ServedModel]]
    by_version: dict[tuple[str, str], ServedModel]
    primaries: tuple[ServedModel, ...]
    weights: dict[str, float]  # model key -> share of traffic (0..1)
    shadow: ServedModel | None = None
    shadow_rate: float = 0.0
    names: frozenset[str] = field(default_factory=frozenset)


class Runtime:
    """Loads, serves and reloads one deployment (a single model is a deployment of one route)."""

    def __init__(
        self,
        *,
        model_uri: str | None = None,
        deployment: str | None = None,
        batching: BatchConfig | None = None,
        poll_interval: float = 5.0,
        allow_pickle: bool = False,
        name: str | None = None,
        version: str | None = None,
        client: Any = None,
        on_batch: Callable[[ServedModel, int, float], None] | None = None,
        on_change: Callable[[Table], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if (model_uri is None) == (deployment is None):
            raise InvalidInput(
                "Serve either a model URI or a deployment.",
                hint="loopline serve MODEL_URI | --deployment NAME",
            )
        self.model_uri = model_uri
        self.deployment = deployment
        self.batching = batching or BatchConfig()
        self.poll_interval = poll_interval
        self.allow_pickle = allow_pickle
        self.name = name
        self.version = version
        self._client = client
        self.on_batch = on_batch
        self.on_change = on_change
        self.rng = rng or random.Random()
        self.table: Table | None = None
        self.error: LooplineError | None = None
        self._loaded: dict[str, ServedModel] = {}  # resolved URI -> model (reused across refreshes)
        self._store: DeploymentStore | None = None
        self._current: Deployment | None = None  # the deployment as last read, at its revision
        self._task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._loaded_event = asyncio.Event()

    # ---- resolution (blocking: called on a thread) -----------------------------------------

    def _tracking(self) -> Any:
        if self._client is None:
            from loopline.tracking import default_client

            self._client = default_client()
        return self._client

    def _registry(self) -> Any:
        from loopline.registry import RegistryClient

        return RegistryClient(self._tracking())

    def spec(self) -> DeploymentSpec:
        if self.model_uri is not None:
            return DeploymentSpec.single(self.model_uri, self.name)
        assert self.deployment is not None
        if self._store is None:
            self._store = open_deployment_store(self._tracking().context)
        current = self._current
        if current is None or self._store.get_revision(self.deployment) != current.revision:
            current = self._current = self._store.get_deployment(self.deployment)
        return current.spec

    def resolve(self) -> tuple[DeploymentSpec, Resolved]:
        spec = self.spec()
        needs_registry = any(r.model.startswith("models:/") for r in spec.routes) or (
            spec.shadow is not None and spec.shadow.model.startswith("models:/")
        )
        registry = self._registry() if needs_registry else None
        weights: dict[str, float] = {}
        for r in spec.routes:
            uri = resolve_uri(r.model, registry)
            weights[uri] = weights.get(uri, 0.0) + r.weight  # two aliases on one version: one route
        shadow = None
        if spec.shadow is not None and spec.shadow.sample_rate > 0:
            shadow = (resolve_uri(spec.shadow.model, registry), spec.shadow.sample_rate)
        return spec, Resolved(tuple(weights.items()), shadow, spec.sticky_header)

    def _load(self, uri: str) -> ServedModel:
        model = self._loaded.get(uri)
        if model is None:
            single = self.model_uri is not None
            model = ServedModel.load(
                uri,
                name=self.name if single else None,
                version=self.version if single else None,
                batching=self.batching,
                on_batch=self.on_batch,
                allow_pickle=self.allow_pickle,
                client=self._tracking() if uri.startswith("models:/") else None,
            )
            model.source = uri
            log.info("loaded %s", model.uri)
        return model

    def build(self, spec: DeploymentSpec, resolved: Resolved) -> Table:
        """Load what is missing and make the table (blocking)."""
        models = {uri: self._load(uri) for uri, w in resolved.routes if w > 0}
        shadow = self._load(resolved.shadow[0]) if resolved.shadow else None
        total = sum(w for _, w in resolved.routes)
        primaries = tuple(models.values())
        choices = [(models[uri], w) for uri, w in resolved.routes if w > 0]
        by_name: dict[str, list[tuple[ServedModel, float]]] = {}
        for m, w in choices:
            by_name.setdefault(m.name, []).append((m, w))
        by_version = {(m.name, m.version): m for m in (*primaries, *([shadow] if shadow else []))}
        routers = {n: Router(c, self.rng) for n, c in by_name.items()}
        router = Router(choices, self.rng)
        routers.setdefault(spec.name, router)
        return Table(
            resolved=resolved,
            deployment=spec.name,
            router=router,
            by_name=routers,
            by_version=by_version,
            primaries=primaries,
            weights={m.key: w / total for m, w in choices},
            shadow=shadow,
            shadow_rate=resolved.shadow[1] if resolved.shadow else 0.0,
            names=frozenset(routers),
        )

    def load_now(self) -> Table:
        spec, resolved = self.resolve()
        table = self.build(spec, resolved)
        self._install(table)
        return table

    def _install(self, table: Table) -> None:
        old = self.table
        self.table = table
        keep = {*table.primaries, *([table.shadow] if table.shadow else [])}
        self._loaded = {m.source: m for m in keep}
        if self.on_change is not None:
            self.on_change(table)
        if old is not None:
            gone = {*old.primaries, *([old.shadow] if old.shadow else [])} - keep
            for m in gone:
                log.info("retiring %s", m.uri)
                self._retire(m)

    def _retire(self, model: ServedModel) -> None:
        async def later() -> None:
            await model.batcher.drain()
            model.close()

        try:
            task = asyncio.get_running_loop().create_task(later())
        except RuntimeError:  # no loop (tests driving the runtime directly)
            model.close()
            return
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # ---- the event loop's side -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        t = self.table
        return t is not None and all(m.ready for m in t.primaries)

    async def start(self) -> None:
        """Load in the background; readiness turns on once every model is loaded and warmed up."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def loaded(self) -> None:
        """Wait until the first load finished (``ready``) or failed (``error``)."""
        await self._loaded_event.wait()

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self.load_now)
        except LooplineError as e:
            self.error = e
            log.error("could not load the model: %s", e)
            return
        except Exception as e:
            self.error = LooplineError(f"could not load the model: {type(e).__name__}: {e}")
            log.exception("could not load the model")
            return
        finally:
            self._loaded_event.set()
        # Everything loaded so far (libraries, the model) lives as long as the process: move it out of
        # the collector's sight. Otherwise each full collection, set off by the objects requests leave
        # in the inference log's buffer, walks the whole heap: 100+ ms pauses at p99 (measured).
        gc.freeze()
        table = self.table
        assert table is not None
        for m in table.primaries:
            log.info("serving %s (%.0f%% of traffic)", m.uri, table.weights.get(m.key, 0) * 100)
        if table.shadow is not None:
            log.info("shadowing %s (%.0f%% of requests)", table.shadow.uri, table.shadow_rate * 100)
        if self.poll_interval > 0:
            while True:
                await asyncio.sleep(self.poll_interval)
                try:
                    await self.refresh()
                except Exception as e:  # the registry is down: keep serving what we have
                    log.warning("refresh failed (still serving the previous versions): %s", e)

    async def refresh(self) -> bool:
        """Re-resolve; if anything changed, load what is new and swap. True if the table changed."""
        spec, resolved = await asyncio.to_thread(self.resolve)
        current = self.table
        if current is not None and current.resolved == resolved and current.deployment == spec.name:
            return False
        table = await asyncio.to_thread(self.build, spec, resolved)
        gc.freeze()  # the new model lives on: keep it out of full collections too (see _run)
        self._install(table)
        log.info("deployment %s now serves %s", spec.name, ", ".join(f"{m.uri}" for m in table.primaries))
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        t = self.table
        if t is not None:
            for m in {*t.primaries, *([t.shadow] if t.shadow else [])}:
                await m.batcher.drain()
                m.close()

    # ---- per request -----------------------------------------------------------------------

    def live(self) -> Table:
        t = self.table
        if t is None or not self.ready:
            if self.error is not None:
                raise NotReady(f"The model failed to load: {self.error.message}")
            raise NotReady("The model is still loading.", hint="Wait for /v2/health/ready to answer 200.")
        return t

    def choose(
        self, name: str | None = None, version: str | None = None, key: str | None = None
    ) -> ServedModel:
        t = self.live()
        if version is not None:
            model = t.by_version.get((name or "", version))
            if model is None:
                raise NotFound(
                    f"Model {name!r} version {version!r} is not served here.",
                    hint="Served: " + ", ".join(f"{n}/{v}" for n, v in t.by_version) + ".",
                )
            return model
        if name is None:
            return t.router.choose(key)
        router = t.by_name.get(name)
        if router is None:
            raise NotFound(
                f"Model {name!r} is not served here.", hint=f"Served: {', '.join(sorted(t.names))}."
            )
        return router.choose(key)
