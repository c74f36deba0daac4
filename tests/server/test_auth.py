"""Authentication and roles on a real ``loopline server`` (LOOPLINE_AUTH=1) on 127.0.0.1.

The route table below is written out here, apart from ``auth/policy.py``: a route that moves to
another role in the product without this table agreeing fails the walk over the OpenAPI document.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from support import run_cli, serve_loopline

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import PermissionDenied, Unauthenticated
from loopline.tracking import Client


class Site(NamedTuple):
    url: str
    tokens: dict[str, str]  # user -> API token
    log: Path  # the server's output: its JSON access log among it


PUBLIC = {"/", "/health", "/ping", "/ready", "/version", "/openapi.json"}
# POSTs that only read: a viewer may send them.
READ_POSTS = {
    "/api/2.0/mlflow/experiments/search",
    "/api/2.0/mlflow/runs/search",
    "/api/2.0/mlflow/logged-models/search",
    "/api/2.0/mlflow/registered-models/get-latest-versions",
    "/api/2.0/loopline/runs/search",
    "/api/2.0/loopline/runs/count",
    "/api/2.0/loopline/data/blobs/missing",
    "/api/2.0/loopline/data/blobs/batch",
    "/api/2.0/loopline/features/historical",
    "/api/2.0/loopline/features/online",
    "/api/2.0/loopline/pipelines/steps/known-keys",
}
# Changes that move production: a maintainer's.
MAINTAIN = {
    "/api/2.0/mlflow/registered-models/alias",
    "/api/2.0/mlflow/model-versions/transition-stage",
    "/api/2.0/loopline/deployments/set",
    "/api/2.0/loopline/deployments/rollback",
    "/api/2.0/loopline/deployments/delete",
    "/api/2.0/loopline/automation/policies/put",
    "/api/2.0/loopline/automation/policies/delete",
    "/api/2.0/loopline/automation/applies/record",
    "/api/2.0/loopline/automation/rollouts/approve",
}
WORKSPACE_ADMIN = {"/api/2.0/loopline/auth/roles/grant", "/api/2.0/loopline/auth/roles/revoke"}
SUPERUSER_PREFIX = "/api/2.0/loopline/auth/users"
SIGNED_IN_PREFIXES = ("/api/2.0/loopline/auth/tokens", "/api/2.0/loopline/auth/whoami")
WRITES = {"post", "put", "patch", "delete"}
PASSWORD = "correct horse battery"


def needs(method: str, path: str) -> Role | str | None:
    """What a request needs, by this test's own reading of the issue: None (public), "signed-in",
    "superuser", or the least workspace role."""
    if path in PUBLIC or path.startswith("/docs"):
        return None
    if path.startswith(SUPERUSER_PREFIX) or (
        path.startswith("/api/2.0/loopline/workspaces") and method in WRITES
    ):
        return "superuser"
    if path.startswith(SIGNED_IN_PREFIXES) or path.startswith("/api/2.0/loopline/workspaces"):
        return "signed-in"
    if path in WORKSPACE_ADMIN:
        return Role.ADMIN
    if method in WRITES and path in MAINTAIN:
        return Role.MAINTAINER
    if method in WRITES and path not in READ_POSTS:
        return Role.EDITOR
    return Role.VIEWER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An auth-on server whose store holds one user per role (in workspace "default"), a user with
    no role, a server admin, and a token for each."""
    home = tmp_path_factory.mktemp("auth")
    db = f"sqlite:///{home / 'server.db'}"
    store = SqlAuthStore(Context(Settings(tracking_uri=db, artifacts_uri=str(home / "artifacts"))).engine)
    tokens: dict[str, str] = {}
    for name, role in [
        ("vera", Role.VIEWER),
        ("ed", Role.EDITOR),
        ("mia", Role.MAINTAINER),
        ("ada", Role.ADMIN),
    ]:
        store.create_user(name, password=PASSWORD)
        store.grant(name, "default", role)
        tokens[name] = store.create_token(name, name="test")[1]
    store.create_user("nobody", password=PASSWORD)
    tokens["nobody"] = store.create_token("nobody", name="test")[1]
    store.create_user("root", password=PASSWORD, is_admin=True)
    tokens["root"] = store.create_token("root", name="test")[1]
    with serve_loopline(home, store=db, env={"LOOPLINE_AUTH": "1"}, check_log=True) as url:
        yield Site(url, tokens, home / "server.log")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _operations(url: str) -> list[tuple[str, str]]:
    doc = httpx.get(f"{url}/openapi.json").json()
    ops = []
    for path, methods in doc["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        ops += [(m, concrete) for m in methods if m in {"get", "post", "put", "patch", "delete"}]
    assert len(ops) > 100  # the whole API, not a stub of it
    return ops


def test_every_route_but_the_public_ones_wants_credentials(server: Site) -> None:
    url = server.url
    with httpx.Client(base_url=url) as http:
        for method, path in _operations(url):
            r = http.request(method, path, json={} if method in WRITES else None)
            if needs(method, path) is None:
                assert r.status_code not in (401, 403), (method, path, r.text)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.json()["error_code"] == "UNAUTHENTICATED"
                assert "Bearer" in r.headers["www-authenticate"]


@pytest.mark.parametrize("user", ["vera", "ed", "mia", "ada", "nobody", "root"])
def test_each_role_may_do_what_it_may_and_gets_403_for_the_rest(server: Site, user: str) -> None:
    url, tokens = server.url, server.tokens
    role = {"vera": Role.VIEWER, "ed": Role.EDITOR, "mia": Role.MAINTAINER, "ada": Role.ADMIN}.get(user)
    refused = allowed = 0
    with httpx.Client(base_url=url, headers=_bearer(tokens[user])) as http:
        for method, path in _operations(url):
            need = needs(method, path)
            if need is None:
                continue
            if need == "signed-in":
                may = True
            elif need == "superuser":
                may = user == "root"
            else:
                may = user == "root" or (role is not None and role >= need)
            r = http.request(method, path, json={} if method in WRITES else None)
            assert r.status_code != 401, (user, method, path, r.text)
            if may:
                allowed += 1
                assert r.status_code != 403 or "tokens" in path, (user, method, path, r.text)
                assert r.status_code < 500, (user, method, path, r.text)
            else:
                refused += 1
                assert r.status_code == 403, (user, method, path, r.status_code, r.text)
                assert r.json()["error_code"] == "PERMISSION_DENIED"
    if user == "nobody":
        assert allowed <= 10 and refused > 100
    if user == "vera":
        assert refused > 50 and allowed > 40


def test_the_unmodified_mlflow_client_signs_in_with_a_token_or_a_password(
    server: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    url, tokens = server.url, server.tokens
    client = mlflow.MlflowClient(tracking_uri=url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ed"])
    exp = client.create_experiment(f"tok-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "auc", 0.91)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "vera")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert client.get_run(run.info.run_id).data.metrics["auc"] == 0.91  # a viewer reads
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|needs editor"):
        client.log_metric(run.info.run_id, "auc", 0.5)  # ...and may not write
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not the password")
    with pytest.raises(MlflowException, match=r"UNAUTHENTICATED|not valid"):
        client.get_run(run.info.run_id)


def test_what_a_user_does_is_recorded_as_theirs(server: Site) -> None:
    url, tokens = server.url, server.tokens
    ed = Client(Settings(tracking_uri=url, token=tokens["ed"]))
    exp = ed.create_experiment(f"actor-{uuid.uuid4().hex[:6]}")
    events = httpx.get(
        f"{url}/api/2.0/loopline/events",
        params={"object_uri": f"experiments:/{exp}"},
        headers=_bearer(tokens["vera"]),
    ).json()["events"]
    assert events and {e["actor"] for e in events} == {"ed"}
    # A request id leads from the access log to the audit trail: the caller's, or one made for it.
    made = httpx.post(
        f"{url}/api/2.0/mlflow/experiments/create", json={"name": f"traced-{uuid.uuid4().hex[:6]}"},
        headers={**_bearer(tokens["ed"]), "X-Request-Id": "req-4711"},
    )  # fmt: skip
    assert made.headers["x-request-id"] == "req-4711"
    exp = made.json()["experiment_id"]
    events = httpx.get(
        f"{url}/api/2.0/loopline/events",
        params={"object_uri": f"experiments:/{exp}"},
        headers=_bearer(tokens["vera"]),
    ).json()["events"]
    assert events[0]["payload"]["request_id"] == "req-4711"
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith('{"time')]
    line = next(x for x in lines if x["request_id"] == "req-4711")
    assert line["actor"] == "ed" and line["status"] == 200 and line["path"].endswith("experiments/create")
    assert tokens["ed"] not in server.log.read_text()  # no secret reaches the log


def test_a_revoked_token_and_a_disabled_user_are_refused_at_once(server: Site) -> None:
    url, tokens = server.url, server.tokens
    root = httpx.Client(base_url=url, headers=_bearer(tokens["root"]))
    made = root.post("/api/2.0/loopline/auth/users/create", json={"name": "temp", "password": PASSWORD})
    assert made.status_code == 200, made.text
    root.post(
        "/api/2.0/loopline/auth/roles/grant", json={"user": "temp", "role": "viewer"}
    ).raise_for_status()
    answer = root.post("/api/2.0/loopline/auth/tokens/create", json={"user": "temp", "name": "short"}).json()
    temp = _bearer(answer["secret"])
    assert httpx.get(f"{url}/api/2.0/loopline/auth/whoami", headers=temp).json()["user"] == "temp"
    root.post("/api/2.0/loopline/auth/tokens/revoke", json={"id": answer["token"]["id"]}).raise_for_status()
    assert httpx.get(f"{url}/api/2.0/loopline/auth/whoami", headers=temp).status_code == 401
    basic = ("temp", PASSWORD)
    assert httpx.get(f"{url}/api/2.0/loopline/auth/whoami", auth=basic).status_code == 200
    root.post(
        "/api/2.0/loopline/auth/users/update", json={"name": "temp", "disabled": True}
    ).raise_for_status()
    assert httpx.get(f"{url}/api/2.0/loopline/auth/whoami", auth=basic).status_code == 401
    # Tokens are listed without their secrets, and only a server admin sees another user's.
    listed = root.get("/api/2.0/loopline/auth/tokens", params={"user": "temp"}).json()["tokens"]
    assert listed[0]["revoked_at"] and "secret" not in listed[0] and answer["secret"] not in str(listed)
    mine = httpx.get(
        f"{url}/api/2.0/loopline/auth/tokens", params={"user": "temp"}, headers=_bearer(tokens["ed"])
    )
    assert mine.status_code == 403


def test_a_model_role_overrides_the_workspace_role_for_that_model(server: Site) -> None:
    url, tokens = server.url, server.tokens
    name, other = f"fraud-{uuid.uuid4().hex[:6]}", f"churn-{uuid.uuid4().hex[:6]}"
    ed = httpx.Client(base_url=url, headers=_bearer(tokens["ed"]))
    for model in (name, other):
        ed.post("/api/2.0/mlflow/registered-models/create", json={"name": model}).raise_for_status()
        made = ed.post(
            "/api/2.0/mlflow/model-versions/create", json={"name": model, "source": "s3://models/m"}
        )
        assert made.status_code == 200, made.text
    alias = {"alias": "champion", "version": "1"}
    assert ed.post("/api/2.0/mlflow/registered-models/alias", json={"name": name, **alias}).status_code == 403
    ada = httpx.Client(base_url=url, headers=_bearer(tokens["ada"]))
    grant = {"user": "ed", "role": "maintainer", "model": name}
    ada.post("/api/2.0/loopline/auth/roles/grant", json=grant).raise_for_status()
    assert ed.post("/api/2.0/mlflow/registered-models/alias", json={"name": name, **alias}).status_code == 200
    assert (
        ed.post("/api/2.0/mlflow/registered-models/alias", json={"name": other, **alias}).status_code == 403
    )
    got = ed.get("/api/2.0/mlflow/registered-models/alias", params={"name": name, "alias": "champion"})
    assert got.json()["model_version"]["version"] == "1"


def test_a_token_scope_caps_its_users_role(server: Site) -> None:
    url, tokens = server.url, server.tokens
    created = httpx.post(
        f"{url}/api/2.0/loopline/auth/tokens/create", json={"name": "read-only", "scope": "viewer"},
        headers=_bearer(tokens["mia"]),
    ).json()  # fmt: skip
    capped = Client(Settings(tracking_uri=url, token=created["secret"]))
    assert capped.search_experiments() is not None
    with pytest.raises(PermissionDenied, match="scope"):
        capped.create_experiment(f"capped-{uuid.uuid4().hex[:6]}")


def test_roles_hold_per_workspace(server: Site) -> None:
    url, tokens = server.url, server.tokens
    root = httpx.Client(base_url=url, headers=_bearer(tokens["root"]))
    root.post("/api/2.0/loopline/workspaces", json={"name": "team-c"}).raise_for_status()
    assert "team-c" in {w["name"] for w in root.get("/api/2.0/loopline/workspaces").json()["workspaces"]}
    ed = httpx.Client(base_url=url, headers=_bearer(tokens["ed"]))
    assert {w["name"] for w in ed.get("/api/2.0/loopline/workspaces").json()["workspaces"]} == {"default"}
    assert ed.get("/api/2.0/loopline/workspaces/team-c").status_code == 404  # not even its existence
    other = Client(Settings(tracking_uri=url, token=tokens["ed"], workspace="team-b"))
    with pytest.raises(PermissionDenied, match="no role in workspace 'team-b'"):
        other.search_experiments()
    # An admin of "default" cannot grant in "team-b": the grant acts in the request's workspace.
    r = httpx.post(
        f"{url}/api/2.0/loopline/auth/roles/grant", json={"user": "ed", "role": "editor"},
        headers={**_bearer(tokens["ada"]), "Loopline-Workspace": "team-b"},
    )  # fmt: skip
    assert r.status_code == 403


def test_no_credentials_through_the_cli_is_a_clear_error(server: Site, tmp_path: Path) -> None:
    url = server.url
    refused = run_cli(url, tmp_path, "runs", "list")
    assert refused.returncode == 2 and "Authentication required" in refused.stderr
    with pytest.raises(Unauthenticated):
        Client(Settings(tracking_uri=url, token="llt_not-a-real-token")).search_experiments()


def test_failed_sign_ins_are_rate_limited(tmp_path: Path) -> None:
    # A server of its own: the limit is per client address, and every test here is 127.0.0.1.
    db = f"sqlite:///{tmp_path / 'server.db'}"
    store = SqlAuthStore(Context(Settings(tracking_uri=db)).engine)
    for name in ("rita", "sam"):
        store.create_user(name, password=PASSWORD)
    with serve_loopline(tmp_path, store=db, env={"LOOPLINE_AUTH": "1"}) as url:
        whoami = f"{url}/api/2.0/loopline/auth/whoami"
        assert httpx.get(whoami, auth=("sam", PASSWORD)).status_code == 200  # sam is signed in
        statuses = [httpx.get(whoami, auth=("rita", f"guess {i}")).status_code for i in range(21)]
        assert statuses[:20] == [401] * 20 and statuses[-1] == 429
        late = httpx.get(whoami, auth=("rita", PASSWORD))  # even the right password waits now
        assert late.status_code == 429 and int(late.headers["retry-after"]) > 0
        # ...but a user already signed in from the same address is not locked out by the guesser.
        assert httpx.get(whoami, auth=("sam", PASSWORD)).status_code == 200


def test_the_ui_acts_in_the_workspace_its_selector_chose(server: Site) -> None:
    url, tokens = server.url, server.tokens
    root = httpx.Client(base_url=url, headers=_bearer(tokens["root"]))
    root.post("/api/2.0/loopline/auth/users/create", json={"name": "tb"}).raise_for_status()
    b_admin = {**_bearer(tokens["root"]), "Loopline-Workspace": "team-b"}
    httpx.post(
        f"{url}/api/2.0/loopline/auth/roles/grant", json={"user": "tb", "role": "viewer"}, headers=b_admin
    )
    httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "only-in-b"}, headers=b_admin)
    secret = root.post("/api/2.0/loopline/auth/tokens/create", json={"user": "tb", "name": "ui"}).json()[
        "secret"
    ]
    tb = httpx.Client(base_url=url, headers=_bearer(secret))
    assert tb.get("/ui/").status_code == 403  # the server's own workspace: no role there
    menu = tb.get("/ui/workspace-menu")  # ...but the selector offers the workspaces tb may open
    assert menu.status_code == 200 and 'value="team-b"' in menu.text and 'value="default"' in menu.text
    assert 'value="team-c"' not in menu.text
    chosen = {"Cookie": "loopline_workspace=team-b"}
    page = tb.get("/ui/", headers=chosen)
    assert page.status_code == 200 and "only-in-b" in page.text
    assert '"Loopline-Workspace": "team-b"' in page.text  # the page's htmx calls act there too
    # The cookie chooses only for the UI's own pages: an API call still needs the header.
    assert tb.post("/api/2.0/mlflow/experiments/search", json={}, headers=chosen).status_code == 403
