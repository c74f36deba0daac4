"""Loading a registry-verified skops file without skops' import-time census of trusted types.

``import skops.io`` builds its default trusted-type lists when it is imported: it runs
``sklearn.utils.all_estimators()``, which imports every scikit-learn module, and lists numpy's and
scipy's ufuncs. That is about 0.6 s, a third of a cold ``load_model`` of a small pipeline, spent
on types the file does not name. So for a file whose digests the registry verified, Loopline runs
skops' own node classes (``_general``, ``_numpy``: estimators, containers, arrays) from a private
copy of the ``skops.io`` module tree whose ``_trusted_types`` holds only the lists that cost
nothing, and trusts no more than skops would:

- the cheap default lists (builtins, containers, numpy dtypes and bit generators) are skops' own,
  computed the same way, and apply per node kind as in skops;
- a scikit-learn type is trusted when it is one ``all_estimators()`` would list — a public,
  non-abstract ``BaseEstimator`` subclass reachable from a public scikit-learn package — checked
  for the types the file names only;
- the types the model's MLmodel lists (``skops_trusted_types``), as ``load`` does for verified files.

Anything else — a type outside those, a node kind the private copy does not load (trees, sparse
matrices, functions…), another skops protocol, another skops layout — returns None and the caller
loads with ``skops.io`` itself, whose answer is the final one. The copy lives under its own module
names, so ``skops.io`` stays untouched for the rest of the process.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
import types
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

_PRIVATE = "loopline._skops_io"  # the private copy's package name (no file: a namespace we build)


@functools.cache
def _private() -> types.SimpleNamespace | None:
    """skops' loader modules under private names, with a cheap ``_trusted_types``; None if skops'
    layout is not the one this was written against."""
    spec = importlib.util.find_spec("skops.io")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        import numpy as np

        package = types.ModuleType(_PRIVATE)
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules[_PRIVATE] = package
        sys.modules[f"{_PRIVATE}._trusted_types"] = _cheap_trusted_types(np)
        audit = importlib.import_module(f"{_PRIVATE}._audit")
        for name in ("_general", "_numpy"):
            audit.NODE_TYPE_MAPPING.update(importlib.import_module(f"{_PRIVATE}.{name}").NODE_TYPE_MAPPING)
        return types.SimpleNamespace(
            audit=audit,
            utils=importlib.import_module(f"{_PRIVATE}._utils"),
            protocol=importlib.import_module(f"{_PRIVATE}._protocol").PROTOCOL,
            untrusted=importlib.import_module(f"{_PRIVATE}.exceptions").UntrustedTypesFoundException,
        )
    except (ImportError, AttributeError):
        return None


def _cheap_trusted_types(np: Any) -> types.ModuleType:
    """``skops.io._trusted_types`` with the lists that cost nothing computed as skops computes them,
    and empty ones for scikit-learn estimators and ufuncs (trusted per file instead, or refused)."""
    primitives: list[type] = [int, float, str, bool]
    containers: list[type] = [list, set, map, tuple]
    mod = types.ModuleType(f"{_PRIVATE}._trusted_types")
    mod.__dict__.update(
        PRIMITIVES_TYPES=primitives,
        PRIMITIVE_TYPE_NAMES=["builtins." + t.__name__ for t in primitives],
        CONTAINER_TYPES=containers,
        CONTAINER_TYPE_NAMES=["builtins." + t.__name__ for t in containers],
        SKLEARN_ESTIMATOR_TYPE_NAMES=[],
        SKLEARN_INTERNAL_TYPE_NAMES=[],
        SCIPY_UFUNC_TYPE_NAMES=[],
        NUMPY_UFUNC_TYPE_NAMES=[],
        NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES=sorted(
            f"numpy.random.{attr}"
            for attr in dir(np.random)
            if isinstance(obj := getattr(np.random, attr), type)
            and issubclass(obj, np.random.BitGenerator)
            and obj is not np.random.BitGenerator
        ),
        NUMPY_DTYPE_TYPE_NAMES=sorted(
            {name for dtype in np.sctypeDict.values() if (name := _type_name(dtype)).startswith("numpy")}
        ),
    )
    return mod


def _type_name(t: Any) -> str:
    """A type's name as skops writes and compares it (``pickle.whichmodule``'s module)."""
    import pickle

    return f"{pickle.whichmodule(t, t.__name__)}.{t.__name__}"  # type: ignore[attr-defined]


def _named_types(node: Any) -> Iterator[str]:
    """Every ``module.Class`` a skops schema names."""
    if isinstance(node, dict):
        if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
            yield f"{node['__module__']}.{node['__class__']}"
        for value in node.values():
            yield from _named_types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _named_types(value)


def is_listed_estimator(name: str) -> bool:
    """Whether ``sklearn.utils.all_estimators()`` would list the type ``name`` (so skops trusts it
    by default), decided for this one type: a public, non-abstract ``BaseEstimator`` subclass that a
    public scikit-learn package (no ``._`` in its path, none of the folders it skips) exposes under
    its own public name. Imports only scikit-learn modules, and only that type's."""
    module_name, _, class_name = name.rpartition(".")
    if not module_name.startswith("sklearn.") or not class_name or class_name.startswith("_"):
        return False
    try:
        from sklearn.base import BaseEstimator
        from sklearn.utils.discovery import _MODULE_TO_IGNORE

        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return False
    if (
        not isinstance(cls, type)
        or not issubclass(cls, BaseEstimator)
        or class_name == "BaseEstimator"
        or getattr(cls, "__abstractmethods__", None)
        or _type_name(cls) != name
    ):
        return False
    parts = module_name.split(".")
    for depth in range(len(parts), 1, -1):  # the defining module, then each package above it
        public = ".".join(parts[:depth])
        if "._" in public or any(p in _MODULE_TO_IGNORE for p in parts[:depth]):
            continue
        if inspect.isclass(exposed := getattr(sys.modules.get(public), class_name, None)) and exposed is cls:
            return True
    return False


def load_verified(file: Path, trusted: Sequence[str] | None) -> tuple[bool, Any]:
    """``(True, obj)`` with the object in a registry-verified skops ``file``, or ``(False, None)``
    when only ``skops.io`` itself can load it. ``trusted``: the types the model's MLmodel lists."""
    private = _private()
    if private is None:
        return False, None
    try:
        zf = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        return False, None  # skops says what is wrong with it
    with zf:
        try:
            schema, context = private.utils.read_schema(zf)
        except (KeyError, TypeError, ValueError):
            return False, None
        if context.protocol != private.protocol:  # older files have loaders of their own
            return False, None
        listed = set(trusted or ())
        extra = sorted({n for n in _named_types(schema) if n.startswith("sklearn.") and n not in listed})
        if not all(is_listed_estimator(n) for n in extra):
            return False, None
        allowed = sorted(listed) + extra
        try:
            tree = private.audit.get_tree(schema, context, trusted=allowed)
            private.audit.audit_tree(tree, trusted=allowed)
        except (private.untrusted, TypeError, KeyError):  # a type or node kind left to skops
            return False, None
        return True, tree.construct()
