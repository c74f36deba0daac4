"""One step run as a self-contained task: what any executor ships to wherever the step runs.

A ``StepTask`` holds plain data only (where the step's code is, its inputs as references into the
artifact store, its constant arguments, the run's seed), so it can be pickled to a fresh process
or a Ray worker. ``execute`` loads the inputs, seeds the random generators, calls the function,
checks the output against the return annotation and stores it; the runner, not the task, then
registers the output in the metadata store. ``python -m loopline.pipelines.worker IN OUT`` runs one
pickled task in a fresh interpreter (the local executor's process mode): spawn-safe by design,
since nothing of the parent's ``__main__`` is re-imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import random
import sys
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from loopline.clock import now_ms
from loopline.errors import InvalidInput, LooplineError
from loopline.pipelines.graph import DatasetSource

_MISSING: Any = object()


@dataclass
class InputRef:
    """An upstream output (or a dataset) a step reads, by reference."""

    node: str
    serializer: str
    digest: str
    path: str = ""
    inline: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: DatasetSource | None = None  # set for dataset inputs; ``path`` is then the resolved ref
    value: Any = field(default=_MISSING, repr=False)  # in-process only, never pickled

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "value"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.value = _MISSING


@dataclass
class StepTask:
    run_id: str
    pipeline: str
    node: str
    step: str
    code: tuple[str, str, str]  # module, file, qualname
    args: dict[str, Any]  # handles replaced by InputRef
    artifacts_uri: str
    output_prefix: str
    seed: int
    serializer: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    fn: Callable[..., Any] | None = field(default=None, repr=False)  # in-process shortcut

    @property
    def workspace(self) -> str:
        """The workspace whose artifact store holds the run's outputs (its LOOPLINE_WORKSPACE)."""
        return self.env.get("LOOPLINE_WORKSPACE") or "default"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "fn": None}


@dataclass
class StepResult:
    ok: bool
    serializer: str = ""
    digest: str = ""
    size: int = 0
    path: str = ""
    inline: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    retryable: bool = True
    started_ms: int = 0
    ended_ms: int = 0
    value: Any = field(default=_MISSING, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "value"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.value = _MISSING

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING


def load_code(module: str, file: str, qualname: str) -> Callable[..., Any]:
    """Import a step's function in this process (by module name, or from its file for scripts)."""
    mod = sys.modules.get(module)
    if mod is None or (module == "__main__" and not _has(mod, qualname)):
        if file and (module == "__main__" or module.startswith("_loopline_")):
            mod = load_file(file)
        else:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                if not file:
                    raise
                mod = load_file(file)  # a module imported from a folder this process lacks on sys.path
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    fn: Callable[..., Any] = getattr(obj, "fn", obj)  # a @step's function, or the function itself
    return fn


def _has(mod: Any, qualname: str) -> bool:
    return hasattr(mod, qualname.split(".")[0])


def module_name_for(file: str) -> str:
    import blake3

    real = os.path.realpath(file)
    stem = "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(real))[0])
    return f"_loopline_{stem}_{blake3.blake3(real.encode()).hexdigest()[:8]}"


def load_file(file: str) -> Any:
    """Import a Python file as a module (its folder goes on ``sys.path`` for sibling imports).

    The module gets a stable name derived from the file's path, never ``__main__``: code under
    ``if __name__ == "__main__":`` does not run again.
    """
    name = module_name_for(file)
    if name in sys.modules:
        return sys.modules[name]
    if not os.path.isfile(file):
        raise InvalidInput(f"No Python file {file!r}.", hint="Name a pipeline as path/to/file.py:function.")
    folder = os.path.dirname(os.path.realpath(file))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def seed_everything(seed: int) -> None:
    """Seed ``random`` and, when they are imported, NumPy's and PyTorch's global generators."""
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _resolve(value: Any, load: Callable[[InputRef], Any]) -> Any:
    if isinstance(value, InputRef):
        return load(value)
    if isinstance(value, list):
        return [_resolve(v, load) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, load) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, load) for k, v in value.items()}
    return value


def _check_type(fn: Callable[..., Any], step: str, value: Any) -> None:
    """Refuse an output that plainly contradicts the step's return annotation."""
    try:
        hint = typing.get_type_hints(fn).get("return", object)
    except Exception:  # forward references to names imported only for type checking
        return
    if not isinstance(hint, type) or hint is object:
        return
    if hint is float and isinstance(value, int):
        return
    if not isinstance(value, hint):
        raise InvalidInput(
            f"Step {step!r} returned a {type(value).__name__}, but its annotation says {hint.__name__}.",
            hint="Fix the step's return value or its return annotation.",
        )


def execute(task: StepTask, store: Any = None, keep_value: bool = False) -> StepResult:
    """Run one step: load inputs, seed, call, check, store the output. Never raises."""
    from loopline.artifacts import open_artifact_store
    from loopline.pipelines import serializers

    started = now_ms()
    try:
        store = store or open_artifact_store(task.artifacts_uri, workspace=task.workspace)
        fn = task.fn or load_code(*task.code)
        cache: dict[str, Any] = {}

        def load(ref: InputRef) -> Any:
            if ref.value is not _MISSING:
                return ref.value
            if ref.node not in cache:
                if ref.source is not None:
                    cache[ref.node] = serializers.read_dataset(ref.source, ref.path, task.env)
                else:
                    cache[ref.node] = serializers.load(ref.serializer, store, ref.path, ref.inline, ref.meta)
            return cache[ref.node]

        args = {k: _resolve(v, load) for k, v in task.args.items()}
        seed_everything(task.seed)
        try:
            value = _call(fn, args)
        except Exception as e:
            return StepResult(
                False,
                error=f"{type(e).__name__}: {e}",
                traceback=traceback.format_exc(),
                started_ms=started,
                ended_ms=now_ms(),
            )
        _check_type(fn, task.step, value)
        out = serializers.dump(value, store, task.output_prefix, step=task.node, forced=task.serializer)
        result = StepResult(
            True,
            out.serializer,
            out.digest,
            out.size,
            out.path,
            out.inline,
            out.meta,
            started_ms=started,
            ended_ms=now_ms(),
        )
        if keep_value:
            result.value = value
        return result
    except LooplineError as e:  # our own refusals (unserialisable output, wrong type): not retried
        msg = e.message + (f" ({e.hint})" if e.hint else "")
        return StepResult(False, error=msg, retryable=False, started_ms=started, ended_ms=now_ms())
    except Exception as e:  # loading inputs or code failed
        return StepResult(
            False,
            error=f"{type(e).__name__}: {e}",
            traceback=traceback.format_exc(),
            started_ms=started,
            ended_ms=now_ms(),
        )


def _call(fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    import inspect

    sig = inspect.signature(fn)
    positional, keywords = [], {}
    for name, p in sig.parameters.items():
        if name not in args:
            continue
        if p.kind is p.VAR_POSITIONAL:
            positional.extend(args[name])
        elif p.kind is p.VAR_KEYWORD:
            keywords.update(args[name])
        elif p.kind is p.POSITIONAL_ONLY:
            positional.append(args[name])
        else:
            keywords[name] = args[name]
    return fn(*positional, **keywords)


def strip_for_transfer(task: StepTask) -> StepTask:
    """The task as another process receives it (no in-memory values, no function object)."""
    return replace(task, fn=None)


def main(argv: list[str]) -> int:
    """Run the task pickled in ``argv[0]``; pickle its result to ``argv[1]`` (see ``worker.py``)."""
    with open(argv[0], "rb") as f:
        task: StepTask = pickle.load(f)
    result = execute(task)
    tmp = argv[1] + ".part"
    with open(tmp, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, argv[1])
    return 0
