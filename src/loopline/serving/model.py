"""One loaded model version behind its batcher: what a request's rows go through to become predictions.

Requests are checked against the signature when they are decoded (:mod:`loopline.serving.schema`),
so a batch goes straight to the flavor's predict function without the registry checking it a second
time. Warm-up predicts on rows made from the signature: it pays the first-call costs before the
server reports ready, and finds out whether the model returns one row per input row (if not, it is
served unbatched).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from loopline.errors import LooplineError
from loopline.registry import LoadedModel
from loopline.registry.flavors import module as flavor_module
from loopline.serving import outputs
from loopline.serving.batching import BatchConfig, Batcher
from loopline.serving.schema import InputSchema, Rows, compile_schema

log = logging.getLogger("loopline.serving")


class ModelFailed(LooplineError):
    """The model raised on an input that passed the signature check (MLflow answers 400 too)."""

    status_code = 400
    error_code = "BAD_REQUEST"


class ServedModel:
    """A model version ready to answer: its schema, its batcher, and who it is in the registry."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        name: str,
        version: str,
        batching: BatchConfig | None = None,
        on_batch: Callable[[ServedModel, int, float], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.name = name
        self.version = version
        self.uri = f"models:/{name}/{version}" if version else loaded.uri
        self.source = loaded.uri  # what it was loaded from (the resolved URI or the folder)
        self.schema: InputSchema = compile_schema(loaded.signature)
        self.config = batching or BatchConfig()
        if not self.schema.batchable:
            self.config = BatchConfig(1, 0.0, self.config.max_queue_rows, self.config.concurrency)
        fn = getattr(flavor_module(loaded.flavor), "predict", None)
        native = loaded.native
        self._predict: Callable[[Any], Any] = (
            (lambda data: fn(native, data)) if fn is not None else (lambda data: native.predict(data))
        )
        self.batcher: Batcher[Rows, Any] = Batcher(
            self._run,
            self.config,
            on_batch=(lambda rows, secs: on_batch(self, rows, secs)) if on_batch else None,
        )
        self.ready = False
        self.output_metadata: list[dict[str, Any]] = []

    @classmethod
    def load(
        cls,
        uri: str,
        *,
        name: str | None = None,
        version: str | None = None,
        batching: BatchConfig | None = None,
        on_batch: Callable[[ServedModel, int, float], None] | None = None,
        allow_pickle: bool = False,
        client: Any = None,
    ) -> ServedModel:
        """Load ``uri`` (``models:/name/3`` or a folder) and warm it up. Blocking."""
        from pathlib import Path

        from loopline.registry import load_model

        loaded = load_model(uri, allow_pickle=allow_pickle, client=client)
        mv = loaded.version
        model = cls(
            loaded,
            name=name or (mv.name if mv is not None else Path(uri).name),
            version=version or (str(mv.version) if mv is not None else ""),
            batching=batching,
            on_batch=on_batch,
        )
        model.warm_up()
        return model

    @property
    def batchable(self) -> bool:
        return self.config.max_batch_size > 1

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}" if self.version else self.name

    def warm_up(self) -> None:
        """Predict on made-up rows: the first-call costs are paid and batchability is checked."""
        started = time.perf_counter()
        try:
            rows = self.schema.example(2)
            raw = self._predict(self.schema.model_input(rows.data))
            out = outputs.normalize(raw, rows.n)
            self.output_metadata = outputs.output_metadata(out)
        except outputs.OutputMismatch as e:
            log.warning("%s: %s; serving it without batching", self.uri, e)
            self.config = BatchConfig(1, 0.0, self.config.max_queue_rows, self.config.concurrency)
            self.batcher.config = self.config
        except Exception as e:  # made-up rows may be outside what the model accepts
            log.warning(
                "%s: warm-up prediction failed (%s: %s); serving anyway", self.uri, type(e).__name__, e
            )
        self.ready = True
        log.info("%s ready (warm-up %.0f ms)", self.uri, (time.perf_counter() - started) * 1000)

    def _run(self, items: list[Rows]) -> list[Any]:
        """On a prediction thread: one predict for the batch, cut back into each request's rows."""
        data = self.schema.join([r.data for r in items])
        total = sum(r.n for r in items)
        try:
            raw = self._predict(self.schema.model_input(data))
        except LooplineError:
            raise
        except Exception as e:
            raise ModelFailed(f"The model could not predict on this input: {type(e).__name__}: {e}") from e
        try:
            out = outputs.normalize(raw, total)
        except outputs.OutputMismatch as e:
            if len(items) == 1:
                return [raw]
            raise ModelFailed(f"The model cannot be batched: {e}.") from e
        if len(items) == 1:
            return [out]
        results = []
        start = 0
        for r in items:
            results.append(outputs.take(out, start, start + r.n))
            start += r.n
        return results

    async def predict(self, rows: Rows) -> Any:
        """Predictions for one request's rows, batched with whatever else is in flight."""
        size = self.config.max_batch_size
        if rows.n <= size or not self.batchable:
            return await self.batcher.submit(rows, min(rows.n, size))
        # Bigger than a batch: cut into chunks so that no predict call exceeds max_batch_size rows.
        chunks = [self.schema.split(rows, i, min(i + size, rows.n)) for i in range(0, rows.n, size)]
        parts = await asyncio.gather(*(self.batcher.submit(c, c.n) for c in chunks))
        return outputs.join(list(parts))

    def metadata(self) -> dict[str, Any]:
        """OIP model metadata: name, versions, platform, and tensors from the signature."""
        return {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": f"loopline_{self.loaded.flavor}",
            "inputs": self.schema.metadata(),
            "outputs": self.output_metadata,
        }

    def close(self) -> None:
        self.batcher.close()

    def __repr__(self) -> str:
        return f"ServedModel({self.uri!r}, batch={self.config.max_batch_size})"
