"""One page of a listing, the shape every store's search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; pass ``next_page_token`` back to get the next one."""

    items: list[T] = field(default_factory=list)
    next_page_token: str | None = None
