"""Data versioning through ``loopline server``: clients with only an ``http://`` URI.

A real server subprocess on 127.0.0.1 (SQLite and an artifact folder of its own), shared by the
module; each test names its datasets with a fresh prefix. The CLI runs as subprocesses from empty
folders, and a second "machine" (another folder and hash cache) reads what the first one added.
The ``DataStore`` contract runs the same cases over SQLite, PostgreSQL and REST.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import serve_loopline

import loopline
from loopline.artifacts.manifest import Entry, Manifest
from loopline.config import Settings
from loopline.context import Context
from loopline.data import DataClient, load_dataset, log_dataset
from loopline.data.blob_store import BlobStore, open_blob_store
from loopline.data.store import DataStore, open_data_store
from loopline.data.types import VersionContent
from loopline.errors import InvalidInput, NotFound
from loopline.tracking import Client, fluent

API = "/api/2.0/loopline/data"


@dataclass
class Server:
    url: str
    home: Path

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("data-server")
    with serve_loopline(home, check_log=True) as url:
        yield Server(url, home)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_parquet(path: Path, ids: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids, "score": [i / 10 for i in ids]}), path)


def digest_of(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


# ---- the CLI, as a user on two machines --------------------------------------------------------


def cli(cwd: Path, server: Server, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOOPLINE_TRACKING_URI": server.url, "XDG_CACHE_HOME": str(cache), "COLUMNS": "200"}
    for name in ("MLFLOW_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_cli_add_get_diff_status_through_the_server(server: Server, tmp_path: Path) -> None:
    name, single = unique("events"), unique("scores")
    data = tmp_path / "data"
    write_parquet(data / "events" / "part-0.parquet", [1, 2, 3])
    write_parquet(data / "events" / "nested" / "part-9.parquet", [9])
    write_parquet(data / "scores.parquet", [7, 8])
    alice, bob = tmp_path / "alice", tmp_path / "bob"  # two machines: own folders, own hash caches
    alice.mkdir()
    bob.mkdir()
    a_cache, b_cache = tmp_path / "alice-cache", tmp_path / "bob-cache"

    assert "Created" in ok(cli(alice, server, a_cache, "data", "add", str(data / "events"), "--name", name))
    assert "Unchanged" in ok(cli(alice, server, a_cache, "data", "add", str(data / "events"), "--name", name))
    assert "Created" in ok(
        cli(alice, server, a_cache, "data", "add", str(data / "scores.parquet"), "--name", single)
    )
    # The blobs went to the server's store.
    part = (data / "events" / "part-0.parquet").read_bytes()
    assert (server.artifacts / "blobs" / digest_of(part)[:2] / digest_of(part)).read_bytes() == part

    write_parquet(data / "events" / "part-1.parquet", [4, 5])
    assert "Created" in ok(cli(alice, server, a_cache, "data", "add", str(data / "events"), "--name", name))
    versions = json.loads(ok(cli(bob, server, b_cache, "data", "log", name, "--format", "json")))
    assert [(v["version"], v["num_files"], v["num_rows"]) for v in versions] == [(2, 3, 6), (1, 2, 4)]

    # Bob, elsewhere, materialises what Alice added.
    ok(cli(bob, server, b_cache, "data", "get", f"{name}/1", "v1"))
    assert sorted(p.name for p in (bob / "v1").iterdir()) == ["nested", "part-0.parquet"]
    assert (bob / "v1" / "part-0.parquet").read_bytes() == part
    ok(cli(bob, server, b_cache, "data", "get", single, "scores.parquet"))
    assert (bob / "scores.parquet").read_bytes() == (data / "scores.parquet").read_bytes()
    ok(cli(bob, server, b_cache, "data", "checkout", f"{name}/2", "--to", "work"))
    assert sorted(p.name for p in (bob / "work").iterdir()) == [
        "nested",
        "part-0.parquet",
        "part-1.parquet",
    ]

    diff = json.loads(ok(cli(bob, server, b_cache, "data", "diff", f"{name}/1", f"{name}/2", "-f", "json")))
    assert diff["files"] == {"added": ["part-1.parquet"], "removed": [], "changed": []}
    assert diff["rows"] == {"from": 4, "to": 6}

    ok(cli(bob, server, b_cache, "data", "alias", name, "prod", "1"))
    shown = json.loads(ok(cli(alice, server, a_cache, "data", "show", f"{name}@prod", "-f", "json")))
    assert (shown["version"], shown["aliases"]) == (1, ["prod"])

    # Status reads Alice's own cache: her folder is at v2 until she edits it.
    assert f"unchanged  {data / 'events'}  (datasets:/{name}/2)" in ok(
        cli(alice, server, a_cache, "data", "status")
    )
    write_parquet(data / "events" / "nested" / "part-9.parquet", [10])
    status = cli(alice, server, a_cache, "data", "status", str(data / "events"), "--exit-code")
    assert status.returncode == 1 and "modified" in status.stdout

    validated = cli(
        bob, server, b_cache, "data", "validate", f"datasets:/{name}/2", "--infer-from", f"datasets:/{name}/1"
    )
    assert "Stored with" in validated.stdout, validated.stdout + validated.stderr
    assert "validation #" in ok(cli(alice, server, a_cache, "data", "show", f"{name}/2"))

    for folder in (alice, bob):  # never a database (or artifact folder) of its own
        assert not (folder / ".loopline").exists()


# ---- the Python API ----------------------------------------------------------------------------


def test_python_api_in_a_run_through_the_server(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LOOPLINE_ARTIFACTS_URI", raising=False)
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", server.url)
    name = unique("frame")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    token = fluent._state.set(fluent._State())  # this test's own module-level client
    loopline.set_tracking_uri(server.url)
    try:
        with loopline.start_run() as run:
            version = loopline.log_dataset(frame, name=name, context="training")
        assert version.uri == f"datasets:/{name}/1" and version.num_rows == 3
        pd.testing.assert_frame_equal(load_dataset(version.uri), frame)
        inputs = Client(Settings.from_env(tracking_uri=server.url)).get_run(run.info.run_id).inputs
        assert [(i.dataset.source, i.tags) for i in inputs] == [
            (version.uri, {"mlflow.data.context": "training"})
        ]
    finally:
        fluent._state.reset(token)

    client = DataClient(Settings.from_env({}, tracking_uri=server.url))
    again = client.add(frame, name)
    assert (again.created, again.version.version, again.blobs_stored) == (False, 1, 0)
    folder = tmp_path / "table"
    write_parquet(folder / "p.parquet", [1, 2])
    first = client.add(folder, name)
    assert (first.created, first.version.version, first.stored_as) == (True, 2, {"upload": 1})
    assert log_dataset(f"datasets:/{name}@latest", client=client).version == 2
    assert client.load(f"datasets:/{name}/2", "arrow").column("id").to_pylist() == [1, 2]
    assert client.verify(f"datasets:/{name}/2") == []
    # A file whose bytes are not the digest it was hashed to (it changed since) is refused.
    with pytest.raises(InvalidInput, match="changed after it was hashed"):
        client.blobs.put_blob(folder / "p.parquet", digest_of(b"what it held before"))
    assert client.blobs.missing([digest_of(b"what it held before")]) == {digest_of(b"what it held before")}
    assert not (tmp_path / ".loopline").exists()


# ---- bad and interrupted uploads ---------------------------------------------------------------


def test_a_blob_with_the_wrong_digest_is_refused_and_makes_no_version(server: Server) -> None:
    name = unique("bad")
    body, other = b"the real bytes", b"other bytes"
    with httpx.Client(base_url=server.url + API) as http:
        refused = http.put(f"/blobs/{digest_of(other)}", content=body)
        assert refused.status_code == 400
        assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert http.post("/blobs/missing", json={"digests": [digest_of(other)]}).json() == {
            "missing": [digest_of(other)]
        }
        # A manifest naming that blob cannot become a version.
        manifest = Manifest.of([Entry("a.bin", digest_of(other), len(other))]).encode()
        assert http.put(f"/blobs/{digest_of(manifest)}", content=manifest).json()["stored"] is True
        create = http.post(
            "/versions",
            json={
                "name": name,
                "digest": digest_of(manifest),
                "format": "files",
                "num_files": 1,
                "size_bytes": 11,
            },
        )
        assert create.status_code == 400 and "not on the server" in create.json()["message"]
        assert http.get("/version", params={"uri": f"datasets:/{name}"}).status_code == 404


def test_data_gc_through_the_server_drops_stale_pins_and_unused_blobs(tmp_path: Path) -> None:
    home = tmp_path / "server"
    with serve_loopline(home, check_log=True) as url:
        srv = Server(url, home)
        write_parquet(tmp_path / "kept" / "part-0.parquet", [1, 2])
        ok(cli(tmp_path, srv, tmp_path / "cache", "data", "add", str(tmp_path / "kept"), "--name", "kept"))
        orphan, missing = b"a blob no version names", b"never uploaded"
        manifest = Manifest.of([Entry("a.bin", digest_of(missing), len(missing))]).encode()
        with httpx.Client(base_url=url + API) as http:
            assert http.put(f"/blobs/{digest_of(orphan)}", content=orphan).status_code == 200
            assert http.put(f"/blobs/{digest_of(manifest)}", content=manifest).status_code == 200
            refused = http.post(  # pins the manifest's tree, then refuses: a stale pin is left
                "/versions",
                json={"name": "x", "digest": digest_of(manifest), "format": "files", "num_files": 1,
                      "size_bytes": len(missing)},
            )  # fmt: skip
            assert refused.status_code == 400
        blob = lambda data: srv.artifacts / "blobs" / digest_of(data)[:2] / digest_of(data)  # noqa: E731
        assert blob(orphan).exists() and blob(manifest).exists()

        kept = ok(cli(tmp_path, srv, tmp_path / "cache", "data", "gc"))  # the default grace keeps them
        assert "Removed 0 blobs" in kept and blob(orphan).exists() and blob(manifest).exists()
        done = ok(cli(tmp_path, srv, tmp_path / "cache", "data", "gc", "--older-than", "0"))
        assert "Removed 2 blobs" in done, done
        assert not blob(orphan).exists() and not blob(manifest).exists()
        # What a version names stays, and a second machine still gets it whole.
        ok(cli(tmp_path, srv, tmp_path / "cache2", "data", "get", "kept", "out"))
        assert (tmp_path / "out" / "part-0.parquet").read_bytes() == (
            tmp_path / "kept" / "part-0.parquet"
        ).read_bytes()
        assert not (tmp_path / ".loopline").exists()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("PUT", "/blobs/not-a-digest", {"content": b"x"}),
        ("GET", "/blobs/" + "0" * 64, {}),
        ("POST", "/blobs/missing", {"json": {"digests": ["zz"]}}),
        ("POST", "/blobs/missing", {"content": b"{not json"}),
        ("POST", "/versions", {"json": {"name": "x"}}),
        (
            "POST",
            "/versions",
            {
                "json": {
                    "name": "bad name!",
                    "digest": "0" * 64,
                    "format": "files",
                    "num_files": 1,
                    "size_bytes": 1,
                }
            },
        ),
        (
            "POST",
            "/versions",
            {"json": {"name": "x", "digest": "0" * 64, "format": "xlsx", "num_files": 1, "size_bytes": 1}},
        ),
        (
            "POST",
            "/versions",
            {"json": {"name": "x", "digest": "0" * 64, "format": "files", "num_files": 1, "size_bytes": 1}},
        ),
        ("GET", "/version", {"params": {"uri": "runs:/abc"}}),
        ("GET", "/version", {"params": {"uri": "datasets:/nope-never-made"}}),
        ("POST", "/aliases", {"json": {"name": "nope-never-made", "alias": "prod", "version": 1}}),
        ("POST", "/aliases", {"json": {"name": "x", "alias": "7", "version": "one"}}),
        ("DELETE", "/aliases", {"json": {"name": "nope-never-made"}}),
        ("PATCH", "/version", {"json": {"name": "x", "version": 1}}),
        ("POST", "/validations", {"json": {"name": "x", "version": 1, "suite": "s", "success": True}}),
        ("POST", "/lineage", {"json": {"from_uri": "x", "to_uri": "runs:/1", "relation": "input_of"}}),
    ],
)
def test_bad_input_is_answered_4xx_json(
    server: Server, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    with httpx.Client(base_url=server.url + API) as http:
        resp = http.request(method, path, **kwargs)
    assert 400 <= resp.status_code < 500, resp.text
    body = resp.json()
    assert body["error_code"] and body["message"]


def staged(folder: Path) -> list[Path]:
    """Uploads being written beside their blobs (``.tmp-…``)."""
    return [p for p in folder.iterdir() if p.name.startswith(".tmp-")] if folder.exists() else []


def wait_until(condition: Callable[[], bool], failure: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def test_an_interrupted_upload_leaves_no_blob_and_no_version(server: Server) -> None:
    name = unique("cut")
    payload = os.urandom(4 << 20)  # what is sent before the cut is more than the server gathers at once
    digest = digest_of(payload)
    blob_dir = server.artifacts / "blobs" / digest[:2]
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PUT {API}/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + payload[: len(payload) // 2])
        wait_until(lambda: bool(staged(blob_dir)), "the server never started writing the upload")
    wait_until(lambda: not staged(blob_dir), "the partial upload was not cleaned up")
    assert not (blob_dir / digest).exists()
    manifest = Manifest.of([Entry("big.bin", digest, len(payload))]).encode()
    with httpx.Client(base_url=server.url + API) as http:
        assert http.post("/blobs/missing", json={"digests": [digest]}).json() == {"missing": [digest]}
        http.put(f"/blobs/{digest_of(manifest)}", content=manifest).raise_for_status()
        create = http.post(
            "/versions",
            json={"name": name, "digest": digest_of(manifest), "format": "files", "num_files": 1,
                  "size_bytes": len(payload)},
        )  # fmt: skip
        assert create.status_code == 400
        assert http.get("/versions", params={"name": name}).status_code == 404
        # Sent again whole, it is stored, and the version can be made.
        assert http.put(f"/blobs/{digest}", content=payload).json() == {"digest": digest, "stored": True}
        create = http.post(
            "/versions",
            json={"name": name, "digest": digest_of(manifest), "format": "files", "num_files": 1,
                  "size_bytes": len(payload)},
        )  # fmt: skip
        assert create.status_code == 200 and create.json()["created"] is True
    assert (blob_dir / digest).read_bytes() == payload


# ---- the DataStore contract: SQLite, PostgreSQL, REST ------------------------------------------


@dataclass
class Backend:
    store: DataStore
    blobs: BlobStore
    name: Callable[[str], str]

    def tree(self, files: dict[str, bytes]) -> tuple[str, int, int]:
        """Store ``files`` and their manifest as blobs; (manifest digest, files, bytes)."""
        for data in files.values():
            self.blobs.put_blob_bytes(data)
        manifest = Manifest.of(Entry(p, digest_of(d), len(d)) for p, d in files.items())
        assert self.blobs.put_blob_bytes(manifest.encode()) == manifest.digest
        return manifest.digest, len(manifest), manifest.size

    def create(self, name: str, files: dict[str, bytes], **extra: Any) -> tuple[Any, bool]:
        digest, count, size = self.tree(files)
        content = VersionContent(
            digest=digest, format="files", source="test", num_files=count, size_bytes=size
        )
        return self.store.create_version(name, dataclasses.replace(content, **extra))


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "rest":
        uri = request.getfixturevalue("server").url
    elif request.param == "postgres":
        uri = request.getfixturevalue("postgres_uri")
    else:
        uri = f"sqlite:///{tmp_path / 'loopline.db'}"
    context = Context(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "artifacts")))
    prefix = uuid.uuid4().hex[:8]
    yield Backend(open_data_store(context), open_blob_store(context), lambda n: f"{prefix}-{n}")
    if context.is_remote:
        context.http.close()
    else:
        context.engine.dispose()


def test_contract_create_is_idempotent_by_content(backend: Backend) -> None:
    name = backend.name("ds")
    v1, created = backend.create(name, {"a.txt": b"one"}, description="first")
    assert created and (v1.name, v1.version, v1.description, v1.num_files) == (name, 1, "first", 1)
    same, created = backend.create(name, {"a.txt": b"one"})
    assert not created and same == v1
    v2, created = backend.create(name, {"a.txt": b"one", "b.txt": b"two"})
    assert created and v2.version == 2 and v2.size_bytes == 6
    assert backend.store.get_version(name) == v2
    assert backend.store.get_version(name, 1) == v1
    assert [v.version for v in backend.store.list_versions(name)] == [2, 1]
    assert backend.store.resolve(f"datasets:/{name}/{v1.digest[:10]}").version == 1
    assert backend.store.resolve(f"datasets:/{name}@latest").version == 2
    mine = [s for s in backend.store.list_datasets() if s.name == name]
    assert [(s.latest_version, s.num_versions) for s in mine] == [(2, 2)]
    assert {v.uri for v in backend.store.all_versions()} >= {v1.uri, v2.uri}


def test_contract_aliases_descriptions_validations_lineage(backend: Backend) -> None:
    name = backend.name("ds")
    backend.create(name, {"a": b"1"})
    backend.create(name, {"a": b"2"})
    backend.store.set_alias(name, "prod", 1)
    assert backend.store.get_by_alias(name, "prod").version == 1
    assert backend.store.resolve(f"datasets:/{name}@prod").aliases == ("prod",)
    backend.store.set_alias(name, "prod", 2)
    assert backend.store.get_by_alias(name, "prod").version == 2
    backend.store.delete_alias(name, "prod")
    with pytest.raises(NotFound):
        backend.store.get_by_alias(name, "prod")
    with pytest.raises(NotFound):
        backend.store.delete_alias(name, "prod")
    with pytest.raises(NotFound):
        backend.store.set_alias(name, "prod", 9)
    with pytest.raises(InvalidInput):
        backend.store.set_alias(name, "latest", 1)

    backend.store.set_description(name, 1, "the first")
    assert backend.store.get_version(name, 1).description == "the first"

    vid = backend.store.record_validation(name, 2, suite="s", success=False, result={"checks": [1, 2]})
    records = backend.store.list_validations(name, 2)
    assert [(r.id, r.suite, r.success, dict(r.result)) for r in records] == [
        (vid, "s", False, {"checks": [1, 2]})
    ]
    assert backend.store.list_validations(name, 1) == []
    backend.store.add_edge(f"datasets:/{name}/2", "runs:/" + "a" * 32, "input_of")


def test_contract_errors(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.store.get_version(backend.name("never"))
    with pytest.raises(NotFound):
        backend.store.list_versions(backend.name("never"))
    with pytest.raises(InvalidInput):
        backend.store.get_version("bad name!")
    name = backend.name("ds")
    backend.create(name, {"a": b"1"})
    with pytest.raises(NotFound):
        backend.store.get_version(name, 5)
    with pytest.raises(InvalidInput):
        backend.store.resolve(f"datasets:/{name}/zz")


def test_push_and_pull_through_the_server(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopline.data.remote import open_remote, pull, push

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    name = unique("moved")
    folder = tmp_path / "src"
    seed = uuid.uuid4().int % 10**12  # contents no other test of this module's server has stored
    write_parquet(folder / "a.parquet", [seed, seed + 1])
    write_parquet(folder / "b.parquet", [seed + 2])
    embedded = DataClient(
        Settings.from_env(
            {}, tracking_uri=f"sqlite:///{tmp_path / 'e.db'}", artifacts_uri=str(tmp_path / "e-art")
        )
    )
    v = embedded.add(folder, name).version
    push(embedded, [v.uri], open_remote(embedded, str(tmp_path / "remote")))

    remote_client = DataClient(Settings.from_env({}, tracking_uri=server.url))
    pulled = pull(remote_client, name, None, open_remote(remote_client, str(tmp_path / "remote")))
    assert (pulled.versions, pulled.blobs) == ([f"datasets:/{name}/1"], 2)
    on_server = remote_client.get_version(f"datasets:/{name}/1")
    assert (on_server.digest, on_server.num_rows) == (v.digest, 3)
    remote_client.get(on_server.uri, tmp_path / "copy")
    assert (tmp_path / "copy" / "a.parquet").read_bytes() == (folder / "a.parquet").read_bytes()

    # And out again: the server's blobs stream through this machine to another remote.
    sent = push(remote_client, [on_server.uri], open_remote(remote_client, str(tmp_path / "remote2")))
    assert (sent.blobs, sent.skipped_blobs) == (2, 0)
    again = DataClient(
        Settings.from_env(
            {}, tracking_uri=f"sqlite:///{tmp_path / 'f.db'}", artifacts_uri=str(tmp_path / "f-art")
        )
    )
    pull(again, name, 1, open_remote(again, str(tmp_path / "remote2")))
    assert again.load(f"datasets:/{name}/1", "arrow").num_rows == 3


def test_contract_concurrent_adds_of_the_same_content_make_one_version(backend: Backend) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = backend.name("race")
    backend.create(name, {"a": b"0"})
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: backend.create(name, {"a": b"1"}), range(4)))
    assert sum(created for _, created in results) == 1
    assert {v.version for v, _ in results} == {2}


@pytest.mark.postgres
@pytest.mark.s3
def test_a_server_on_postgres_and_s3(postgres_uri: str, s3_uri: str, tmp_path: Path) -> None:
    """The team set-up: the server's metadata in PostgreSQL, its blobs in a bucket."""
    with serve_loopline(tmp_path, store=postgres_uri, artifacts=s3_uri, check_log=True) as url:
        settings = Settings.from_env({}, tracking_uri=url)
        alice = DataClient(settings)
        folder = tmp_path / "data"
        for i in range(20):  # more than a few blobs: the server lists the bucket instead of HEADs
            write_parquet(folder / f"part-{i:02d}.parquet", [i, i + 100])
        first = alice.add(folder, "wide")
        assert (first.created, first.blobs_stored, first.version.num_rows) == (True, 20, 40)
        write_parquet(folder / "part-00.parquet", [0, 1, 2])
        second = alice.add(folder, "wide")
        assert (second.created, second.blobs_stored, second.version.version) == (True, 1, 2)
        assert alice.add(folder, "wide").created is False

        bob = DataClient(settings)
        bob.get("datasets:/wide/2", tmp_path / "bob")
        assert (tmp_path / "bob" / "part-00.parquet").read_bytes() == (
            folder / "part-00.parquet"
        ).read_bytes()
        assert bob.load("datasets:/wide/1", "arrow").num_rows == 40
        assert bob.diff("datasets:/wide/1", "datasets:/wide/2")["files"]["changed"] == ["part-00.parquet"]


def test_lean_add_through_the_server_needs_no_sqlalchemy(server: Server, tmp_path: Path) -> None:
    """`loopline data add` stays lean on a server: the REST store does not import SQLAlchemy."""
    (tmp_path / "notes.txt").write_text("hello\n")
    code = (
        "import sys\n"
        "from loopline.data.add_command import main\n"
        f"assert main([{str(tmp_path / 'notes.txt')!r}, '--name', {unique('lean')!r}]) == 0\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "LOOPLINE_TRACKING_URI": server.url, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Created" in done.stdout and not (work / ".loopline").exists()
