"""A value the database cannot hold is the client's mistake: a 400 JSON, never a 500 (PostgreSQL
checks column lengths that SQLite does not)."""

from __future__ import annotations

from pathlib import Path

import httpx
from support import serve_loopline


def test_a_value_too_long_for_its_column_is_a_400_json(postgres_uri: str, tmp_path: Path) -> None:
    with serve_loopline(tmp_path, store=postgres_uri, check_log=True) as url:
        r = httpx.post(
            f"{url}/api/2.0/loopline/monitors/create",
            json={"name": "too-long", "target": "deployments:/" + "d" * 600},
        )
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "too long" in body["message"] and body["hint"]
        ok = httpx.post(
            f"{url}/api/2.0/loopline/monitors/create", json={"name": "fits", "target": "deployments:/d"}
        )
        assert ok.status_code == 200, ok.text
