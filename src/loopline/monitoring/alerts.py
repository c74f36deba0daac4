"""Alerts: a JSON POST to each of a monitor's webhooks, retried with backoff.

The payload (also the event's payload in the metadata store)::

    {"event": "monitor.drift_detected", "monitor": "churn-prod", "uri": "monitors:/churn-prod",
     "time_ms": 1764280000000, "run_id": 12, "dataset_drift": true, "drift_share": 0.6,
     "drifted_columns": ["age", "plan"], "prediction_drift": false, "performance": {"accuracy": 0.71},
     "breached": {"accuracy": 0.71}, "target": "deployments:/churn-prod"}

With a ``secret`` the body is signed: ``X-Loopline-Signature: sha256=<HMAC-SHA256 of the body, hex>``,
so the receiver can tell the alert came from this server (GitHub's webhook scheme). A payload with a
``text`` field is also a Slack incoming-webhook message.

Targets are checked at each delivery (``webhook_targets.py``): a host that resolves to a loopback,
private or link-local address is refused unless ``LOOPLINE_WEBHOOK_ALLOW`` allows it, and the
request goes to the address that was checked. A refused target is a failed delivery, logged.

A 2xx answer is success; a 5xx, 408, 429 or a connection error is retried (``retries`` more times,
sleeping 0.5 s, 1 s, 2 s, …); other 4xx are not (the receiver rejected the payload). Delivery never
raises: a failed alert is logged and reported back, and the run it belongs to is stored regardless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loopline.monitoring.webhook_targets import Allow, Refused, check_target

log = logging.getLogger("loopline.monitoring")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Delivery:
    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def post_alert(
    url: str,
    payload: Mapping[str, Any],
    *,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 5.0,
    secret: str | None = None,
    allow: str = "",
) -> Delivery:
    """POST ``payload`` as JSON to ``url``; retried on transient failures. ``allow`` is
    ``LOOPLINE_WEBHOOK_ALLOW``: the non-public targets that may be sent to."""
    import httpx

    body = json.dumps(dict(payload), default=str).encode()
    headers = {"User-Agent": "loopline-monitor", "Content-Type": "application/json"}
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Loopline-Signature"] = f"sha256={digest}"
    try:
        target = check_target(url, Allow.parse(allow))
    except (Refused, LookupError) as e:
        log.warning("alert to %s not sent: %s", shown(url), e)
        return Delivery(url, False, 0, None, str(e))
    send_to, extensions = url, dict[str, Any]()
    if target.address is not None:  # connect to the checked address, not to a new DNS answer
        send_to, extensions = _pinned(url, target.address), {"sni_hostname": target.host}
        headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
    status: int | None = None
    error = ""
    with httpx.Client(timeout=timeout) as client:  # redirects are not followed: no way elsewhere
        for attempt in range(1, retries + 2):
            try:
                r = client.post(send_to, content=body, headers=headers, extensions=extensions)
                status = r.status_code
                if 200 <= status < 300:
                    return Delivery(url, True, attempt, status)
                error = f"HTTP {status}"
                if status not in RETRY_STATUSES:
                    break
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            if attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
    log.warning("alert to %s failed after %d attempts: %s", shown(url), attempt, error)
    return Delivery(url, False, attempt, status, error)


def shown(url: str) -> str:
    """``url`` for a log line: scheme and host only (a Slack hook's path is its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


def _pinned(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (port, path and query kept)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:  # httpx sends it as Basic credentials
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def notify(webhooks: Sequence[str], payload: Mapping[str, Any], **kwargs: Any) -> list[Delivery]:
    """Deliver ``payload`` to every webhook; one's failure does not stop the others."""
    return [post_alert(url, payload, **kwargs) for url in webhooks]
