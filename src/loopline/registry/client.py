"""``RegistryClient``: registered models, versions and aliases, embedded or over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from loopline.errors import AlreadyExists
from loopline.registry.types import ModelVersion, RegisteredModel
from loopline.tracking import Client, default_client

if TYPE_CHECKING:
    from loopline.registry.store import RegistryStore


class RegistryClient:
    """The registry next to a tracking ``Client`` (same settings, same artifact store)."""

    def __init__(self, tracking: Client | None = None) -> None:
        self.tracking = tracking or default_client()
        from loopline.registry.store import open_registry_store

        self.store: RegistryStore = open_registry_store(self.tracking.context)

    def register(
        self,
        source: str,
        name: str,
        *,
        run_id: str = "",
        model_id: str = "",
        digests: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register ``source`` (a logged model's artifact location) as the next version of ``name``."""
        with contextlib.suppress(AlreadyExists):  # registering into an existing model is the usual case
            self.store.create_registered_model(name)
        return self.store.create_model_version(
            name,
            source,
            run_id=run_id,
            tags=tags,
            description=description,
            model_id=model_id,
            digests=digests,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, version)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version_by_alias(name, alias)

    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        self.store.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_registered_model_alias(name, alias)

    def search_registered_models(self, filter_string: str | None = None) -> list[RegisteredModel]:
        out: list[RegisteredModel] = []
        token = None
        while True:
            page = self.store.search_registered_models(filter_string, 1000, None, token)
            out += page.items
            if not (token := page.next_page_token):
                return out

    def search_model_versions(self, filter_string: str | None = None) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        token = None
        while True:
            page = self.store.search_model_versions(filter_string, 10_000, None, token)
            out += page.items
            if not (token := page.next_page_token):
                return out


__all__ = ["RegistryClient"]
