"""The DAG: steps, nodes (a step called with bound arguments, or a dataset read), handles, and order.

A ``Step`` is a function wrapped by ``@step`` (:mod:`loopline.pipelines.step`): outside a pipeline
body it is the plain function; inside one (while ``TRACE`` holds a ``Trace``) a call records a
``Node`` and returns a ``Handle``, a promise of that step's output. Handles may sit in a step's
arguments directly or inside lists, tuples and dicts (fan-in); the edges of the graph are exactly
the handles found there. ``Step`` and ``Node`` refer to each other, so they live together here.
"""

from __future__ import annotations

import contextvars
import heapq
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput
from loopline.pipelines.options import StepOptions


class Handle:
    """The future output of one node of a pipeline being traced."""

    __slots__ = ("node", "step")

    def __init__(self, node: str, step: str) -> None:
        self.node = node
        self.step = step

    def __repr__(self) -> str:
        return f"<output of step {self.node!r}>"

    def _opaque(self, what: str) -> InvalidInput:
        return InvalidInput(
            f"Cannot {what} the output of step {self.node!r} inside a pipeline body: it does not exist "
            "yet while the pipeline is being traced.",
            hint="Pass the whole output to another @step and do the work there.",
        )

    def __bool__(self) -> bool:
        raise self._opaque("branch on")

    def __iter__(self) -> Iterator[Any]:
        raise self._opaque("unpack or iterate over")

    def __getitem__(self, key: object) -> Any:
        raise self._opaque("index")


@dataclass(frozen=True)
class DatasetSource:
    """A dataset read by the pipeline: a ``datasets:/…`` URI or a Parquet/CSV/JSON file."""

    ref: str
    format: str = "pandas"


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


@dataclass
class Node:
    """One call of a step (or one dataset read) in the graph."""

    id: str
    step: Step | None
    args: dict[str, Any]
    deps: tuple[str, ...]
    source: DatasetSource | None = None

    @property
    def name(self) -> str:
        return self.step.name if self.step is not None else "dataset"


@dataclass
class Graph:
    """The nodes of one pipeline, by id, and the structure of its outputs (with handles in it)."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: Any = None

    def order(self) -> list[str]:
        """Node ids in a topological order (ties in insertion order); a cycle is an error."""
        position = {n: i for i, n in enumerate(self.nodes)}
        missing = {d for n in self.nodes.values() for d in n.deps if d not in self.nodes}
        if missing:
            raise InvalidInput(
                f"Pipeline {self.name!r} refers to unknown steps: {', '.join(sorted(missing))}."
            )
        indegree = {n: len(set(node.deps)) for n, node in self.nodes.items()}
        children = self.children()
        ready = [(position[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, n = heapq.heappop(ready)
            out.append(n)
            for c in children[n]:
                indegree[c] -= 1
                if indegree[c] == 0:
                    heapq.heappush(ready, (position[c], c))
        if len(out) < len(self.nodes):
            raise InvalidInput(
                f"Pipeline {self.name!r} has a cycle: {' → '.join(self._cycle(set(self.nodes) - set(out)))}.",
                hint="A step cannot consume its own output, directly or through other steps.",
            )
        return out

    def _cycle(self, stuck: set[str]) -> list[str]:
        """One cycle among the nodes a topological sort could not place, for the error message."""
        start = min(stuck, key=list(self.nodes).index)
        path, seen, n = [start], {start}, start
        while True:
            n = next(d for d in self.nodes[n].deps if d in stuck)
            if n in seen:
                return [*path[path.index(n) :], n][::-1]
            path.append(n)
            seen.add(n)

    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for n, node in self.nodes.items():
            for d in dict.fromkeys(node.deps):
                out[d].append(n)
        return out

    def dependants(self, node: str) -> set[str]:
        """Every node downstream of ``node``."""
        children, out, todo = self.children(), set(), [node]
        while todo:
            for c in children[todo.pop()]:
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    def to_json(self) -> dict[str, Any]:
        nodes = []
        for n in self.nodes.values():
            entry: dict[str, Any] = {"id": n.id, "step": n.name, "deps": list(dict.fromkeys(n.deps))}
            if n.source is not None:
                entry["dataset"] = n.source.ref
            nodes.append(entry)
        return {"nodes": nodes, "outputs": to_template(self.outputs)}


def handles_in(value: Any) -> Iterator[Handle]:
    """The handles in an argument (searched through lists, tuples and dicts)."""
    if isinstance(value, Handle):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from handles_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from handles_in(v)


def substitute(value: Any, replace: Callable[[Handle], Any]) -> Any:
    """``value`` with every handle replaced by ``replace(handle)``."""
    if isinstance(value, Handle):
        return replace(value)
    if isinstance(value, list):
        return [substitute(v, replace) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute(v, replace) for v in value)
    if isinstance(value, dict):
        return {k: substitute(v, replace) for k, v in value.items()}
    return value


def to_template(value: Any) -> Any:
    """A JSON form of an output structure: ``{"$step": node}`` where a handle was."""
    if isinstance(value, Handle):
        return {"$step": value.node}
    if isinstance(value, list | tuple):
        return [to_template(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_template(v) for k, v in value.items()}
    return value


def from_template(template: Any, lookup: Callable[[str], Any]) -> Any:
    if isinstance(template, dict):
        if set(template) == {"$step"}:
            return lookup(template["$step"])
        return {k: from_template(v, lookup) for k, v in template.items()}
    if isinstance(template, list):
        return [from_template(v, lookup) for v in template]
    return template


class Trace:
    """The graph being built while a pipeline body runs once (see ``Pipeline.build``)."""

    def __init__(self, name: str) -> None:
        self.graph = Graph(name)
        self._counts: dict[str, int] = {}

    def new_id(self, base: str) -> str:
        n = self._counts.get(base, 0) + 1
        self._counts[base] = n
        return base if n == 1 else f"{base}_{n}"

    def add(self, node: Node) -> Handle:
        self.graph.nodes[node.id] = node
        return Handle(node.id, node.name)


# The pipeline body being traced in this thread/task: step calls consult it to return handles
# instead of running. A context variable, so concurrent traces (threads, sweeps) never mix.
TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("loopline_pipeline_trace", default=None)
