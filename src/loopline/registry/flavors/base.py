"""What a flavor's ``save`` returns, and the trust rules every ``load`` follows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput

ALLOW_PICKLE_ENV = "LOOPLINE_ALLOW_PICKLE"


@dataclass(frozen=True)
class Saved:
    """A flavor's part of the MLmodel file, and what the model needs installed."""

    flavor: dict[str, Any]
    pyfunc: dict[str, Any]
    requirements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Trust:
    """What a load may do. ``verified``: every file matched the registry's digests."""

    verified: bool
    allow_pickle: bool = False

    @property
    def code_allowed(self) -> bool:
        """Whether the user opted in to running the model author's code (argument or environment)."""
        return self.allow_pickle or os.environ.get(ALLOW_PICKLE_ENV) == "1"

    def require_code_execution(self, what: str) -> None:
        """Refuse to unpickle unless the user opted in (loading a pickle runs its code)."""
        if self.code_allowed:
            return
        raise InvalidInput(
            f"Loading this model means unpickling {what}, which runs code stored in the model.",
            hint="Only do this for models from people you trust: pass allow_pickle=True to load_model "
            f"(or set {ALLOW_PICKLE_ENV}=1).",
        )


def pinned(*packages: str) -> list[str]:
    """``name==version`` for each installed package (skipping those that are not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in packages:
        try:
            out.append(f"{p}=={version(p)}")
        except PackageNotFoundError:
            continue
    return out
