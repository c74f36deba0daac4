"""A minimal OpenID Connect provider on 127.0.0.1, for tests: discovery, JWKS, an authorization
endpoint that signs in one configured user at once, and a token endpoint that checks the client's
secret and the PKCE verifier. Tokens are RS256 JWTs signed with a key made per provider."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from support import free_port, wait_http

CLIENT_ID, CLIENT_SECRET = "loopline", "s3cret-of-the-client"


@dataclass
class Provider:
    issuer: str
    user: str = "olivia"  # who signs in at the authorization endpoint
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def mint(self, **claims: Any) -> str:
        """A JWT signed by this provider: an access token for ``user`` unless claims say otherwise."""
        now = int(time.time())
        user = claims.get("preferred_username", self.user)
        body = {"iss": self.issuer, "aud": CLIENT_ID, "sub": f"sub-{user}", "preferred_username": user,
                "iat": now, "exp": now + 300, **claims}  # fmt: skip
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})

    def app(self) -> Starlette:
        async def discovery(_: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def jwks(_: Request) -> Response:
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return JSONResponse({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
                return JSONResponse({"error": "invalid_request"}, 400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": q["nonce"],
                "challenge": q["code_challenge"],
                "redirect": q["redirect_uri"],
            }
            return RedirectResponse(
                f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302
            )

        async def token(request: Request) -> Response:
            form = await request.form()
            basic = base64.b64decode(request.headers.get("authorization", " ").split(" ")[1] or b"").decode()
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if basic != f"{CLIENT_ID}:{CLIENT_SECRET}" or grant is None or digest != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, 400)
            if form.get("redirect_uri") != grant["redirect"]:
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse(
                {
                    "id_token": self.mint(nonce=grant["nonce"]),
                    "access_token": self.mint(),
                    "token_type": "Bearer",
                }
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@contextmanager
def running_provider() -> Iterator[Provider]:
    port = free_port()
    provider = Provider(issuer=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_http(f"{provider.issuer}/jwks")
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
