"""Signing in to the web UI (password form, OIDC code flow) and OIDC bearer tokens, against a real
``loopline server`` with auth on and a real OIDC provider, both on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from support import serve_loopline

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.context import Context

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Provider]]:
    home = tmp_path_factory.mktemp("sign-in")
    db = f"sqlite:///{home / 'server.db'}"
    store = SqlAuthStore(Context(Settings(tracking_uri=db, artifacts_uri=str(home / "artifacts"))).engine)
    store.create_user("paula", password=PASSWORD)
    store.grant("paula", "default", Role.EDITOR)
    with running_provider() as provider:
        env = {
            "LOOPLINE_AUTH": "1",
            "LOOPLINE_OIDC_ISSUER": provider.issuer,
            "LOOPLINE_OIDC_CLIENT_ID": CLIENT_ID,
            "LOOPLINE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }
        with serve_loopline(home, store=db, env=env, check_log=True) as url:
            yield url, provider


def _csrf(html: str) -> str:
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(setup: tuple[str, Provider]) -> None:
    url, _ = setup
    r = httpx.get(f"{url}/ui/models?x=1", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/models%3Fx%3D1"
    with httpx.Client(base_url=url) as browser:
        page = browser.get("/ui/login", params={"next": "/ui/models"})
        assert page.status_code == 200 and 'name="password"' in page.text and "SSO" in page.text
        wrong = browser.post(
            "/ui/login", data={"username": "paula", "password": "nope", "next": "/ui/models"}
        )
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
        ok = browser.post("/ui/login", data={"username": "paula", "password": PASSWORD, "next": "/ui/models"})
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/models"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        page = browser.get("/ui/models")
        assert page.status_code == 200 and "paula" in page.text
        token = _csrf(page.text)
        # The session works for the API too, but a state-changing request must carry the CSRF token.
        body = {"name": "from-the-ui"}
        forged = browser.post("/api/2.0/mlflow/experiments/create", json=body)
        assert forged.status_code == 403 and "CSRF" in forged.json()["message"]
        made = browser.post("/api/2.0/mlflow/experiments/create", json=body, headers={"X-CSRF-Token": token})
        assert made.status_code == 200, made.text
        out = browser.post("/ui/logout", headers={"X-CSRF-Token": token})
        assert out.status_code == 204 and out.headers["hx-redirect"] == "/ui/login"
        assert browser.get("/api/2.0/loopline/auth/whoami").status_code == 401  # the session is gone


def test_sign_in_never_redirects_to_another_site(setup: tuple[str, Provider]) -> None:
    url, _ = setup
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui//evil", "javascript:alert(1)"):
        r = httpx.post(f"{url}/ui/login", data={"username": "paula", "password": PASSWORD, "next": target})
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/ui/") and not urlsplit(location).netloc, location


def test_single_sign_on_through_the_oidc_provider(setup: tuple[str, Provider]) -> None:
    url, provider = setup
    with httpx.Client(base_url=url) as browser:
        start = browser.get("/ui/login/oidc", params={"next": "/ui/lineage"})
        assert start.status_code == 303
        to_provider = start.headers["location"]
        assert to_provider.startswith(f"{provider.issuer}/authorize?")
        query = parse_qs(urlsplit(to_provider).query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
        back = httpx.get(to_provider)  # the provider signs olivia in and sends the browser back
        assert back.status_code == 302
        callback = urlsplit(back.headers["location"])
        # A forged callback (another state) is refused.
        forged = browser.get(callback.path, params={"code": "x", "state": "not-the-state"})
        assert forged.status_code == 400
        done = browser.get(f"{callback.path}?{callback.query}")
        assert done.status_code == 303 and done.headers["location"] == "/ui/lineage"
        who = browser.get("/api/2.0/loopline/auth/whoami").json()
        assert who["user"] == "olivia" and who["via"] == "session" and who["role"] is None


def test_oidc_bearer_tokens_are_verified_and_their_users_need_roles(setup: tuple[str, Provider]) -> None:
    url, provider = setup
    provider_token = {"Authorization": f"Bearer {provider.mint(preferred_username='otto')}"}
    who = httpx.get(f"{url}/api/2.0/loopline/auth/whoami", headers=provider_token).json()
    assert who["user"] == "otto" and who["via"] == "oidc" and who["role"] is None  # known now, but no role
    search = httpx.post(f"{url}/api/2.0/mlflow/experiments/search", json={}, headers=provider_token)
    assert search.status_code == 403
    expired = provider.mint(preferred_username="otto", exp=1)
    other_audience = provider.mint(preferred_username="otto", aud="another-app")
    forged = Provider(issuer=provider.issuer).mint(preferred_username="otto")  # signed by another key
    # A provider's user named like a local account (here the password user paula) never becomes it.
    local = provider.mint(preferred_username="paula")
    assert (
        httpx.get(
            f"{url}/api/2.0/loopline/auth/whoami", headers={"Authorization": f"Bearer {local}"}
        ).status_code
        == 401
    )
    for bad in (expired, other_audience, forged):
        r = httpx.get(f"{url}/api/2.0/loopline/auth/whoami", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
