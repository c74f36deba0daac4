"""The registry's store: one Protocol, a SQL implementation on a database and a REST one on a server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from loopline.context import Context
    from loopline.metadata.pages import Page
    from loopline.registry.types import (
        LoggedModel,
        LoggedModelStatus,
        ModelVersion,
        RegisteredModel,
    )
    from loopline.tracking.types import Metric


class VersionLookup(Protocol):
    """What resolving a ``models:/`` URI needs: a registry store, or a ``RegistryClient``."""

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def get_model_version(self, name: str, version: object) -> ModelVersion: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...


class RegistryStore(Protocol):
    """Registered models, their versions and aliases, and MLflow 3's logged models, in one workspace
    (``SqlRegistryStore`` and ``RestRegistryStore`` implement it; a contract test runs both)."""

    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> RegisteredModel: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    def update_registered_model(self, name: str, description: str) -> RegisteredModel: ...

    def delete_registered_model(self, name: str) -> None: ...

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]: ...

    def set_registered_model_alias(self, name: str, alias: str, version: object) -> None: ...

    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str = "",
        tags: Mapping[str, str] | None = None,
        run_link: str = "",
        description: str = "",
        model_id: str = "",
        digests: Mapping[str, str] | None = None,
    ) -> ModelVersion: ...

    def get_model_version(self, name: str, version: object) -> ModelVersion: ...

    def update_model_version(self, name: str, version: object, description: str) -> ModelVersion: ...

    def transition_model_version_stage(
        self, name: str, version: object, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion: ...

    def delete_model_version(self, name: str, version: object) -> None: ...

    def set_model_version_tag(self, name: str, version: object, key: str, value: str) -> None: ...

    def delete_model_version_tag(self, name: str, version: object, key: str) -> None: ...

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]: ...

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]: ...

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        model_type: str = "",
        source_run_id: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel: ...

    def get_logged_model(self, model_id: str) -> LoggedModel: ...

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel: ...

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None: ...

    def log_logged_model_metrics(
        self, model_id: str, metrics: Sequence[Metric], run_id: str = "", dataset: tuple[str, str] = ("", "")
    ) -> None: ...

    def delete_logged_model(self, model_id: str) -> None: ...

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str]] = (),
    ) -> Page[LoggedModel]: ...

    def log_outputs(self, run_id: str, model_ids: Sequence[str], steps: Sequence[int] = ()) -> None: ...


def open_registry_store(context: Context) -> RegistryStore:
    """``SqlRegistryStore`` on the context's database, ``RestRegistryStore`` on its server (sharing
    the context's HTTP client)."""
    if context.is_remote:
        from loopline.registry.rest_store import RestRegistryStore

        return RestRegistryStore(context.settings.tracking_uri, client=context.http)
    from loopline.registry.sql_store import SqlRegistryStore

    return SqlRegistryStore(context.engine, workspace=context.workspace, actor=context.actor)
