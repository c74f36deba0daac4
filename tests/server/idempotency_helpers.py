"""What the idempotency tests share: a real server with a handle on its database."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from support import serve_loopline

from loopline.config import Settings
from loopline.data import DataClient
from loopline.metadata.engine import create_store_engine
from loopline.metadata.schema_idempotency import idempotency_keys
from loopline.server.idempotency import fingerprint

MLFLOW = "/api/2.0/mlflow"


@dataclass
class Server:
    url: str
    db: sa.Engine

    def post(self, path: str, body: dict[str, Any], key: str | bytes | None = None) -> httpx.Response:
        headers: dict[str, Any] = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return httpx.post(self.url + path, content=orjson.dumps(body), headers=headers, timeout=30)

    def runs(self) -> list[dict[str, Any]]:
        found = self.post(f"{MLFLOW}/runs/search", {"experiment_ids": ["0"]}).json()
        return list(found.get("runs", []))

    def dataset_versions(self, name: str) -> list[int]:
        found = httpx.get(f"{self.url}/api/2.0/loopline/data/versions", params={"name": name}).json()
        return sorted(v["version"] for v in found["versions"])

    def key_rows(self) -> dict[str, Any]:
        with self.db.connect() as conn:
            return {r.key: r for r in conn.execute(sa.select(idempotency_keys))}

    def put_key(
        self, key: str, path: str, body: bytes, *, age_ms: int = 0, status: int | None = None
    ) -> None:
        """A key's row as the server writes it (``status`` None: its request is still running)."""
        row = {
            "workspace": "default",
            "key": key,
            "method": "POST",
            "path": path,
            "fingerprint": fingerprint(b"", body),
            "created_at": int(time.time() * 1000) - age_ms,
            "status": status,
            "content_type": None if status is None else "application/json",
            "body": None if status is None else b'{"stored": true}',
        }
        with self.db.begin() as conn:
            conn.execute(sa.delete(idempotency_keys).where(idempotency_keys.c.key == key))
            conn.execute(sa.insert(idempotency_keys).values(row))


@contextlib.contextmanager
def serving(home: Path, store_uri: str) -> Iterator[Server]:
    with serve_loopline(home, store=store_uri) as url:
        db = create_store_engine(store_uri)
        try:
            yield Server(url, db)
        finally:
            db.dispose()


def new_run(name: str = "r") -> dict[str, Any]:
    return {"experiment_id": "0", "run_name": name, "start_time": 1_700_000_000_000}


def add_dataset(url: str, folder: Path) -> Any:
    """``customers`` (one Parquet file in ``folder``) added through the server at ``url``."""
    pq.write_table(pa.table({"id": [1, 2, 3]}), folder / "part-0.parquet")
    return DataClient(Settings.from_env({}, tracking_uri=url)).add(folder, "customers")
