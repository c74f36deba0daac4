"""``DataStore`` over ``loopline server``'s data routes (``/api/2.0/loopline/data/…``).

The server answers with its SQL store, so versions, aliases and errors are the same as on an
embedded database; the bytes travel separately (``loopline.data.rest_blobs``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from loopline import uris
from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord, VersionContent
from loopline.data.wire import summary_from_json, validation_from_json, version_from_json
from loopline.names import check_alias, check_name
from loopline.protocol.http import RestClient

API = "/api/2.0/loopline/data"


class RestDataStore:
    """Dataset versions of the server's workspace, through its REST API."""

    def __init__(self, client: RestClient) -> None:
        self.rest = client

    # ---- writes ----------------------------------------------------------------------------

    def create_version(self, name: str, content: VersionContent) -> tuple[DatasetVersion, bool]:
        body = self.rest.call(
            "POST",
            f"{API}/versions",
            {
                "name": check_name("dataset", name),
                **dataclasses.asdict(content),
            },
        )
        return version_from_json(body["version"]), bool(body["created"])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.rest.call(
            "POST",
            f"{API}/aliases",
            {"name": name, "alias": check_alias("dataset", alias), "version": version},
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self.rest.call("DELETE", f"{API}/aliases", {"name": name, "alias": alias})

    def set_description(self, name: str, version: int, description: str) -> None:
        self.rest.call(
            "PATCH", f"{API}/version", {"name": name, "version": version, "description": description}
        )

    def record_validation(
        self, name: str, version: int, *, suite: str, success: bool, result: Mapping[str, Any]
    ) -> int:
        body = self.rest.call(
            "POST",
            f"{API}/validations",
            {"name": name, "version": version, "suite": suite, "success": success, "result": dict(result)},
        )
        return int(body["id"])

    def add_edge(self, from_uri: str, to_uri: str, relation: str) -> None:
        self.rest.call(
            "POST", f"{API}/lineage", {"from_uri": from_uri, "to_uri": to_uri, "relation": relation}
        )

    # ---- reads -----------------------------------------------------------------------------

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        name = check_name("dataset", name)
        return self.resolve(f"datasets:/{name}" if version is None else uris.dataset_uri(name, version))

    def get_by_alias(self, name: str, alias: str) -> DatasetVersion:
        return self.resolve(f"datasets:/{check_name('dataset', name)}@{alias}")

    def resolve(self, uri: str) -> DatasetVersion:
        return version_from_json(self.rest.call("GET", f"{API}/version", {"uri": uri})["version"])

    def list_versions(self, name: str) -> list[DatasetVersion]:
        body = self.rest.call("GET", f"{API}/versions", {"name": name})
        return [version_from_json(v) for v in body.get("versions", [])]

    def list_datasets(self) -> list[DatasetSummary]:
        return [summary_from_json(s) for s in self.rest.call("GET", f"{API}/datasets").get("datasets", [])]

    def list_validations(self, name: str, version: int | None = None) -> list[ValidationRecord]:
        body = self.rest.call("GET", f"{API}/validations", {"name": name, "version": version})
        return [validation_from_json(r) for r in body.get("validations", [])]

    def all_versions(self) -> list[DatasetVersion]:
        return [v for s in self.list_datasets() for v in self.list_versions(s.name)]
