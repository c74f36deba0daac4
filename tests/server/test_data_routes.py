"""The read-only data routes of ``loopline server``, against a real server and its real store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.config import Settings
from loopline.data import DataClient

API = "/api/2.0/loopline/data"


def _add_two_versions(tmp_path: Path) -> DataClient:
    """Two versions of ``customers`` in the server's own store: v2 adds a row and a column."""
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_uri=str(tmp_path / "server-artifacts"),
    )
    data = DataClient(settings)
    src = tmp_path / "customers"
    src.mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "age": [30, 41, 52]}), src / "part-0.parquet")
    data.add(src, "customers")
    pq.write_table(
        pa.table({"id": [1, 2, 3, 4], "age": [30, 41, 52, 63], "city": ["a", "b", "c", "d"]}),
        src / "part-0.parquet",
    )
    v2 = data.add(src, "customers")
    data.set_alias("customers", "prod", v2.version.version)
    return data


def test_datasets_versions_and_one_version(loopline_server: str, tmp_path: Path) -> None:
    data = _add_two_versions(tmp_path)
    with httpx.Client(base_url=loopline_server + API) as http:
        datasets = http.get("/datasets").json()["datasets"]
        assert [(d["name"], d["latest_version"], d["aliases"]) for d in datasets] == [
            ("customers", 2, {"prod": 2})
        ]
        versions = http.get("/versions", params={"name": "customers"}).json()["versions"]
        assert sorted(v["version"] for v in versions) == [1, 2]
        v = http.get("/version", params={"uri": "datasets:/customers@prod"}).json()["version"]
        expected = data.get_version("datasets:/customers/2")
        assert (v["uri"], v["digest"], v["num_rows"], v["aliases"]) == (
            "datasets:/customers/2",
            expected.digest,
            4,
            ["prod"],
        )
        assert set(v["schema"]) == {"id", "age", "city"}
        files = http.get("/files", params={"uri": "datasets:/customers/2"}).json()["files"]
        assert [(f["path"], f["digest"]) for f in files] == [
            (e.path, e.digest) for e in data.manifest(expected).entries
        ]


def test_diff_and_bad_input(loopline_server: str, tmp_path: Path) -> None:
    _add_two_versions(tmp_path)
    with httpx.Client(base_url=loopline_server + API) as http:
        diff = http.get("/diff", params={"a": "datasets:/customers/1", "b": "datasets:/customers/2"})
        assert diff.status_code == 200
        body = diff.json()
        assert body["schema"]["added"] == {"city": body["schema"]["added"]["city"]}
        assert body["schema"]["removed"] == {} and body["rows"] == {"from": 3, "to": 4}
        missing = http.get("/version", params={"uri": "datasets:/customers/9"})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert http.get("/versions").status_code == 400  # no name
        assert http.get("/validations", params={"uri": "datasets:/customers/1"}).json() == {"validations": []}
