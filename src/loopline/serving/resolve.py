"""Turning the model URIs a deployment names into the versions they name now.

A deployment store resolves them when it writes a revision (to record lineage as of that revision);
a serving process resolves them at every poll (to follow alias moves). Both go through the
registry's public store, so a missing version or alias is the registry's ``NotFound``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from loopline.registry.store import VersionLookup


def resolve_model(uri: str, registry: VersionLookup) -> str:
    """``models:/name@alias``, ``models:/name/latest`` or ``models:/name/3`` → ``models:/name/<version>``,
    checked against ``registry`` (a registry store or ``RegistryClient``)."""
    from loopline.uris import parse

    ref = parse(uri)
    if ref.alias is not None:
        return registry.get_model_version_by_alias(ref.name, ref.alias).uri
    if ref.version == "latest":
        versions = registry.get_registered_model(ref.name).latest_versions
        if not versions:
            raise NotFound(f"Registered model {ref.name!r} has no versions.")
        return f"models:/{ref.name}/{max(v.version for v in versions)}"
    if ref.version is None:
        raise InvalidInput(
            f"{uri!r} names no version or alias.", hint="Use models:/name/3 or models:/name@alias."
        )
    return registry.get_model_version(ref.name, ref.version).uri


def resolve_uri(uri: str, registry: Any) -> str:
    """A model URI resolved as :func:`resolve_model`; a folder (on this machine) as given."""
    if uri.startswith("models:/"):
        return resolve_model(uri, registry)
    if not os.path.isdir(uri):
        raise NotFound(
            f"No model folder at {uri!r}.",
            hint="Give models:/name/version, models:/name@alias or a folder.",
        )
    return uri
