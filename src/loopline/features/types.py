"""The feature registry's records, whichever store keeps them (SQL here, REST through a server)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a dataclass type

VIEW_URI_KINDS = ("feature_view", "on_demand_feature_view", "feature_service")


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    kind: str
    name: str
    spec: Mapping[str, Any]
    digest: str
    creation_time: int
    last_updated_time: int


@dataclass(frozen=True, slots=True)
class Materialization:
    id: int
    view: str
    start_ms: int
    end_ms: int
    status: str
    rows: int
    cursor: list[Any] | None
    error: str
    start_time: int
    last_updated_time: int
    end_time: int | None


@dataclass(frozen=True, slots=True)
class DefinitionChange:
    """``op`` is add, change or remove; ``spec``/``digest`` are None for a removal."""

    op: str
    kind: str
    name: str
    spec: Mapping[str, Any] | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """One edge of the lineage graph around a feature object."""

    from_uri: str
    to_uri: str
    relation: str


def object_uri(kind: str, name: str) -> str:
    return f"features:/{name}" if kind in VIEW_URI_KINDS else f"features:/entity/{name}"


def to_json(record: Any) -> dict[str, Any]:
    """A record as the JSON object the REST API sends (its fields by name)."""
    return asdict(record)


def from_json(cls: type[T], obj: Any) -> T:
    """A record from its JSON object; InvalidInput (400 on the server) when a field is missing."""
    all_fields = fields(cls)
    required = [f.name for f in all_fields if f.default is MISSING]
    if not isinstance(obj, Mapping) or any(n not in obj for n in required):
        raise InvalidInput(f"Expected a {cls.__name__} object with {required}, got {obj!r:.200}.")
    return cls(**{f.name: obj[f.name] for f in all_fields if f.name in obj})


__all__ = [
    "VIEW_URI_KINDS",
    "DefinitionChange",
    "LineageEdge",
    "Materialization",
    "StoredDefinition",
    "from_json",
    "object_uri",
    "to_json",
]
