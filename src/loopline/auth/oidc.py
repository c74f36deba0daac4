"""OpenID Connect: JWT bearer tokens from an organisation's identity provider, and the web UI's
sign-in through it (the authorization-code flow, with PKCE and a nonce).

The provider is found from its issuer URL (``/.well-known/openid-configuration``); its signing keys
come from the JWKS it names, fetched and cached by PyJWT's ``PyJWKClient`` (a key it has not seen yet,
after a rotation, is fetched on first use). A token's user is its ``preferred_username`` (else
``email``, else ``sub``); a user seen for the first time is created without a password and without
roles, so an admin grants them what they may do (``loopline roles grant``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from loopline.errors import AlreadyExists, Unauthenticated, require

if TYPE_CHECKING:
    from loopline.auth.sql_store import SqlAuthStore
    from loopline.auth.types import Identity
    from loopline.config import Settings

log = logging.getLogger("loopline.auth")
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]  # never "none" or HMAC


class OidcProvider:
    """One issuer: verifies its tokens and runs its sign-in flow for the UI."""

    def __init__(self, settings: Settings, store: SqlAuthStore) -> None:
        require("jwt", "oidc")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.store = store
        self._config: dict[str, Any] | None = None
        self._keys: Any = None  # jwt.PyJWKClient, made with the discovery document
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        with self._lock:
            if self._config is None:
                import httpx

                resp = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10)
                resp.raise_for_status()
                self._config = dict(resp.json())
            return self._config

    def claims(self, token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """The verified claims of a JWT from this issuer (signature, issuer, audience, expiry)."""
        import jwt

        if self._keys is None:
            self._keys = jwt.PyJWKClient(self.config()["jwks_uri"], cache_keys=True, lifespan=3600)
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=_ALGORITHMS, issuer=self.issuer,
                audience=self.audience or None, options={"verify_aud": bool(self.audience)},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"The OIDC token is not valid: {exc}.") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise Unauthenticated("The OIDC sign-in's nonce does not match: start again.")
        return claims

    def identity(self, token: str) -> Identity | None:
        """The identity a bearer JWT stands for (None when it does not verify)."""
        try:
            return self._identity_of(self.claims(token))
        except Unauthenticated as exc:
            log.info("%s", exc.message)
            return None

    def _identity_of(self, claims: dict[str, Any]) -> Identity | None:
        name = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
        found = self.store.identity(name, via="oidc", origin="oidc")
        if found is None:
            try:  # first sight: a user with no password and no roles, vouched for by the provider
                self.store.create_user(name, origin="oidc")
            except AlreadyExists:  # disabled, or a local user of that name, whom a token may not become
                log.warning("OIDC user %r refused: a local or disabled user has that name", name)
                return None
            found = self.store.identity(name, via="oidc", origin="oidc")
        return found

    # ---- the UI's sign-in: authorization code + PKCE -------------------------------------------

    def start(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The provider's authorization URL to send the browser to, and what to keep until it comes
        back (state, nonce and the PKCE verifier: in a short-lived cookie)."""
        flow = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
        }
        challenge = base64.urlsafe_b64encode(hashlib.sha256(flow["verifier"].encode()).digest()).rstrip(b"=")
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": flow["state"],
            "nonce": flow["nonce"],
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
        return f"{self.config()['authorization_endpoint']}?{urlencode(query)}", flow

    def finish(self, code: str, redirect_uri: str, flow: dict[str, str]) -> Identity:
        """Exchange the code the provider sent back for tokens, verify the ID token, and return the
        identity it names."""
        import httpx

        resp = httpx.post(
            self.config()["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": flow["verifier"],
            },
            auth=(self.client_id, self.client_secret),
            timeout=10,
        )
        if resp.status_code != 200:
            raise Unauthenticated(f"The identity provider refused the sign-in ({resp.status_code}).")
        claims = self.claims(str(resp.json().get("id_token", "")), nonce=flow["nonce"])
        found = self._identity_of(claims)
        if found is None:
            raise Unauthenticated("This user is disabled on this server.")
        return found


def oidc_provider(settings: Settings, store: SqlAuthStore) -> OidcProvider | None:
    return OidcProvider(settings, store) if settings.oidc_issuer else None
