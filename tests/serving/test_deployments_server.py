"""Deployments through a real ``loopline server``: bad requests answered 4xx JSON, and the
``loopline deploy`` commands as subprocesses in an empty folder with only an http:// URI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import run_cli, serve_loopline

from loopline.config import Settings
from loopline.context import Context
from loopline.registry.store import open_registry_store

API = "/api/2.0/loopline/deployments"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A server whose registry holds churn versions 1-3 (champion = 1, challenger = 2)."""
    db = f"sqlite:///{tmp_path / 'server.db'}"
    registry = open_registry_store(Context(Settings.from_env({}, tracking_uri=db, user="seed")))
    registry.create_registered_model("churn")
    for _ in range(3):
        registry.create_model_version("churn", "mlflow-artifacts:/0/r/artifacts/model")
    registry.set_registered_model_alias("churn", "champion", 1)
    registry.set_registered_model_alias("churn", "challenger", 2)
    with serve_loopline(tmp_path / "srv", store=db, env={"LOOPLINE_USER": "ops"}, check_log=True) as url:
        yield url


GOOD = {"name": "churn-prod", "routes": [{"model": "models:/churn@champion", "weight": 90}]}
OTHER = GOOD | {"routes": [{"model": "models:/churn/2", "weight": 1}]}  # (GOOD again would be a no-op)

# (method, route, body or query, status, error code, words in the message)
BAD: list[tuple[str, str, Any, int, str, str]] = [
    ("POST", "set", b"{not json", 400, "INVALID_PARAMETER_VALUE", "JSON"),
    ("POST", "set", {}, 400, "INVALID_PARAMETER_VALUE", "name"),
    ("POST", "set", GOOD | {"name": "../etc"}, 400, "INVALID_PARAMETER_VALUE", "Invalid deployment name"),
    ("POST", "set", GOOD | {"routes": []}, 400, "INVALID_PARAMETER_VALUE", "has no routes"),
    ("POST", "set", GOOD | {"routes": "models:/churn/1"}, 400, "INVALID_PARAMETER_VALUE", "routes"),
    (
        "POST",
        "set",
        GOOD | {"routes": [{"model": "models:/churn/1", "weight": "90"}]},
        400,
        "INVALID_PARAMETER_VALUE",
        "weight",
    ),
    (
        "POST",
        "set",
        GOOD | {"routes": [{"model": "models:/churn/1", "weight": -5}]},
        400,
        "INVALID_PARAMETER_VALUE",
        "'weight' must be",
    ),
    (
        "POST",
        "set",
        GOOD | {"routes": [{"model": "models:/churn", "weight": 1}]},
        400,
        "INVALID_PARAMETER_VALUE",
        "names no version or alias",
    ),
    (
        "POST",
        "set",
        GOOD | {"routes": [{"model": "models:/churn/1", "wieght": 1}]},
        400,
        "INVALID_PARAMETER_VALUE",
        "wieght",
    ),
    ("POST", "set", GOOD | {"colour": "red"}, 400, "INVALID_PARAMETER_VALUE", "colour"),
    (
        "POST",
        "set",
        GOOD | {"shadow": {"model": "models:/churn/3", "sample_rate": 2}},
        400,
        "INVALID_PARAMETER_VALUE",
        "sample_rate",
    ),
    ("POST", "set", GOOD | {"sticky_header": "x user"}, 400, "INVALID_PARAMETER_VALUE", "header name"),
    ("POST", "set", GOOD | {"expected_revision": "1"}, 400, "INVALID_PARAMETER_VALUE", "expected_revision"),
    ("POST", "set", GOOD | {"expected_revision": -1}, 400, "INVALID_PARAMETER_VALUE", "expected revision"),
    ("POST", "set", OTHER | {"expected_revision": 7}, 409, "INVALID_STATE", "is at revision 1, not 7"),
    ("POST", "set", OTHER | {"expected_revision": 0}, 409, "INVALID_STATE", "exists already"),
    (
        "POST",
        "set",
        GOOD | {"routes": [{"model": "models:/churn@nobody", "weight": 1}]},
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "models:/churn@nobody",
    ),
    ("POST", "set", GOOD | {"comment": "x" * 2001}, 400, "INVALID_PARAMETER_VALUE", "comment"),
    ("GET", "get", {}, 400, "INVALID_PARAMETER_VALUE", "'name'"),
    ("GET", "get", {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "No deployment named 'nope'"),
    ("GET", "get", {"name": "a/b"}, 400, "INVALID_PARAMETER_VALUE", "Invalid deployment name"),
    ("GET", "revision", {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "churn-prod"),  # the hint
    ("GET", "list", {"max_results": 0}, 400, "INVALID_PARAMETER_VALUE", "max_results"),
    ("GET", "list", {"max_results": "many"}, 400, "INVALID_PARAMETER_VALUE", "max_results"),
    ("GET", "list", {"page_token": "garbage"}, 400, "INVALID_PARAMETER_VALUE", "page token"),
    ("GET", "revisions", {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "nope"),
    ("POST", "rollback", {"name": "churn-prod", "to_revision": 0}, 400, "INVALID_PARAMETER_VALUE", "from 1"),
    (
        "POST",
        "rollback",
        {"name": "churn-prod", "to_revision": 9},
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "no revision 9",
    ),
    ("POST", "rollback", {"name": "churn-prod"}, 400, "INVALID_PARAMETER_VALUE", "to_revision"),
    ("POST", "delete", {"name": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "nope"),
    (
        "POST",
        "delete",
        {"name": "churn-prod", "expected_revision": 3},
        409,
        "INVALID_STATE",
        "is at revision 1, not 3",
    ),
]


def test_bad_requests_get_4xx_json_naming_the_problem(server: str) -> None:
    with httpx.Client(base_url=server + API, timeout=30) as http:
        made = http.post("/set", json=GOOD | {"comment": "first"})
        assert made.status_code == 200, made.text
        assert made.json()["deployment"]["revision"] == 1
        assert made.json()["deployment"]["resolved"] == {"models:/churn@champion": "models:/churn/1"}
        for method, route, body, status, code, words in BAD:
            if method == "GET":
                r = http.get(f"/{route}", params=body)
            elif isinstance(body, bytes):
                r = http.post(f"/{route}", content=body, headers={"content-type": "application/json"})
            else:
                r = http.post(f"/{route}", json=body)
            answer = r.json()
            assert (r.status_code, answer.get("error_code")) == (status, code), (route, body, answer)
            assert words in answer["message"], (route, body, answer)
        # nothing above changed it
        assert http.get("/revision", params={"name": "churn-prod"}).json() == {
            "name": "churn-prod",
            "revision": 1,
        }
        listed = http.get("/list").json()
        assert [d["name"] for d in listed["deployments"]] == [
            "churn-prod"
        ] and "next_page_token" not in listed


def test_deploy_commands_through_the_server_with_only_an_http_uri(server: str, tmp_path: Path) -> None:
    work = tmp_path / "client"
    work.mkdir()

    def ok(*args: str) -> str:
        done = run_cli(server, work, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    made = ok(
        "deploy", "set", "churn-prod", "-r", "models:/churn@champion=90", "-r", "models:/churn@challenger=10",
        "--shadow", "models:/churn/3", "--sticky-header", "X-User-Id", "-m", "canary of v2",
    )  # fmt: skip
    assert "deployment churn-prod  revision 1  (by ops" in made
    assert "models:/churn@champion  90%  (= models:/churn/1)" in made
    assert "models:/churn/3  shadow, 100% of requests" in made and "sticky on header x-user-id" in made

    stale = run_cli(
        server, work, "deploy", "set", "churn-prod", "-r", "models:/churn/1", "--expected-revision", "0"
    )
    assert stale.returncode == 1 and "exists already (revision 1)" in stale.stderr
    assert "Traceback" not in stale.stderr
    ok("deploy", "set", "churn-prod", "-r", "models:/churn/2=1", "--expected-revision", "1", "-m", "v2")
    lost = run_cli(
        server, work, "deploy", "set", "churn-prod", "-r", "models:/churn/3", "--expected-revision", "1"
    )
    assert (
        lost.returncode == 1 and "is at revision 2, not 1" in lost.stderr and "Read it again" in lost.stderr
    )

    assert "models:/churn/2  100%" in ok("deploy", "show", "churn-prod")
    history = ok("deploy", "history", "churn-prod").splitlines()
    assert [line.split()[0] for line in history] == ["2", "1"]
    assert "ops" in history[0] and history[0].endswith("# v2")
    assert "models:/churn@champion  (= models:/churn/1) 90%" in history[1] and "# canary of v2" in history[1]

    back = ok("deploy", "rollback", "churn-prod", "--to", "1")
    assert "revision 3" in back and "models:/churn@challenger  10%  (= models:/churn/2)" in back
    assert ok("deploy", "list").splitlines() == [
        "churn-prod  revision 3  models:/churn@champion 90%, models:/churn@challenger 10%"
    ]
    missing = run_cli(server, work, "deploy", "rollback", "churn-prod", "--to", "7")
    assert missing.returncode == 2 and "no revision 7" in missing.stderr

    events = json.loads(ok("events", "deployments:/churn-prod", "--format", "json"))
    assert [(e["action"], e["actor"]) for e in events] == [
        ("deployment.rollback", "ops"),
        ("deployment.update", "ops"),
        ("deployment.create", "ops"),
    ]
    assert events[-1]["reason"] == "canary of v2"
    upstream = json.loads(ok("lineage", "deployments:/churn-prod", "--upstream", "--format", "json"))
    assert {(e["from"], e["relation"]) for e in upstream} == {
        ("models:/churn/1", "deployed_in"),
        ("models:/churn/2", "deployed_in"),
        ("models:/churn/3", "shadowed_in"),
    }

    assert "deleted deployment churn-prod" in ok("deploy", "delete", "churn-prod", "--expected-revision", "3")
    gone = run_cli(server, work, "deploy", "show", "churn-prod")
    assert gone.returncode == 2 and "No deployment named 'churn-prod'" in gone.stderr
    assert ok("deploy", "list") == ""
    assert list(work.iterdir()) == []  # the client never made a .loopline folder
