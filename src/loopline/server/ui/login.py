"""Signing in to the web UI: a username and password form, or the organisation's OpenID Connect
provider (authorization code with PKCE), either of which ends in a server-side session.

The session cookie holds 256 random bits; the server keeps their SHA-256 (``user_sessions``), so a
session can be ended on the server and is shared by its replicas. It is ``HttpOnly`` and
``SameSite=Lax`` (``Secure`` over https); pages carry the session's CSRF token, which htmx sends back
as ``X-CSRF-Token`` on every state-changing request (the auth middleware checks it).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from loopline.auth.types import Identity
from loopline.errors import LooplineError
from loopline.server.auth import SESSION_COOKIE
from loopline.server.http import blocking
from loopline.server.state import state
from loopline.server.ui.templating import render

router = APIRouter(prefix="/ui", include_in_schema=False)
FLOW_COOKIE = "loopline_oidc"  # the OIDC flow's state, nonce and PKCE verifier, for 10 minutes
_SESSION_S = 12 * 3600


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of this UI only (no open redirect to another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return "/ui/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _signed_in(request: Request, who: Identity, target: str) -> Response:
    secret, _csrf = state(request).auth.create_session(who)
    response = RedirectResponse(_next(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=_SESSION_S,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(FLOW_COOKIE, path="/ui/login/")
    return response


def _page(request: Request, status_code: int = 200, *, next: str = "/ui/", **context: object) -> Response:
    st = state(request)
    return render(
        request, "login.html", status_code, title="Sign in", next=next, sso=st.oidc is not None,
        auth=st.settings.auth, **{"error": None, "username": "", **context},
    )  # fmt: skip


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _page(request, next=_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    user, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    st = state(request)
    client = request.client.host if request.client else "?"
    wait = st.authenticator.too_many_failures(client)
    who = None if wait else await blocking(st.auth.check_password, user, password)
    if who is None:
        if not wait:
            st.authenticator.failed(client)
        message = (
            f"Too many failed sign-ins: try again in {wait:.0f} s." if wait else "Wrong username or password."
        )
        return _page(request, 429 if wait else 401, next=target, error=message, username=user)
    return await blocking(_signed_in, request, who, target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await blocking(state(request).auth.end_session, secret)
    state(request).authenticator.forget()
    response = Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/login/oidc")
async def oidc_start(request: Request) -> Response:
    provider = state(request).oidc
    if provider is None:
        return RedirectResponse("/ui/login", status_code=303)
    url, flow = await blocking(provider.start, _callback(request))
    flow["next"] = _next(request.query_params.get("next"))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE, json.dumps(flow), max_age=600, httponly=True, samesite="lax", secure=_secure(request),
        path="/ui/login/",
    )  # fmt: skip
    return response


@router.get("/login/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    provider = state(request).oidc
    try:
        flow = json.loads(request.cookies.get(FLOW_COOKIE, "{}"))
    except ValueError:
        flow = {}
    params = request.query_params
    if provider is None or not flow or params.get("state") != flow.get("state") or "code" not in params:
        error = (
            params.get("error_description")
            or params.get("error")
            or "The sign-in did not match: start again."
        )
        return _page(request, 400, error=error)
    try:
        who = await blocking(provider.finish, params["code"], _callback(request), flow)
    except LooplineError as e:
        return _page(request, 401, error=e.message)
    return await blocking(_signed_in, request, who, flow.get("next", "/ui/"))


def _callback(request: Request) -> str:
    return str(request.url_for("oidc_callback"))
