"""``@step``: a typed Python function that is one node of a pipeline.

    @loopline.step
    def featurize(raw: pd.DataFrame) -> pd.DataFrame: ...

    @loopline.step(cpus=2, memory="4GiB", retries=2, timeout=600, cache=False)
    def fit(features: pd.DataFrame, lr: float) -> Model: ...

Outside a pipeline body a step is its plain function (call it in tests as you would any
function); inside one, a call records a node and returns a handle to its future output.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from loopline.errors import InvalidInput
from loopline.pipelines.graph import TRACE, Handle, Node, handles_in

SERIALIZERS = ("json", "pandas", "polars", "arrow", "numpy", "model", "pickle")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(value: str | int | None) -> int | None:
    """``"4GiB"`` → bytes (``None`` stays ``None``; an int is already bytes)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    m = _MEMORY.match(str(value))
    if not m:
        raise InvalidInput(f"Invalid memory {value!r}.", hint="Use a size such as '512MiB' or '4GiB'.")
    return int(float(m[1]) * _UNITS[(m[2] or "B").lower()])


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: resources, retries, timeout, caching, isolation, serializer, registration."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None  # bytes
    retries: int = 0
    retry_delay: float = 1.0  # seconds before the first retry; doubled (``backoff``) each time
    backoff: float = 2.0
    timeout: float | None = None  # seconds; a step with a timeout runs in a process of its own
    cache: bool = True
    isolate: bool = False  # run in a fresh process even on the local executor
    serializer: str | None = None  # force one (e.g. "pickle"); default: chosen by the output's type
    register: str | None = None  # register the output (a model) as a version of this model name


class Step:
    """A function wrapped as a pipeline step (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions, name: str | None = None) -> None:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise InvalidInput(f"@step needs a function, got {fn!r}.")
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options
        self.signature = inspect.signature(fn)
        if self.signature.return_annotation is inspect.Signature.empty:
            raise InvalidInput(
                f"Step {self.name!r} has no return type annotation.",
                hint=f"Annotate what it returns, e.g. `def {fn.__name__}(...) -> pd.DataFrame:` "
                "(`-> None` for a step that returns nothing): the type is part of the step's contract.",
            )
        if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
            raise InvalidInput(
                f"Step {self.name!r} is a coroutine or generator function.",
                hint="Make the step a plain function that returns its whole output.",
            )
        self.__wrapped__ = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = TRACE.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise InvalidInput(
                f"Step {self.name!r} was called with the wrong arguments: {e}.",
                hint=f"Its signature is {self.name}{self.signature}.",
            ) from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        deps = tuple(dict.fromkeys(h.node for v in arguments.values() for h in handles_in(v)))
        return trace.add(Node(trace.new_id(self.name), self, arguments, deps))

    @property
    def fingerprint(self) -> str:
        """BLAKE3 of this step's code and of the project code it calls (computed once per process)."""
        if self._fingerprint is None:
            from loopline.pipelines.fingerprint import fingerprint

            self._fingerprint = fingerprint(self.fn)
        return self._fingerprint

    def code_ref(self) -> tuple[str, str, str]:
        """(module, file, qualname): enough for another process to import this step."""
        module = sys.modules.get(self.fn.__module__)
        file = getattr(module, "__file__", None) or ""
        return self.fn.__module__, file, self.fn.__qualname__


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
    from loopline.pipelines.graph import DatasetSource

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
