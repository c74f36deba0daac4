"""Secrets: API tokens (random, kept as SHA-256) and passwords (kept as scrypt hashes).

A token carries 256 random bits, so one SHA-256 is all its storage needs: there is nothing to guess,
and the lookup is one indexed equality. A password is low-entropy and gets a slow, salted hash
(``hashlib.scrypt``, from the standard library) — which is why the server caches a verified Basic
credential for a short while instead of hashing it on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PREFIX = "llt_"  # recognisable in a leaked-secrets scan, and told apart from an OIDC JWT
_N, _R, _P = 2**14, 8, 1  # scrypt's cost: ~50 ms and 16 MiB per hash (OWASP's minimum is 2**13)
MIN_PASSWORD = 8


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    """A session cookie or CSRF token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` hashes to ``stored`` (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
