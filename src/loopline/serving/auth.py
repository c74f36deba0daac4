"""Bearer tokens on ``loopline serve``'s prediction routes, when ``LOOPLINE_SERVE_AUTH=1``.

Off by default: a serving endpoint often sits behind its own gateway. On, every prediction and
feedback request must carry a credential of a user who is at least a viewer of the serving
workspace: an API token or an OIDC JWT (``Authorization: Bearer …``), or Basic credentials. Where
the tracking URI is a database the server looks them up there; where it is ``loopline server`` it
asks that server who they are. Answers are cached for ``CACHE_S`` seconds, so a steady client costs a
dict lookup per request. Probes, metadata, metrics and docs stay open.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from loopline.auth.authenticator import Authenticator, parse_credential, server_lookup, store_lookup
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.errors import PermissionDenied, Unauthenticated
from loopline.serving.http import Overloaded


class PredictionGate:
    """Who may ask for predictions: a signed-in viewer (or more) of ``workspace``."""

    def __init__(self, authenticator: Authenticator, workspace: str) -> None:
        self.authenticator = authenticator
        self.workspace = workspace

    @classmethod
    def for_settings(cls, settings: Settings) -> PredictionGate:
        if settings.is_remote:
            return cls(Authenticator(server_lookup(settings.tracking_uri)), settings.workspace)
        from loopline.auth.sql_store import SqlAuthStore
        from loopline.context import Context

        store = SqlAuthStore(Context(settings).engine)
        return cls(Authenticator(store_lookup(store)), settings.workspace)

    async def check(self, scope: MutableMapping[str, Any]) -> None:
        found = parse_credential(scope["headers"])
        if found is None or found[1] == "malformed":
            raise Unauthenticated(
                "This endpoint needs a bearer token.",
                hint="Send Authorization: Bearer <a Loopline API token>.",
            )
        key, kind, secret = found
        client = scope["client"][0] if scope.get("client") else "?"
        hit, who = self.authenticator.cached(key)
        if not hit:  # only a credential that must be checked waits out its address's failures
            wait = self.authenticator.too_many_failures(client)
            if wait:
                raise Overloaded(
                    f"Too many failed sign-ins: try again in {wait:.0f} s.", retry_after=int(wait) + 1
                )
            who = await asyncio.to_thread(self.authenticator.identify, key, kind, secret)
        if who is None:
            self.authenticator.failed(client)
            raise Unauthenticated(
                "The credentials are not valid.", hint="Check the token; it may be revoked."
            )
        role = who.role(self.workspace)
        if role is None or role < Role.VIEWER:
            raise PermissionDenied(
                f"User {who.user!r} has no role in workspace {self.workspace!r}.",
                hint=f"loopline roles grant {who.user} viewer -w {self.workspace}",
            )
