"""The feature store through a real ``loopline server``, with only an ``http://`` URI on the client.

The same definitions, windows and requests go through the server (CLI subprocesses and the Python
API) and through an embedded store; the answers must be equal. The server's online store is
SQLite beside its database, or Redis when the server is configured so; the client never opens a
database or an online store of its own (its working folder stays empty).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feature_support import at
from support import serve_loopline

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.features import FeatureStore
from loopline.features.arrow_ipc import MEDIA_TYPE, to_ipc
from loopline.features.offline import to_arrow

API = "/api/2.0/loopline/features"
WINDOW = ("2025-12-31T00:00:00", "2026-01-01T12:00:00")  # hours 0..12 of the fixture's day
ENTITY = pd.DataFrame(
    {
        "driver_id": [3, 1, 2, 1, 9],
        "event_timestamp": [at(4 * 3600), at(5 * 3600), at(0), at(30 * 3600), at(3600)],
        "bonus": [0.5, 1.0, 0.0, 2.0, 1.0],
    }
)
HISTORICAL = ["driver_stats:conv_rate", "driver_stats:trips", "boosted:boosted"]


@dataclass(frozen=True)
class Server:
    url: str
    home: Path
    workspace: str


def _serve(home: Path, **env: str) -> Iterator[Server]:
    """``loopline server`` in a subprocess on its own SQLite database (and ``env``'s settings)."""
    home.mkdir(parents=True, exist_ok=True)
    workspace = env.get("LOOPLINE_WORKSPACE", "default")
    with serve_loopline(home, env=env) as url:
        yield Server(url, home, workspace)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path / "server")


@pytest.fixture
def redis_server(tmp_path: Path, redis_url: str) -> Iterator[Server]:
    """A server whose online store is Redis, in a workspace (so a key prefix) private to this test."""
    import redis

    workspace = f"feat{uuid.uuid4().hex[:10]}"
    yield from _serve(tmp_path / "server", LOOPLINE_ONLINE_STORE=redis_url, LOOPLINE_WORKSPACE=workspace)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"loopline:{workspace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def client_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty working folder for the client: nothing may appear in it but what the test writes."""
    folder = tmp_path / "client"
    folder.mkdir()
    cwd = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(cwd)
    assert not (folder / ".loopline").exists(), "the client opened a local database or online store"


def remote(server: Server) -> FeatureStore:
    return FeatureStore(Settings.from_env({}, tracking_uri=server.url, user="tester"))


def cli(server: Server, cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_TRACKING_URI"] = server.url
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "features", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def embedded(settings: Any, defs_file: Path) -> Iterator[FeatureStore]:
    """The same definitions and window in an embedded store: what the server must answer."""
    fs = FeatureStore(settings)
    fs.apply(defs_file)
    fs.materialize(*WINDOW)
    yield fs
    fs.close()


def test_cli_flow_through_the_server_equals_embedded(
    server: Server, client_dir: Path, defs_file: Path, embedded: FeatureStore
) -> None:
    plan = json.loads(cli(server, client_dir, "plan", str(defs_file), "--format", "json"))
    assert plan["added"] == [
        ["entity", "driver"],
        ["feature_view", "driver_stats"],
        ["on_demand_feature_view", "boosted"],
        ["feature_service", "activity"],
    ]
    assert json.loads(cli(server, client_dir, "apply", str(defs_file), "--format", "json")) == plan
    again = json.loads(cli(server, client_dir, "apply", str(defs_file), "--format", "json"))
    assert again["added"] == [] and len(again["unchanged"]) == 4
    listed = json.loads(cli(server, client_dir, "list", "--format", "json"))
    assert [(d["kind"], d["name"]) for d in listed] == [
        (d.kind, d.name) for d in embedded.registry.list_definitions()
    ]

    out = json.loads(cli(server, client_dir, "materialize", *WINDOW, "--format", "json"))
    assert [(r["view"], r["rows"]) for r in out] == [("driver_stats", 3)]
    # The server's online store holds the values: beside its database, not in the client's folder.
    assert (server.home / "online.db").exists()

    got = json.loads(
        cli(server, client_dir, "get", "driver_stats:conv_rate", "driver_stats:trips", "-e", "driver_id=1")
    )
    want = embedded.get_online_features(["driver_stats:conv_rate", "driver_stats:trips"], [{"driver_id": 1}])
    assert (
        got
        == {k: v[0] for k, v in want.to_dict().items()}
        == {"driver_id": 1, "conv_rate": 0.22, "trips": 112}
    )

    pq.write_table(to_arrow(ENTITY), client_dir / "entities.parquet")
    summary = json.loads(
        cli(server, client_dir, "historical", "entities.parquet", *HISTORICAL, "-o", "train.parquet")
    )
    assert summary["rows"] == 5
    through_server = pq.read_table(client_dir / "train.parquet").to_pandas()
    pd.testing.assert_frame_equal(through_server, embedded.get_historical_features(ENTITY, HISTORICAL))

    incremental = json.loads(
        cli(server, client_dir, "materialize-incremental", "2026-01-02T00:00:00", "--format", "json")
    )
    assert [(r["view"], r["rows"]) for r in incremental] == [("driver_stats", 3)]
    jobs = remote(server).registry.list_materializations("driver_stats")
    assert [(j.status, j.rows) for j in jobs] == [("done", 3), ("done", 3)]
    shown = cli(server, client_dir, "show", "driver_stats")
    assert "Materialisations" in shown and "features:/boosted" in shown


def test_python_api_through_the_server_equals_embedded(
    server: Server, client_dir: Path, defs_file: Path, embedded: FeatureStore
) -> None:
    fs = remote(server)
    assert [(c.kind, c.name) for c in fs.apply(defs_file).added] == [
        ("entity", "driver"),
        ("feature_view", "driver_stats"),
        ("on_demand_feature_view", "boosted"),
        ("feature_service", "activity"),
    ]
    assert fs.plan(defs_file).empty
    assert set(fs.definitions()) == set(embedded.definitions()) == {"driver_stats", "boosted", "activity"}

    # Before materialising, the server's online store has nothing: nulls, as embedded would say.
    rows = [{"driver_id": 2, "bonus": 0.5}, {"driver_id": 99, "bonus": 1.0}]
    assert fs.get_online_features("activity", rows).to_dict()["conv_rate"] == [None, None]

    results = fs.materialize(dt.datetime(2025, 12, 31), dt.datetime(2026, 1, 1, 12))
    assert [(r.view, r.rows) for r in results] == [("driver_stats", 3)]
    for features in ("activity", ["driver_stats:trips", "boosted:trips_k"]):
        got = fs.get_online_features(features, rows).to_dict()
        assert got == embedded.get_online_features(features, rows).to_dict()
    assert fs.get_online_features("activity", rows).to_dict()["boosted"] == [0.32 * 2 + 0.5, None]
    columns = {"driver_id": np.array([3, 1]), "bonus": pd.Series([1.0, 2.0])}  # as a frame's columns come
    got = fs.get_online_features(["boosted:boosted", "driver_stats:trips"], columns).to_dict()
    assert got == embedded.get_online_features(["boosted:boosted", "driver_stats:trips"], columns).to_dict()
    assert got["trips"] == [312, 112]

    for fmt in ("pandas", "arrow", "polars"):
        got = fs.get_historical_features(ENTITY, HISTORICAL, format=fmt)  # type: ignore[arg-type]
        want = embedded.get_historical_features(ENTITY, HISTORICAL, format=fmt)  # type: ignore[arg-type]
        assert type(got) is type(want)
        if fmt == "pandas":
            pd.testing.assert_frame_equal(got, want)
        else:
            assert got.equals(want)
    got = fs.get_historical_features(ENTITY, "activity", full_feature_names=True)
    pd.testing.assert_frame_equal(
        got, embedded.get_historical_features(ENTITY, "activity", full_feature_names=True)
    )

    # A push lands in the server's online store too.
    late = at(11 * 3600 + 1)
    assert (
        fs.push("driver_push", [{"driver_id": 9, "event_timestamp": late, "conv_rate": 0.7, "trips": 7}]) == 1
    )
    assert fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 9}])["conv_rate"] == [0.7]
    with pytest.raises(InvalidInput, match="server's"):
        _ = fs.online
    edges = fs.registry.lineage("features:/driver_stats")
    assert ("features:/driver_stats", "features:/boosted", "input_of") in {
        (e.from_uri, e.to_uri, e.relation) for e in edges
    }
    fs.close()


def test_redis_backed_server_materialises_into_redis(
    redis_server: Server, client_dir: Path, defs_file: Path, embedded: FeatureStore, redis_url: str
) -> None:
    import redis

    fs = remote(redis_server)
    fs.apply(defs_file)
    assert [(r.view, r.rows) for r in fs.materialize(*WINDOW)] == [("driver_stats", 3)]
    keys = redis.Redis.from_url(redis_url).keys(f"loopline:{redis_server.workspace}:driver_stats:*")
    assert len(keys) == 3
    assert not (redis_server.home / "online.db").exists()
    rows = {"driver_id": [1, 2, 3, 4], "bonus": [0.0, 1.0, 2.0, 3.0]}
    got = fs.get_online_features("activity", rows).to_dict()
    assert got == embedded.get_online_features("activity", rows).to_dict()
    assert got["conv_rate"][:3] == [0.22, 0.32, 0.42]


def test_a_training_set_saved_through_the_server_is_a_dataset_there(
    server: Server, client_dir: Path, defs_file: Path
) -> None:
    fs = remote(server)
    fs.apply(defs_file)
    for _ in range(2):  # the second is a retry: it must not make a second version
        fs.get_historical_features(ENTITY, HISTORICAL, save_as="driver_training")
    edges = fs.registry.lineage("features:/driver_stats")
    assert {e.to_uri for e in edges if e.to_uri.startswith("datasets:/driver_training")} == {
        "datasets:/driver_training/1"
    }


def test_a_dataset_source_is_read_by_the_server(
    server: Server, client_dir: Path, driver_parquet: Path
) -> None:
    from loopline.data import DataClient, log_dataset
    from loopline.features import DatasetSource, Entity, FeatureView, Field, Float64

    # The data is the server's: versioned into its database (as `loopline data add` there would).
    on_server = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{server.home / 'server.db'}",
        artifacts_uri=str(server.home / "artifacts"),
    )
    version = log_dataset(pq.read_table(driver_parquet), name="driver_stats", client=DataClient(on_server))
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        source=DatasetSource(uri=version.uri),
        schema=[Field("conv_rate", Float64)],
    )
    fs = remote(server)
    fs.apply([driver, view])
    assert [(r.view, r.rows) for r in fs.materialize(*WINDOW)] == [("driver_stats", 3)]
    assert fs.get_online_features(["driver_stats:conv_rate"], {"driver_id": [3]})["conv_rate"] == [0.42]


def test_bad_input_over_http_is_4xx_json(
    server: Server, tmp_path: Path, defs_file: Path, driver_parquet: Path
) -> None:
    def ok_error(r: httpx.Response, status: int, text: str) -> None:
        assert r.status_code == status, r.text
        body = r.json()
        assert body["error_code"] and text in body["message"], body

    url = server.url + API
    json_type = {"Content-Type": "application/json"}
    ok_error(httpx.post(f"{url}/apply", content=b"{not json", headers=json_type), 400, "")
    ok_error(
        httpx.post(f"{url}/apply", json={"changes": [{"op": "explode", "kind": "entity", "name": "x"}]}),
        400,
        "op",
    )
    ok_error(
        httpx.post(
            f"{url}/apply", json={"changes": [{"op": "add", "kind": "feature_view", "name": "v", "spec": {}}]}
        ),
        400,
        "spec of feature_view 'v'",
    )
    ok_error(
        httpx.post(f"{url}/apply", json={"changes": [{"op": "add", "kind": "entity", "name": "e"}]}),
        400,
        "spec",
    )
    odd = {"op": "add", "kind": "entity", "name": "e", "spec": {"join_keys": "abc"}}  # not a list
    ok_error(httpx.post(f"{url}/apply", json={"changes": [odd]}), 400, "not what such a definition writes")
    ok_error(httpx.post(f"{url}/materialize", json={"end_us": True, "start_us": 0}), 400, "end_us")
    assert httpx.get(f"{url}/definitions").json() == {"definitions": []}  # nothing half-applied
    ok_error(httpx.post(f"{url}/materialize", json={"views": ["nope"]}), 400, "end_us")
    ok_error(
        httpx.post(f"{url}/materialize", json={"end_us": 1, "start_us": 0, "views": ["nope"]}), 400, "nope"
    )
    ok_error(httpx.post(f"{url}/materialize", json={"end_us": 1}), 400, "start_us")
    ok_error(httpx.get(f"{url}/definitions/get", params={"name": "nope"}), 404, "nope")
    ok_error(httpx.get(f"{url}/definitions", params={"kind": "table"}), 400, "table")
    ok_error(httpx.get(f"{url}/materializations", params={"limit": "abc"}), 400, "limit")
    ok_error(httpx.get(f"{url}/lineage"), 400, "uri")

    remote(server).apply(defs_file)
    entity = to_ipc(to_arrow(ENTITY))
    arrow = {"Content-Type": MEDIA_TYPE}
    feats = {"features": "driver_stats:trips"}
    ok_error(
        httpx.post(f"{url}/historical", params=feats, content=b"garbage", headers=arrow), 400, "Arrow IPC"
    )
    ok_error(httpx.post(f"{url}/historical", params=feats, content=entity), 400, MEDIA_TYPE)
    ok_error(httpx.post(f"{url}/historical", content=entity, headers=arrow), 400, "features")
    ok_error(
        httpx.post(
            f"{url}/historical", params={**feats, "timestamp_column": "ts"}, content=entity, headers=arrow
        ),
        400,
        "no timestamp column 'ts'",
    )
    ok_error(
        httpx.post(
            f"{url}/historical", params={"features": "driver_stats:nope"}, content=entity, headers=arrow
        ),
        404,
        "driver_stats:nope",
    )
    ok_error(
        httpx.post(f"{url}/push", params={"name": "driver_push"}, content=b"x", headers=arrow), 400, "Arrow"
    )

    saved = f"{url}/training-sets"
    ok_error(httpx.post(saved, params={"name": "t"}, content=entity, headers=arrow), 400, "refs=view:feature")
    ok_error(
        httpx.post(saved, params={"name": "t", "refs": "x:y"}, content=entity, headers=arrow), 404, "'x'"
    )
    ok_error(
        httpx.post(saved, params={"refs": "driver_stats:trips"}, content=entity, headers=arrow), 400, "name"
    )
    ok_error(
        httpx.post(saved, params={"name": "t", "refs": "a:b"}, content=b"x", headers=arrow), 400, "Arrow"
    )

    # A path only a client has (here: gone from the server's disk) is refused with what to use instead.
    spec = {
        "op": "add",
        "kind": "feature_view",
        "name": "elsewhere",
        "spec": {**remote(server).registry.get_definition("driver_stats").spec},
    }
    source = spec["spec"]["source"]
    laptop = str(tmp_path / "laptop" / "stats.parquet")
    spec["spec"]["source"] = {**source, "batch_source": {**source["batch_source"], "path": laptop}}
    ok_error(httpx.post(f"{url}/apply", json={"changes": [spec]}), 400, "datasets:/")
    driver_parquet.unlink()
    ok_error(
        httpx.post(
            f"{url}/materialize", json={"start_us": 0, "end_us": 4 * 10**15, "views": ["driver_stats"]}
        ),
        400,
        "datasets:/",
    )
    with pytest.raises(InvalidInput, match="cannot read the source"):
        remote(server).materialize(*WINDOW)


def test_times_read_online_through_the_server_are_datetimes(
    server: Server, client_dir: Path, tmp_path: Path, settings: Any
) -> None:
    from loopline.features import Entity, FeatureView, Field, FileSource, UnixTimestamp

    path = tmp_path / "trips.parquet"
    pq.write_table(
        pa.table({"driver_id": [1, 2], "event_timestamp": [at(60), at(120)], "last_trip": [at(30), None]}),
        path,
    )
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="trips",
        entities=[driver],
        source=FileSource(path=str(path)),
        schema=[Field("last_trip", UnixTimestamp)],
    )
    answers = []
    for fs in (remote(server), FeatureStore(settings)):
        fs.apply([driver, view])
        fs.materialize(*WINDOW)
        answers.append(fs.get_online_features(["trips:last_trip"], {"driver_id": [1, 2, 3]}).to_dict())
        fs.close()
    assert answers[0] == answers[1] == {"driver_id": [1, 2, 3], "last_trip": [at(30), None, None]}


def _broken(df: Any) -> Any:
    raise ValueError("boom")


@pytest.fixture
def udf_server(tmp_path: Path) -> Iterator[Server]:
    """A server that runs on-demand views (opted in)."""
    yield from _serve(tmp_path / "server", LOOPLINE_SERVER_RUN_UDFS="1")


def test_a_failing_on_demand_function_is_bad_input_not_a_crash(
    udf_server: Server, client_dir: Path, defs_file: Path
) -> None:
    from loopline.features import Field, Float64, OnDemandFeatureView

    server = udf_server
    fs = remote(server)  # runs on-demand views in the client: its errors are the client's
    fs.apply(defs_file)
    fs.materialize(*WINDOW)
    broken = OnDemandFeatureView(
        name="broken",
        sources=[fs.get_feature_view("driver_stats")],
        schema=[Field("bad", Float64)],
        udf=_broken,
    )
    fs.apply([*fs.list_entities(), *fs.definitions().values(), broken])
    with pytest.raises(InvalidInput, match="'broken' failed: ValueError: boom"):
        fs.get_online_features(["broken:bad"], [{"driver_id": 1}])
    with pytest.raises(InvalidInput, match="'broken' failed"):
        fs.get_historical_features(ENTITY, ["broken:bad"])
    # The server, opted in, runs it for a plain HTTP client: the failure is a 400, not a 500.
    r = httpx.post(
        f"{server.url}{API}/online", json={"features": ["broken:bad"], "entities": {"driver_id": [1]}}
    )
    assert r.status_code == 400 and "boom" in r.json()["message"]


def test_a_retried_offline_push_adds_its_rows_once(server: Server, client_dir: Path, tmp_path: Path) -> None:
    from loopline.features import Entity, FeatureView, Field, FileSource, Float64, PushSource

    folder = tmp_path / "stats"
    folder.mkdir()
    pq.write_table(
        pa.table({"driver_id": [1], "event_timestamp": [at(0)], "conv_rate": [0.1]}), folder / "a.parquet"
    )
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="stats",
        entities=[driver],
        source=PushSource(name="stats_push", batch_source=FileSource(path=str(folder))),
        schema=[Field("conv_rate", Float64)],
    )
    fs = remote(server)
    fs.apply([driver, view])
    rows = [{"driver_id": 2, "event_timestamp": at(60), "conv_rate": 0.2}]
    for _ in range(2):  # the second is what a client re-sends when the first answer was lost
        assert fs.push("stats_push", rows, to="online_and_offline") == 1
    assert len(list(folder.glob("*.parquet"))) == 2 and not list(folder.glob(".*"))
    entity = {"driver_id": [1, 2], "event_timestamp": [at(3600), at(3600)]}
    train = fs.get_historical_features(entity, ["stats:conv_rate"], format="arrow")
    assert train.column("conv_rate").to_pylist() == [0.1, 0.2]
    assert fs.get_online_features(["stats:conv_rate"], {"driver_id": [2]})["conv_rate"] == [0.2]


def test_a_server_runs_on_demand_views_only_when_opted_in(
    tmp_path: Path, client_dir: Path, defs_file: Path
) -> None:
    rows = {"feature_service": "activity", "entity_rows": [{"driver_id": 2, "bonus": 0.5}]}
    for opted_in, home in ((False, "plain"), (True, "runs-udfs")):
        env = {"LOOPLINE_SERVER_RUN_UDFS": "1"} if opted_in else {}
        for server in _serve(tmp_path / home, **env):
            fs = remote(server)
            fs.apply(defs_file)
            fs.materialize(*WINDOW)
            r = httpx.post(f"{server.url}{API}/online", json=rows)
            if opted_in:
                assert r.status_code == 200 and r.json()["features"]["boosted"] == [0.32 * 2 + 0.5]
            else:
                assert r.status_code == 400 and "LOOPLINE_SERVER_RUN_UDFS=1" in r.json()["message"]
            # FeatureStore runs them in the client either way: same answer.
            got = fs.get_online_features("activity", rows["entity_rows"]).to_dict()
            assert got == {
                "driver_id": [2],
                "conv_rate": [0.32],
                "boosted": [0.32 * 2 + 0.5],
                "trips_k": [0.212],
            }


def test_a_postgresql_backed_server_answers_as_embedded(
    tmp_path: Path, postgres_uri: str, client_dir: Path, defs_file: Path, embedded: FeatureStore
) -> None:
    online = f"sqlite:///{tmp_path / 'pg-server' / 'online.db'}"  # no database folder to sit beside
    for server in _serve(
        tmp_path / "pg-server", LOOPLINE_TRACKING_URI=postgres_uri, LOOPLINE_ONLINE_STORE=online
    ):
        fs = remote(server)
        fs.apply(defs_file)
        assert [(r.view, r.rows) for r in fs.materialize(*WINDOW)] == [("driver_stats", 3)]
        assert [(r.view, r.rows) for r in fs.materialize(*WINDOW)] == [("driver_stats", 3)]  # again: same
        rows = [{"driver_id": d, "bonus": 1.0} for d in (1, 2, 3, 4)]
        assert (
            fs.get_online_features("activity", rows).to_dict()
            == embedded.get_online_features("activity", rows).to_dict()
        )
        pd.testing.assert_frame_equal(
            fs.get_historical_features(ENTITY, HISTORICAL),
            embedded.get_historical_features(ENTITY, HISTORICAL),
        )
        assert [j.status for j in fs.registry.list_materializations("driver_stats")] == ["done", "done"]
    assert (tmp_path / "pg-server" / "online.db").exists()
