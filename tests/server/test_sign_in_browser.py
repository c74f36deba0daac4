"""Signing in and out of the web UI in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import serve_loopline

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.context import Context

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("sign-in-browser")
    db = f"sqlite:///{home / 'server.db'}"
    store = SqlAuthStore(Context(Settings(tracking_uri=db, artifacts_uri=str(home / "artifacts"))).engine)
    store.create_user("bea", password="bea's password")
    store.grant("bea", "default", Role.VIEWER)
    with serve_loopline(home, store=db, env={"LOOPLINE_AUTH": "1"}, check_log=True) as url:
        yield url


def test_sign_in_browse_and_sign_out(server: str) -> None:
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/ui/models")
        assert "/ui/login" in page.url  # sent to sign in first
        page.get_by_label("Username").fill("bea")
        page.get_by_label("Password").fill("not it")
        page.get_by_role("button", name="Sign in").click()
        assert "Wrong username or password" in page.locator("[role=alert]").inner_text()
        page.get_by_label("Password").fill("bea's password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{server}/ui/models")  # ...and back where they were going
        assert page.locator(".who span").inner_text() == "bea"
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["loopline_session"]["httpOnly"] and cookies["loopline_session"]["sameSite"] == "Lax"
        page.get_by_role("button", name="Sign out").click()  # htmx posts it with the CSRF token
        page.wait_for_url(f"{server}/ui/login")
        page.goto(f"{server}/ui/models")
        assert "/ui/login" in page.url
        browser.close()
    assert not errors, errors
