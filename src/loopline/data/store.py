"""What a data store does, whichever backend does it, and which one a context gets.

``SqlDataStore`` keeps dataset versions in the metadata database (SQLite or PostgreSQL);
``RestDataStore`` forwards the same calls to ``loopline server``. Both hand out version numbers
the same way: ``create_version`` makes a new version only when the content (its manifest digest)
differs from the latest one, so adding the same content twice, or retrying a create whose answer
was lost, returns the existing version with ``created=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord, VersionContent

if TYPE_CHECKING:
    from loopline.context import Context


class DataStore(Protocol):
    """Dataset names, versions, aliases, validation results and lineage edges of one workspace."""

    def create_version(self, name: str, content: VersionContent) -> tuple[DatasetVersion, bool]:
        """The new version, or the latest one if its content is the same; and whether it is new."""
        ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def set_description(self, name: str, version: int, description: str) -> None: ...
    def record_validation(
        self, name: str, version: int, *, suite: str, success: bool, result: Mapping[str, Any]
    ) -> int: ...
    def add_edge(self, from_uri: str, to_uri: str, relation: str) -> None: ...

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version ``version`` of ``name``, or its latest."""
        ...

    def get_by_alias(self, name: str, alias: str) -> DatasetVersion: ...
    def resolve(self, uri: str) -> DatasetVersion:
        """``datasets:/name/3``, ``datasets:/name@prod``, ``datasets:/name`` or a digest prefix."""
        ...

    def list_versions(self, name: str) -> list[DatasetVersion]: ...
    def list_datasets(self) -> list[DatasetSummary]: ...
    def list_validations(self, name: str, version: int | None = None) -> list[ValidationRecord]: ...
    def all_versions(self) -> list[DatasetVersion]: ...


def open_data_store(context: Context) -> DataStore:
    """The data store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.data.rest_store import RestDataStore

        return RestDataStore(context.http)
    from loopline.data.sql_store import SqlDataStore

    return SqlDataStore(context.engine, workspace=context.workspace, actor=context.actor)
