"""The ``DeploymentStore`` contract: the same behaviour on SQLite, on PostgreSQL, and through a real
``loopline server`` (REST, with only an http:// URI on the client)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import serve_loopline

from loopline.artifacts import BlobArtifactStore
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import Conflict, InvalidInput, LooplineError, NotFound
from loopline.registry.store import open_registry_store
from loopline.serving.store import DeploymentStore, open_deployment_store
from loopline.serving.types import DeploymentSpec, Route, Shadow
from loopline.tracking.lineage import LineageReader, open_lineage_reader

ACTOR = "alice"


@dataclass
class Backend:
    kind: str
    store: DeploymentStore
    lineage: LineageReader
    registry: Any  # the registry the store resolves aliases in (SQL, seeded beside it)
    artifacts: BlobArtifactStore  # where earlier versions kept deployments/*.json (the server's)


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """churn versions 1-3 (champion = 1) in a registry; a server, for REST, on that same database."""
    db = (
        str(request.getfixturevalue("postgres_uri"))
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'l.db'}"
    )
    art = str(tmp_path / "art")
    seed = Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=art, user=ACTOR))
    registry = open_registry_store(seed)
    registry.create_registered_model("churn")
    for _ in range(3):
        registry.create_model_version("churn", "mlflow-artifacts:/0/r/artifacts/model")
    registry.set_registered_model_alias("churn", "champion", 1)
    if request.param != "rest":
        yield Backend(
            request.param,
            open_deployment_store(seed),
            open_lineage_reader(seed),
            registry,
            BlobArtifactStore(art),
        )
        return
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art, env={"LOOPLINE_USER": ACTOR}) as url:
        ctx = Context(Settings.from_env({}, tracking_uri=url, user="someone-else"))
        assert ctx.is_remote
        yield Backend(
            "rest", open_deployment_store(ctx), open_lineage_reader(ctx), registry, BlobArtifactStore(art)
        )
        ctx.http.close()


def spec(*routes: tuple[str, float], shadow: str | None = None, name: str = "churn-prod") -> DeploymentSpec:
    return DeploymentSpec(name, tuple(Route(m, w) for m, w in routes), Shadow(shadow) if shadow else None)


CANARY = spec(("models:/churn@champion", 90), ("models:/churn/2", 10), shadow="models:/churn/3")
HALF = spec(("models:/churn@champion", 50), ("models:/churn/2", 50))


def test_create_change_history_rollback_delete_with_events_and_lineage(backend: Backend) -> None:
    store = backend.store
    made = store.set_deployment(CANARY, expected_revision=0, comment="canary of v2")
    assert (made.name, made.uri, made.revision, made.created_by, made.updated_by) == (
        "churn-prod",
        "deployments:/churn-prod",
        1,
        ACTOR,
        ACTOR,  # the server's actor, not the client's claim
    )
    assert made.spec == CANARY and made.resolved["models:/churn@champion"] == "models:/churn/1"
    assert store.get_deployment("churn-prod") == made and store.get_revision("churn-prod") == 1

    changed = store.set_deployment(HALF, expected_revision=1)
    assert changed.revision == 2 and changed.created_ms == made.created_ms and changed.spec == HALF
    assert store.set_deployment(HALF) == changed  # the same spec again: no new revision
    assert store.get_revision("churn-prod") == 2

    back = store.rollback("churn-prod", 1, expected_revision=2)
    assert back.revision == 3 and back.spec == CANARY
    history = store.list_revisions("churn-prod").items
    assert [(r.revision, r.spec, r.comment, r.actor) for r in history] == [
        (3, CANARY, "rollback to revision 1", ACTOR),
        (2, HALF, "", ACTOR),
        (1, CANARY, "canary of v2", ACTOR),
    ]
    assert history[0].time_ms >= history[2].time_ms and history[2].time_ms == made.created_ms
    with pytest.raises(NotFound, match="no revision 9"):
        store.rollback("churn-prod", 9)

    events = backend.lineage.events("deployments:/churn-prod")
    assert [(e.action, e.reason, e.payload["revision"], e.actor) for e in events] == [
        ("deployment.rollback", "rollback to revision 1", 3, ACTOR),
        ("deployment.update", "", 2, ACTOR),
        ("deployment.create", "canary of v2", 1, ACTOR),
    ]
    assert events[0].payload["to_revision"] == 1 and events[2].payload["models"] == [
        "models:/churn/1",
        "models:/churn/2",
        "models:/churn/3",
    ]
    edges = {(e.from_uri, e.relation) for e in backend.lineage.upstream("deployments:/churn-prod")}
    assert edges == {
        ("models:/churn/1", "deployed_in"),
        ("models:/churn/2", "deployed_in"),
        ("models:/churn/3", "shadowed_in"),
    }
    downstream = backend.lineage.downstream("models:/churn/1")
    assert ("models:/churn/1", "deployments:/churn-prod") in {(e.from_uri, e.to_uri) for e in downstream}

    with pytest.raises(Conflict, match="revision 3, not 2"):
        store.delete_deployment("churn-prod", expected_revision=2)
    store.delete_deployment("churn-prod", expected_revision=3)
    for call in (store.get_deployment, store.get_revision, store.list_revisions, store.delete_deployment):
        with pytest.raises(NotFound, match="churn-prod"):
            call("churn-prod")
    assert backend.lineage.events("deployments:/churn-prod")[0].action == "deployment.delete"
    assert store.list_deployments().items == []
    assert store.set_deployment(HALF).revision == 1  # a new deployment of the same name starts again


def test_a_stale_expected_revision_is_409_and_racing_writers_lose_nothing(backend: Backend) -> None:
    store = backend.store
    store.set_deployment(CANARY)
    with pytest.raises(Conflict, match=r"exists already \(revision 1\)"):
        store.set_deployment(HALF, expected_revision=0)
    with pytest.raises(Conflict, match="does not exist"):
        store.set_deployment(spec(("models:/churn/1", 1), name="other"), expected_revision=4)

    def race(expected: int | None, offset: int) -> list[str]:
        """Eight writers at once, each with weights no one wrote before; what each one got."""
        outcomes: list[str] = []
        start = threading.Barrier(8)

        def write(i: int) -> None:
            start.wait()
            try:
                d = store.set_deployment(
                    spec(("models:/churn/1", 100), ("models:/churn/2", offset + i)),
                    expected_revision=expected,
                )
                outcomes.append(f"rev {d.revision:02}")
            except LooplineError as e:
                outcomes.append(type(e).__name__)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(outcomes)

    assert race(expected=1, offset=1) == ["Conflict"] * 7 + [
        "rev 02"
    ]  # one operator wins, nobody is overwritten
    got = race(expected=None, offset=11)  # last writer wins, but every write is a revision of its own
    assert got == [f"rev {n:02}" for n in range(3, 11)]
    assert [r.revision for r in store.list_revisions("churn-prod", 100).items] == list(range(10, 0, -1))


def test_aliases_resolve_when_written_and_a_missing_one_is_refused(backend: Backend) -> None:
    store = backend.store
    first = store.set_deployment(spec(("models:/churn@champion", 1)))
    backend.registry.set_registered_model_alias("churn", "champion", 3)
    # The same spec, but its alias names another version now: a new revision records that.
    moved = store.set_deployment(spec(("models:/churn@champion", 1)))
    assert (first.revision, moved.revision) == (1, 2)
    assert [r.resolved for r in store.list_revisions("churn-prod").items] == [
        {"models:/churn@champion": "models:/churn/3"},
        {"models:/churn@champion": "models:/churn/1"},
    ]
    assert store.set_deployment(spec(("models:/churn@champion", 1))).revision == 2  # unchanged now
    upstream = {e.from_uri for e in backend.lineage.upstream("deployments:/churn-prod")}
    assert upstream == {"models:/churn/1", "models:/churn/3"}  # both served it, at some revision

    with pytest.raises(NotFound, match="models:/churn@nobody"):
        store.set_deployment(spec(("models:/churn@nobody", 1)))
    with pytest.raises(NotFound, match="models:/ghost/latest"):
        store.set_deployment(spec(("models:/ghost/latest", 1)))
    assert store.get_revision("churn-prod") == 2  # nothing was written
    # A version this registry does not hold (another server's) is kept as given, marked external.
    far = store.set_deployment(spec(("models:/elsewhere/4", 1), name="far"))
    assert far.resolved == {}
    [edge] = backend.lineage.upstream("deployments:/far")
    assert (edge.from_uri, edge.external) == ("models:/elsewhere/4", True)


def test_listing_pages_by_name(backend: Backend) -> None:
    for name in ("d", "b", "e", "a", "c"):
        backend.store.set_deployment(spec(("models:/churn/1", 1), name=name))
    seen, token, pages = [], None, 0
    while True:
        page = backend.store.list_deployments(2, token)
        seen += [d.name for d in page.items]
        pages += 1
        if not (token := page.next_page_token):
            break
    assert (seen, pages) == (["a", "b", "c", "d", "e"], 3)
    assert [r.revision for r in backend.store.list_revisions("a", 1).items] == [1]
    with pytest.raises(InvalidInput, match="max_results"):
        backend.store.list_deployments(0)
    with pytest.raises(InvalidInput, match="page token"):
        backend.store.list_deployments(2, "not-a-token")


def test_deployments_kept_as_json_files_are_imported_once(backend: Backend) -> None:
    art = backend.artifacts
    old = {"name": "churn-prod", "routes": [{"model": "models:/churn@champion", "weight": 90}]}
    old["routes"].append({"model": "models:/churn/2", "weight": 10})
    art.put_bytes(orjson.dumps(old | {"sticky_header": "x-user-id"}), "deployments/churn-prod.json")
    art.put_bytes(orjson.dumps({"routes": [{"model": "models:/churn/3"}]}), "deployments/legacy-b.json")
    art.put_bytes(b"{not json", "deployments/broken.json")

    listed = backend.store.list_deployments().items
    assert [(d.name, d.revision) for d in listed] == [("churn-prod", 1), ("legacy-b", 1)]
    prod = listed[0]
    assert prod.sticky_header == "x-user-id" and prod.resolved["models:/churn@champion"] == "models:/churn/1"
    [rev] = backend.store.list_revisions("churn-prod").items
    assert rev.comment == "imported from deployments/churn-prod.json in the artifact store"
    [marker] = backend.lineage.events("deployments:/")
    assert marker.action == "deployment.import_legacy" and marker.payload["imported"] == [
        "churn-prod",
        "legacy-b",
    ]
    assert list(marker.payload["skipped"]) == ["deployments/broken.json"]
    assert backend.lineage.events("deployments:/legacy-b")[0].action == "deployment.import"
    assert "models:/churn/3" in {e.from_uri for e in backend.lineage.upstream("deployments:/legacy-b")}

    # Imported once: a file written through the artifact store later is just a file.
    art.put_bytes(orjson.dumps({"routes": [{"model": "models:/churn/1"}]}), "deployments/late.json")
    with pytest.raises(NotFound, match="No deployment named 'late'"):
        backend.store.get_deployment("late")
    assert [d.name for d in backend.store.list_deployments().items] == ["churn-prod", "legacy-b"]
    assert len(backend.lineage.events("deployments:/")) == 1
