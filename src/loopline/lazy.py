"""The lazy public names of a package (PEP 562): ``__getattr__ = lazy_names(__name__, _LAZY)``.

A package lists each public name with the module it loads from; nothing is imported until a name is
first used, which keeps ``import loopline`` and the lean CLI paths cheap. Standard library only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that loads ``table[name]`` on first use and keeps the
    value in the package's namespace (so later lookups are plain attribute reads)."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
