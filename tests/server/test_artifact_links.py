"""The artifact proxy of a real ``loopline server`` over a store whose ``refs/`` holds symbolic links:
a link that stays inside is served, one that leads out is a clear 404 (never followed), never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def test_links_under_refs_are_served_inside_the_store_and_refused_outside(
    loopline_server: str, tmp_path: Path
) -> None:
    r = httpx.put(loopline_server + PROXY + "/1/run/artifacts/a.txt", content=b"inside")
    assert r.status_code == 200, r.text
    refs = tmp_path / "server-artifacts" / "refs" / "1" / "run" / "artifacts"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an artifact")
    (refs / "alias.txt").symlink_to(refs / "a.txt")
    (refs / "passwd").symlink_to("/etc/passwd")
    (refs / "elsewhere").symlink_to(outside, target_is_directory=True)
    assert httpx.get(loopline_server + PROXY + "/1/run/artifacts/alias.txt").content == b"inside"
    for path in ("passwd", "elsewhere/secret.txt"):
        r = httpx.get(f"{loopline_server}{PROXY}/1/run/artifacts/{path}")
        assert r.status_code == 404, r.text
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "symbolic link that leads outside the artifact store" in r.json()["message"]
    listed = httpx.get(loopline_server + PROXY, params={"path": "1/run/artifacts"}).json()["files"]
    assert sorted(f["path"] for f in listed) == ["a.txt", "alias.txt"]
    r = httpx.put(loopline_server + PROXY + "/1/run/artifacts/elsewhere/new.txt", content=b"escape")
    assert r.status_code == 404 and not (outside / "new.txt").exists()
    r = httpx.delete(loopline_server + PROXY + "/1/run/artifacts/elsewhere")
    assert r.status_code == 404 and (outside / "secret.txt").exists()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
