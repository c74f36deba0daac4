"""Approving a rollout from the loop page on a server with auth on, in a real browser: the button
posts to the REST route with the session's CSRF token, and the server decides who may (a
maintainer of the workspace); a viewer sees its refusal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import serve_loopline
from ui_seed import Loop, seed_loop, store_context

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import RolloutState

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
PASSWORDS = {"mia": "mia's password", "vic": "vic's password"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Loop]]:
    home = tmp_path_factory.mktemp("approve-browser")
    ctx = store_context(home)
    auth = SqlAuthStore(ctx.engine)
    for user, role in (("mia", Role.MAINTAINER), ("vic", Role.VIEWER)):
        auth.create_user(user, password=PASSWORDS[user])
        auth.grant(user, "default", role)
    loop = seed_loop(ctx)
    env = {"LOOPLINE_AUTH": "1", "LOOPLINE_CONTROLLER_INTERVAL": "0"}  # no controller: it stays approved
    with serve_loopline(home, env=env, check_log=True) as url:
        yield url, home, loop


def _sign_in(browser: Any, url: str, user: str) -> tuple[Any, list[str]]:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(f"{url}/ui/loop")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui/loop")
    return page, errors


def test_a_viewer_is_refused_and_a_maintainer_approves(server: tuple[str, Path, Loop]) -> None:
    url, home, loop = server
    rollouts = SqlAutomationStore(store_context(home))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        form = f"#approve-{loop.waiting}"
        # A viewer sees the button (the server decides), and the server's refusal when pressed.
        page, errors = _sign_in(browser, url, "vic")
        page.locator(f"{form} input[name=reason]").fill("looks fine to me")
        page.locator(form).get_by_role("button", name="Approve").click()
        page.wait_for_selector(f"{form}[data-outcome='refused']")
        refusal = page.locator(f"{form} .approve-result").inner_text()
        assert "maintainer" in refusal and "(403)" in refusal, refusal
        assert rollouts.get_rollout(loop.waiting).state is RolloutState.AWAITING_APPROVAL
        # Chromium logs the refused request; nothing else may be on the console.
        assert errors == [
            "console: Failed to load resource: the server responded with a status of 403 (Forbidden)"
        ], errors
        page.context.close()

        page, errors = _sign_in(browser, url, "mia")
        button = page.locator(form).get_by_role("button", name="Approve")
        button.click()  # no reason yet: the browser asks for one, nothing is sent
        assert page.locator(f"{form}[data-outcome]").count() == 0
        page.get_by_label("Reason").fill("checked the shadow's numbers")
        page.keyboard.press("Enter")  # the form works from the keyboard too
        page.wait_for_selector(f"{form}[data-outcome='approved']")
        assert (
            f"rollout {loop.waiting} is now rolling" in page.locator(f"{form} .approve-result").inner_text()
        )
        assert button.is_disabled()
        page.wait_for_selector(f"#rollout-{loop.waiting} .badge.rolling")  # the rollouts below follow
        if os.environ.get("LOOPLINE_SCREENSHOTS") == "1":
            page.locator("#waiting-h").scroll_into_view_if_needed()
            page.screenshot(path=str(Path(__file__).parents[2] / "docs/screenshots/loop-approved.png"))
        approved = rollouts.get_rollout(loop.waiting)
        assert approved.state is RolloutState.ROLLING
        page.goto(f"{url}/ui/events?uri=rollouts:/{loop.waiting}")
        approval = page.locator("#events tr[data-action='loop.approve']")
        assert (
            "mia" in approval.inner_text() and "checked the shadow's numbers" in approval.text_content()
        )  # in the payload
        assert not errors, errors
        page.context.close()
        browser.close()
