"""A small, known store for the web UI's tests, written through the MLflow-compatible REST API."""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass, field

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

API = "/api/2.0/mlflow"
RUNS = 30  # more than one page of 25
LONG_POINTS = 6_000  # more than a chart's default 1,000 points: the server downsamples


@dataclass
class Seeded:
    experiment_id: str
    run_ids: dict[str, str] = field(default_factory=dict)  # run name -> ID
    lr: dict[str, float] = field(default_factory=dict)  # run name -> its param lr
    loss: dict[str, float] = field(default_factory=dict)  # run name -> its latest loss
    long_run: str = ""
    parent: str = ""
    child: str = ""
    model: str = "churn-model"
    artifacts_run: str = ""  # run-03, which has the files of ARTIFACTS


def png(width: int = 40, height: int = 20) -> bytes:
    """A small valid PNG: a blue-to-orange gradient."""
    raw = b"".join(
        b"\x00"
        + b"".join(bytes((int(255 * x / width), 114, 178 - int(100 * x / width))) for x in range(width))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def parquet() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(120)), "score": [i / 100 for i in range(120)]}), out)
    return out.getvalue()


# A report whose script must not run: the UI frames it sandboxed.
REPORT = b"<!doctype html><title>Drift</title><h1 id=r>Drift report</h1><script>document.title='ran'</script>"
ARTIFACTS = {
    "plots/loss.png": png(),
    "report.html": REPORT,
    "data/sample.csv": b"city,customers\nOslo,12\nLima,7\n"
    + b"".join(b"Town %d,%d\n" % (i, i) for i in range(80)),
    "data/sample.parquet": parquet(),
    "notes.txt": "Trained on the March snapshot. <b>not bold</b> — ünïcode\n".encode(),
    "model/MLmodel": b"flavors:\n  sklearn: {}\n",
    "weights.bin": bytes(range(256)),
}


def lr_of(i: int) -> float:
    return round(0.001 * (1 + (i * 7) % RUNS), 4)  # distinct, not in run order


def seed(url: str) -> Seeded:
    with httpx.Client(base_url=url + API, timeout=30) as c:

        def call(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = c.post(path, json=body)
            answer.raise_for_status()
            out: dict[str, object] = answer.json()
            return out

        def new_run(exp: str, name: str, tags: dict[str, str] | None = None) -> str:
            kv = [{"key": k, "value": v} for k, v in (tags or {}).items()]
            run = call(
                "/runs/create",
                {"experiment_id": exp, "run_name": name, "start_time": 1_700_000_000_000, "tags": kv},
            )
            info = run["run"]["info"]  # type: ignore[index]
            roots[info["run_id"]] = info["artifact_uri"].removeprefix("mlflow-artifacts:").strip("/")
            return str(info["run_id"])

        roots: dict[str, str] = {}

        exp = str(call("/experiments/create", {"name": "churn"})["experiment_id"])
        s = Seeded(exp)
        for i in range(RUNS):
            name = f"run-{i:02d}"
            rid = new_run(exp, name)
            lr = lr_of(i)
            metrics = [
                {
                    "key": "loss",
                    "value": 1.0 / (step + 1) + lr,
                    "timestamp": 1_700_000_000_000 + step,
                    "step": step,
                }
                for step in range(20)
            ]
            metrics.append({"key": "accuracy", "value": 1 - lr, "timestamp": 1_700_000_000_100, "step": 19})
            call(
                "/runs/log-batch",
                {
                    "run_id": rid,
                    "params": [{"key": "lr", "value": str(lr)}, {"key": "depth", "value": str(2 + i % 4)}],
                    "metrics": metrics,
                },
            )
            call("/runs/update", {"run_id": rid, "status": "FINISHED", "end_time": 1_700_000_060_000})
            s.run_ids[name], s.lr[name], s.loss[name] = rid, lr, 1.0 / 20 + lr

        s.artifacts_run = s.run_ids["run-03"]
        for rel, data in ARTIFACTS.items():
            put = httpx.put(
                f"{url}/api/2.0/mlflow-artifacts/artifacts/{roots[s.artifacts_run]}/{rel}", content=data
            )
            put.raise_for_status()

        long_exp = str(call("/experiments/create", {"name": "long-curves"})["experiment_id"])
        s.long_run = new_run(long_exp, "long")
        for start in range(0, LONG_POINTS, 1000):
            points = [
                {
                    "key": "loss",
                    "value": math.sin(step / 300) + (5.0 if step == 4321 else 0.0),  # one spike to keep
                    "timestamp": 1_700_000_000_000 + step,
                    "step": step,
                }
                for step in range(start, start + 1000)
            ]
            call("/runs/log-batch", {"run_id": s.long_run, "metrics": points})

        s.parent = new_run(long_exp, "sweep")
        s.child = new_run(long_exp, "trial-1", {"mlflow.parentRunId": s.parent})
        call("/registered-models/create", {"name": s.model, "description": "Predicts churn."})
        for rid in (s.run_ids["run-00"], s.child):
            call(
                "/model-versions/create",
                {"name": s.model, "source": f"mlflow-artifacts:/{exp}/{rid}/artifacts/model", "run_id": rid},
            )
        call("/registered-models/alias", {"name": s.model, "alias": "champion", "version": "2"})
    return s
