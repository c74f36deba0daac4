"""Deployments as earlier versions kept them: ``deployments/<name>.json`` in the artifact store.

Read once per workspace by ``SqlDeploymentStore`` (see its ``import_legacy``), never written: the
metadata store is where deployments live now, and the artifact store treats ``deployments/`` as
any other folder.
"""

from __future__ import annotations

import orjson

from loopline.artifacts.protocol import ArtifactStore
from loopline.errors import LooplineError, NotFound
from loopline.serving.types import DeploymentSpec

PREFIX = "deployments"


def read_legacy(artifacts: ArtifactStore) -> tuple[list[tuple[str, DeploymentSpec]], dict[str, str]]:
    """``([(path, spec)…], {path: why it was skipped})`` for every ``deployments/*.json``."""
    try:
        entries = artifacts.list(PREFIX)
    except (NotFound, FileNotFoundError):
        return [], {}
    found: list[tuple[str, DeploymentSpec]] = []
    skipped: dict[str, str] = {}
    for e in sorted(entries, key=lambda e: e.path):
        if e.is_dir or not e.path.endswith(".json"):
            continue
        path = f"{PREFIX}/{e.path.rsplit('/', 1)[-1]}"
        try:
            with artifacts.open(path) as f:
                raw = orjson.loads(f.read())
            if isinstance(raw, dict):
                # the file name was the key it was found by, whatever the document said
                raw["name"] = path.rsplit("/", 1)[-1].removesuffix(".json")
            found.append((path, DeploymentSpec.from_dict(raw)))
        except (LooplineError, orjson.JSONDecodeError, OSError) as err:
            skipped[path] = getattr(err, "message", None) or str(err)
    return found, skipped
