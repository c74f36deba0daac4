"""``@pipeline``: a function whose body wires steps together; the DAG follows from the data flow.

    @loopline.pipeline
    def train(lr: float = 0.1, data: str = "datasets:/churn@latest"):
        raw = loopline.pipelines.dataset(data)
        feats = featurize(raw)
        return {"auc": evaluate(fit(feats, lr), feats)}

The body runs once, when a run starts, with the parameters' values: each step call records a
node and returns a handle, so plain Python (loops over parameters, helper functions, calls of
other pipelines) shapes the graph, but a step's *output* cannot steer it. ``compose`` builds a
pipeline the other way, Hamilton-style, from steps whose parameter names name other steps.
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from loopline.errors import InvalidInput
from loopline.names import check_name
from loopline.pipelines.graph import TRACE, Graph, Handle, Node, Step, Trace

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.pipelines.results import PipelineRun

_REQUIRED: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


class Pipeline:
    """A named DAG of steps with parameters (see the module docstring)."""

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        *,
        name: str | None = None,
        seed: int | None = None,
        builder: Callable[[dict[str, Any]], Graph] | None = None,
        params: Iterable[Param] | None = None,
    ) -> None:
        if fn is None and (builder is None or name is None):
            raise InvalidInput("A pipeline needs a function, or a name and a graph builder.")
        self.fn = fn
        self.name = name or (fn.__name__ if fn is not None else "")
        check_name("pipeline", self.name)
        self.seed = seed
        self._builder = builder
        self._target: str | None = None
        if params is not None:
            self.params = {p.name: p for p in params}
        else:
            assert fn is not None
            hints = _hints(fn)
            self.params = {
                n: Param(n, hints.get(n, p.annotation), p.default)
                for n, p in inspect.signature(fn).parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            }
        if fn is not None:
            self.__doc__ = fn.__doc__
            self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    # ---- where the code is (for resume, rerun and schedules) ---------------------------------

    @property
    def target(self) -> str:
        """``/abs/file.py:func`` or ``package.module:func``: how another process loads this pipeline."""
        if self._target:
            return self._target
        if self.fn is None:
            return ""
        module = sys.modules.get(self.fn.__module__)
        file = getattr(module, "__file__", None)
        if (self.fn.__module__ == "__main__" or self.fn.__module__.startswith("_loopline_")) and file:
            return f"{os.path.realpath(file)}:{self.fn.__qualname__}"
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @target.setter
    def target(self, value: str) -> None:
        self._target = value

    @property
    def source_path(self) -> str:
        """The file (or folder) whose git state the run records."""
        head = self.target.rsplit(":", 1)[0]
        if head.endswith(".py"):
            return head
        module = sys.modules.get(self.fn.__module__) if self.fn is not None else None
        return getattr(module, "__file__", None) or os.getcwd()

    # ---- parameters and graph ----------------------------------------------------------------

    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``given``, coerced to the annotated types; unknown or missing names fail."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise InvalidInput(
                f"Pipeline {self.name!r} has no parameter {', '.join(map(repr, unknown))}.",
                hint=f"Its parameters: {', '.join(self.params) or 'none'}.",
            )
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if name in given:
                out[name] = coerce(self.name, name, given[name], p.annotation)
            elif p.required:
                raise InvalidInput(
                    f"Pipeline {self.name!r} needs parameter {name!r}, which has no default.",
                    hint=f"Pass it: -p {name}=VALUE, a --config file, or {self.name}.run({name}=…).",
                )
            else:
                out[name] = p.default
        return out

    def build(self, values: Mapping[str, Any]) -> Graph:
        """Trace the body once with ``values`` and return the graph (checked for cycles)."""
        if self._builder is not None:
            graph = self._builder(dict(values))
        else:
            assert self.fn is not None
            trace = Trace(self.name)
            token = TRACE.set(trace)
            try:
                outputs = self.fn(**values)
            finally:
                TRACE.reset(token)
            trace.graph.outputs = outputs
            graph = trace.graph
        if not any(n.step is not None for n in graph.nodes.values()):
            raise InvalidInput(
                f"Pipeline {self.name!r} calls no step.",
                hint="Decorate the functions it calls with @loopline.step.",
            )
        graph.order()
        return graph

    # ---- running -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside another pipeline's body: inline this one's steps. Elsewhere: ``run(**kwargs)``."""
        if TRACE.get() is not None and self.fn is not None:
            return self.fn(*args, **kwargs)
        if args:
            raise InvalidInput(f"Pass the parameters of pipeline {self.name!r} by name.")
        return self.run(**kwargs)

    def run(
        self,
        *,
        settings: Settings | None = None,
        executor: Any = None,
        cache: bool = True,
        seed: int | None = None,
        raise_on_failure: bool = True,
        **params: Any,
    ) -> PipelineRun:
        """Run the pipeline now with ``params``; returns the finished run (its ``outputs`` too).

        Raises ``StepFailed`` (naming the step and the resume command) when a step failed,
        unless ``raise_on_failure=False``.
        """
        from loopline.pipelines.runner import Runner

        with Runner(settings, executor=executor) as runner:
            result = runner.run(self, params, cache=cache, seed=seed)
        if raise_on_failure:
            result.raise_for_status()
        return result


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # names imported only under TYPE_CHECKING: keep the raw annotations
        return dict(getattr(fn, "__annotations__", {}))


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce(pipeline: str, name: str, value: Any, annotation: Any) -> Any:
    """Make ``value`` match a plain annotation (int, float, bool, str); other annotations pass."""
    if annotation in (_REQUIRED, Any) or not isinstance(annotation, type):
        return value
    if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
        return value
    try:
        if annotation is float and isinstance(value, int | str) and not isinstance(value, bool):
            return float(value)
        if annotation is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if annotation is int and isinstance(value, str):
            return int(value)
        if annotation is bool and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if annotation is str and isinstance(value, int | float | bool):
            return str(value)
    except ValueError:
        pass
    if annotation in (int, float, bool, str):
        raise InvalidInput(
            f"Parameter {name!r} of pipeline {pipeline!r} must be a {annotation.__name__}, got {value!r}.",
            hint=f"Pass e.g. -p {name}=… with a {annotation.__name__} value.",
        )
    return value


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    *, name: str | None = None, seed: int | None = None
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, seed: int | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline: its parameters are the pipeline's, its body wires the steps.

    Args:
        name: the pipeline's name (default: the function's); runs are ``pipelines:/<name>/<run>``.
        seed: the seed every step starts from (default: a fresh one per run, recorded so that
            ``loopline pipeline rerun`` repeats it).

    Example:
        >>> @pipeline
        ... def double_twice(x: int = 1):
        ...     return double(double(x))
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, seed=seed)

    return wrap(fn) if fn is not None else wrap


def compose(name: str, steps: Iterable[Step], *, seed: int | None = None) -> Pipeline:
    """A pipeline from steps whose parameter names are other steps' names (as in Hamilton).

    A parameter named like another step consumes that step's output; every other parameter is a
    pipeline parameter. The outputs are the steps no other step consumes. A cycle is an error.
    """
    by_name: dict[str, Step] = {}
    for s in steps:
        if not isinstance(s, Step):
            raise InvalidInput(f"compose() takes @step functions, got {s!r}.")
        if s.name in by_name:
            raise InvalidInput(f"Two steps are named {s.name!r} in pipeline {name!r}.")
        by_name[s.name] = s
    params: dict[str, Param] = {}
    for s in by_name.values():
        hints = _hints(s.fn)
        for pname, p in s.signature.parameters.items():
            if pname not in by_name:
                default = p.default if pname not in params else params[pname].default
                params[pname] = Param(pname, hints.get(pname, p.annotation), default)

    def build(values: dict[str, Any]) -> Graph:
        graph = Graph(name)
        consumed: set[str] = set()
        for s in by_name.values():
            args: dict[str, Any] = {}
            for pname in s.signature.parameters:
                if pname in by_name:
                    args[pname] = Handle(pname, pname)
                    consumed.add(pname)
                else:
                    args[pname] = values[pname]
            deps = tuple(p for p in s.signature.parameters if p in by_name)
            graph.nodes[s.name] = Node(s.name, s, args, deps)
        graph.outputs = {n: Handle(n, n) for n in by_name if n not in consumed}
        return graph

    return Pipeline(None, name=name, seed=seed, builder=build, params=params.values())


def load_target(target: str) -> Pipeline:
    """The pipeline ``path/to/file.py:name`` or ``package.module:name`` names."""
    from loopline.pipelines.task import load_file

    head, sep, attr = target.rpartition(":")
    if not sep or not head or not attr:
        raise InvalidInput(
            f"Not a pipeline reference: {target!r}.",
            hint="Use path/to/file.py:pipeline or package.module:pipeline.",
        )
    if head.endswith(".py") or os.sep in head or "/" in head:
        path = Path(head).expanduser()
        module = load_file(str(path.resolve()))
        resolved = f"{os.path.realpath(path)}:{attr}"
    else:
        import importlib

        try:
            module = importlib.import_module(head)
        except ImportError as e:
            raise InvalidInput(
                f"Cannot import {head!r}: {e}.", hint="Check the module name or pass a file path."
            ) from None
        resolved = target
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = [k for k, v in vars(module).items() if isinstance(v, Pipeline)]
            raise InvalidInput(
                f"{head} has no pipeline {attr!r}.", hint=f"Pipelines there: {', '.join(found) or 'none'}."
            )
        obj = getattr(obj, part)
    if not isinstance(obj, Pipeline):
        raise InvalidInput(f"{target} is not a pipeline.", hint="Decorate it with @loopline.pipeline.")
    obj.target = resolved
    return obj
