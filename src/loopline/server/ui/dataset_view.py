"""A dataset as its page shows it: its versions, one version's schema, profile and validations, and
the diff between two versions.

Read from the data store of the request's context; the diff is ``DataClient.diff`` (the same as
``loopline data diff`` and ``GET data/diff``): schema, rows, files and, between two profiled
versions, each column's shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopline.context import Context
from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord
from loopline.errors import NotFound


@dataclass(frozen=True, slots=True)
class DatasetPage:
    name: str
    versions: list[DatasetVersion]  # newest first
    shown: DatasetVersion  # the version whose schema, profile and validations the page shows
    validations: list[ValidationRecord]  # of ``shown``, newest first
    validated: dict[int, bool]  # version -> whether its newest validation passed
    diff: dict[str, Any] | None  # between ``?a=`` and ``?b=``, when both are given

    @property
    def columns(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        """(column, type, its profile or None) of the shown version, in schema order."""
        profiled = dict(self.shown.profile.get("columns") or {})
        return [(c, t, profiled.get(c)) for c, t in self.shown.schema.items()]


def _store(context: Context) -> Any:
    from loopline.data.store import open_data_store

    return open_data_store(context)


def list_all(context: Context) -> list[DatasetSummary]:
    datasets: list[DatasetSummary] = _store(context).list_datasets()
    return datasets


def load(context: Context, name: str, version: int | None, a: int | None, b: int | None) -> DatasetPage:
    """``NotFound`` for a dataset or version that is not there."""
    store = _store(context)
    versions: list[DatasetVersion] = store.list_versions(name)
    shown = versions[0] if version is None else next((v for v in versions if v.version == version), None)
    if shown is None:
        raise NotFound(
            f"Dataset {name!r} has no version {version}.",
            hint=f"Its versions: {', '.join(str(v.version) for v in versions)}.",
        )
    validated: dict[int, bool] = {}
    every: list[ValidationRecord] = store.list_validations(name)
    for record in every:  # newest first: the first seen of each version is its newest
        validated.setdefault(record.version, record.success)
    diff = None
    if a is not None and b is not None:
        from loopline.data.client import DataClient

        diff = DataClient(context=context).diff(f"datasets:/{name}/{a}", f"datasets:/{name}/{b}")
    mine = [r for r in every if r.version == shown.version]
    return DatasetPage(name, versions, shown, mine, validated, diff)


__all__ = ["DatasetPage", "list_all", "load"]
