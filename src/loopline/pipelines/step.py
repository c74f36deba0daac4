"""``@step``: a typed Python function that is one node of a pipeline.

    @loopline.step
    def featurize(raw: pd.DataFrame) -> pd.DataFrame: ...

    @loopline.step(cpus=2, memory="4GiB", retries=2, timeout=600, cache=False)
    def fit(features: pd.DataFrame, lr: float) -> Model: ...

Outside a pipeline body a step is its plain function (call it in tests as you would any
function); inside one, a call records a node and returns a handle to its future output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, overload

from loopline.errors import InvalidInput
from loopline.pipelines.graph import TRACE, DatasetSource, Handle, Node, Step
from loopline.pipelines.options import SERIALIZERS, StepOptions, parse_memory


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: str | int | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    backoff: float = 2.0,
    timeout: float | None = None,
    cache: bool = True,
    isolate: bool = False,
    serializer: str | None = None,
    register: str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: str | int | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    backoff: float = 2.0,
    timeout: float | None = None,
    cache: bool = True,
    isolate: bool = False,
    serializer: str | None = None,
    register: str | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step; use bare (``@step``) or with options (``@step(retries=2)``).

    Args:
        name: the step's name (default: the function's).
        cpus, gpus, memory: what one run of the step needs (``memory`` like ``"4GiB"``). Ray
            schedules by them; the local executor counts ``cpus`` against its worker slots.
        retries: how many times to retry after an exception, waiting ``retry_delay`` seconds,
            then ``backoff`` times longer each time.
        timeout: seconds before the step is killed (it then runs in a process of its own).
        cache: reuse an earlier identical run's output (same code, inputs and parameters).
        isolate: run in a fresh Python process even on the local executor.
        serializer: force how the output is stored (``"pickle"`` for anything picklable).
        register: register the output, a model, as a new version of this registered model.

    Example:
        >>> @step(retries=2)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(4)
        8
    """
    if serializer is not None and serializer not in SERIALIZERS:
        raise InvalidInput(
            f"Unknown serializer {serializer!r}.", hint=f"Use one of {', '.join(SERIALIZERS)}."
        )
    if retries < 0 or cpus < 0 or gpus < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInput("Step retries, cpus and gpus must not be negative; a timeout must be positive.")
    options = StepOptions(
        cpus=float(cpus),
        gpus=float(gpus),
        memory=parse_memory(memory),
        retries=int(retries),
        retry_delay=float(retry_delay),
        backoff=float(backoff),
        timeout=float(timeout) if timeout is not None else None,
        cache=cache,
        isolate=isolate,
        serializer=serializer,
        register=register,
    )

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, options, name)

    return wrap(fn) if fn is not None else wrap


def dataset(ref: str, *, format: str = "pandas") -> Any:
    """Read a dataset in a pipeline: ``datasets:/name/3``, ``datasets:/name@alias`` or a file path.

    Inside a pipeline body this records an input node (its version is resolved and recorded when
    the run starts, and it is an edge in the lineage graph); outside one it loads the data.
    """
    if format not in ("pandas", "polars", "arrow"):
        raise InvalidInput(f"Unknown dataset format {format!r}.", hint="Use pandas, polars or arrow.")
    source = DatasetSource(ref, format)
    trace = TRACE.get()
    if trace is None:
        from loopline.pipelines.serializers import read_dataset

        return read_dataset(source, resolved=ref)
    if ref.startswith("datasets:/"):
        stem = ref.removeprefix("datasets:/").split("/")[0].split("@")[0]
    else:
        stem = ref.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    base = re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "dataset"
    handle: Handle = trace.add(Node(trace.new_id(f"{base}_data"), None, {}, (), source))
    return handle
