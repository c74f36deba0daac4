"""Garbage collection: deleted runs really free their storage (MLflow #14988, #17240).

1. Runs deleted at least ``older_than`` ago lose their artifact refs, then their rows.
2. Blobs no ref points to any more are removed (blobs shared with live runs stay, since a
   live ref still names them), once older than a grace period that protects writes in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.paths import safe_path
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.uris import ARTIFACT_SCHEME, artifact_path


@dataclass(frozen=True, slots=True)
class GcReport:
    runs_purged: int
    artifact_files_removed: int
    blobs_removed: int
    bytes_freed: int


def collect_garbage(
    store: SqlTrackingStore,
    artifacts: BlobArtifactStore,
    *,
    older_than_ms: int = 0,
    grace_seconds: float = 3600.0,
    run_ids: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GcReport:
    """Purge deleted runs (all, or ``run_ids``) and the blobs nothing references any more."""
    candidates = store.deleted_runs(older_than_ms)
    if run_ids is not None:
        wanted = set(run_ids)
        candidates = [r for r in candidates if r.run_id in wanted]
    files = 0
    for i, info in enumerate(candidates):
        if info.artifact_uri.startswith(ARTIFACT_SCHEME):
            files += artifacts.delete(safe_path(artifact_path(info.artifact_uri)))
        if progress:
            progress(i + 1, len(candidates))
    purged = store.purge_runs([r.run_id for r in candidates]) if candidates else 0
    blobs, freed = artifacts.gc(grace_seconds)
    return GcReport(purged, files, blobs, freed)
