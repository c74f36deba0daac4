"""Code fingerprints: what a step's cache key knows about its code.

A step's fingerprint hashes its own source and, transitively, the source of every *project*
function and class it refers to by a global name (``helper(x)``, ``helpers.clean(x)``, a class it
instantiates) and the values of simple constants it reads (``THRESHOLD = 0.5``). Installed
packages (stdlib, site-packages) and Loopline itself are not hashed: their versions are recorded
in the run's environment instead, so upgrading pandas does not invalidate every cache.

Sources are compared as syntax trees without docstrings, so reformatting a step, editing a
comment or its docstring keeps its cache; changing what it computes does not. What cannot be seen
statically (a method called on a local object, code loaded by name at run time) is not hashed:
mark such steps ``cache=False`` or move the code into a function the step calls by name.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Iterator
from typing import Any

_SIMPLE = (int, float, str, bytes, bool, type(None))


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def is_project_module(name: str, roots: tuple[str, ...] | None = None) -> bool:
    """True for modules of the user's project: not stdlib, not installed, not Loopline itself."""
    if name == "loopline" or name.startswith("loopline."):
        return False
    if name == "__main__":
        return True
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        return False  # builtin or namespace module
    real = os.path.realpath(file)
    if "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep):
        return False
    return not real.startswith(roots if roots is not None else _library_roots())


def _normalized_source(obj: Any) -> str:
    """The object's syntax tree without docstrings, or its bytecode when the source is unavailable."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        code = getattr(obj, "__code__", None)
        return marshal.dumps(code).hex() if code is not None else repr(obj)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):  # a docstring
                node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []  # @step(retries=…) options do not change what the step computes
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


class _Walker:
    def __init__(self) -> None:
        self.roots = _library_roots()
        self.seen: set[int] = set()
        self.parts: list[str] = []

    def project(self, obj: Any) -> bool:
        return is_project_module(getattr(obj, "__module__", "") or "", self.roots)

    def visit(self, obj: Any) -> None:
        obj = getattr(obj, "fn", obj) if type(obj).__name__ == "Step" else obj
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            if not self.project(obj):
                return
            self.parts.append(f"def {obj.__qualname__}: {_normalized_source(obj)}")
            self.references(obj)
        elif isinstance(obj, type):
            if not self.project(obj):
                return
            self.parts.append(f"class {obj.__qualname__}: {_normalized_source(obj)}")
            for member in vars(obj).values():
                func = getattr(member, "__func__", member)  # staticmethod / classmethod
                if isinstance(func, types.FunctionType):
                    self.seen.add(id(func))
                    self.references(func)

    def references(self, fn: types.FunctionType) -> None:
        names = list(dict.fromkeys(_names(fn.__code__)))
        scope: dict[str, Any] = dict(fn.__globals__)
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                scope[var] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for name in names:
            if name not in scope:
                continue
            value = scope[name]
            if isinstance(value, types.ModuleType):
                if is_project_module(value.__name__, self.roots):
                    for attr in names:  # helpers.clean: the attribute names this code uses
                        if attr in vars(value):
                            self.value(f"{value.__name__}.{attr}", vars(value)[attr])
            else:
                self.value(name, value)

    def value(self, qualified: str, value: Any) -> None:
        if isinstance(value, types.FunctionType | type) or type(value).__name__ == "Step":
            self.visit(value)
        elif isinstance(value, _SIMPLE) or (
            isinstance(value, tuple | frozenset) and all(isinstance(v, _SIMPLE) for v in value)
        ):
            self.parts.append(f"const {qualified} = {value!r}")


def fingerprint(fn: Any) -> str:
    """BLAKE3 hex of ``fn``'s code and of the project code it reaches (see the module docstring)."""
    import blake3

    walker = _Walker()
    walker.visit(fn)
    return str(blake3.blake3("\n".join(walker.parts).encode()).hexdigest())


def describe(fn: Any) -> list[str]:
    """What the fingerprint of ``fn`` covers: one line per function, class or constant."""
    walker = _Walker()
    walker.visit(fn)
    return [p.split(":", 1)[0].split(" = ", 1)[0] for p in walker.parts]
