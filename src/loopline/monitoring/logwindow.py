"""A monitor's window over the serving inference log, read incrementally.

The inference server writes immutable Parquet parts (``loopline.serving.inference_log``), laid out
and typed as :mod:`loopline.serving.log_schema` declares: one folder per model of predictions and
one of feedback, each partitioned by date. A monitor's cursor (its ``state``) remembers which
parts it has read; a run lists only the date folders from the day before its last run on, reads only
parts it has not seen, and appends their rows to the monitor's **window buffer** — one Parquet file in
the artifact store (``monitoring/monitors/<name>/window.parquet``) holding just the rows of the
current window (by time, or the last N rows), with their ground truth once feedback arrives. So each
run reads new log rows only, whatever the log's length; the buffer is bounded by the window.

Rows: each logged request's ``inputs`` (``{"columns", "data"}``, a list of records or a mapping of
columns) become one row per input row, with the request's id and time, its prediction (``outputs``:
one value per row; a list of class probabilities becomes the index of the largest) and its label.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from loopline.artifacts import ArtifactStore
from loopline.errors import NotFound
from loopline.serving import log_schema as ls

REQUEST, TIME, PREDICTION, LABEL = "__request_id", "__time_ms", "__prediction", "__label"
MAX_PENDING_FEEDBACK = 20_000


@dataclass(frozen=True)
class Window:
    kind: str  # "time" (size in ms) or "rows"
    size: int

    @classmethod
    def parse(cls, text: str) -> Window:
        from loopline.errors import InvalidInput

        t = text.strip().lower().replace(" ", "")
        units = {
            "rows": ("rows", 1),
            "s": ("time", 1000),
            "m": ("time", 60_000),
            "h": ("time", 3_600_000),
            "d": ("time", 86_400_000),
        }
        for suffix, (kind, scale) in units.items():
            number = t.removesuffix(suffix)
            if t.endswith(suffix) and number.isdigit() and int(number) > 0:
                return cls(kind, int(number) * scale)
        raise InvalidInput(
            f"Invalid window {text!r}.", hint="Use a duration (30m, 1h, 7d) or a count (1000rows)."
        )


def _date_dirs(store: ArtifactStore, prefix: str) -> list[tuple[str, str]]:
    try:
        entries = store.list(prefix)
    except (NotFound, FileNotFoundError):
        return []
    key = f"{ls.DATE}="
    return sorted((e.path.rsplit(key, 1)[-1], e.path) for e in entries if e.is_dir and key in e.path)


def new_parts(store: ArtifactStore, prefix: str, seen: set[str], since_date: str) -> list[str]:
    """Parquet parts under ``prefix`` in date folders from ``since_date`` on, not in ``seen``."""
    out: list[str] = []
    for date, path in _date_dirs(store, prefix):
        if date < since_date:
            continue
        out += [f.path for f in store.walk(path) if f.path.endswith(".parquet") and f.path not in seen]
    return sorted(out)


def _written_ms(path: str) -> int:
    name = path.rsplit("/", 1)[-1]  # part-<ms>-<pid>-<n>.parquet
    try:
        return int(name.split("-")[1])
    except (IndexError, ValueError):
        return 0


def parts_since(store: ArtifactStore, prefix: str, since_ms: int) -> list[str]:
    """Parts under ``prefix`` written from ``since_ms`` on: parts are named ``part-<written ms>-…``,
    so a row logged after ``since_ms`` is in one of them, whatever the log's length."""
    since_date = dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC).strftime("%Y-%m-%d")
    return [p for p in new_parts(store, prefix, set(), since_date) if _written_ms(p) >= since_ms]


def read_parts(store: ArtifactStore, paths: Iterable[str]) -> list[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for p in paths:
        with store.open(p) as f:
            tables.append(pq.ParquetFile(pa.BufferReader(f.read())).read())  # in this thread: see read_log
    return tables


def _rows(inputs: Any) -> list[dict[str, Any]]:
    if isinstance(inputs, Mapping):
        if "columns" in inputs and "data" in inputs:
            cols = [str(c) for c in inputs["columns"]]
            return [dict(zip(cols, r, strict=False)) for r in inputs["data"] if isinstance(r, list | tuple)]
        if "dataframe_split" in inputs:
            return _rows(inputs["dataframe_split"])
        if "dataframe_records" in inputs or "instances" in inputs:
            return _rows(inputs.get("dataframe_records", inputs.get("instances")))
        lists = {str(k): v for k, v in inputs.items() if isinstance(v, list)}
        if lists and len({len(v) for v in lists.values()}) == 1:
            n = len(next(iter(lists.values())))
            return [{k: v[i] for k, v in lists.items()} for i in range(n)]
        return [{str(k): v for k, v in inputs.items()}]
    if isinstance(inputs, list) and inputs and all(isinstance(r, Mapping) for r in inputs):
        return [dict(r) for r in inputs]
    return []


def row_predictions(outputs: Any, n: int) -> list[Any]:
    """One prediction per input row from a logged ``outputs`` (class probabilities: the likeliest)."""
    if isinstance(outputs, Mapping):
        for key in ("predictions", "outputs", "prediction"):
            if key in outputs:
                return row_predictions(outputs[key], n)
        return [next(iter(outputs.values()), None)] * n if len(outputs) == 1 else [None] * n
    if not isinstance(outputs, list) or len(outputs) != n:
        return [outputs if n == 1 and not isinstance(outputs, list | dict) else None] * n
    out = []
    for v in outputs:
        if isinstance(v, list):
            v = max(range(len(v)), key=v.__getitem__) if len(v) > 1 else (v[0] if v else None)
        elif isinstance(v, Mapping):
            v = next(iter(v.values()), None)
        out.append(v)
    return out


def decode_predictions(table: Any, deployment: str | None) -> list[dict[str, Any]]:
    """One record per input row of every successful request in ``table`` (of ``deployment`` if given)."""
    cols = table.to_pydict()
    records: list[dict[str, Any]] = []
    for i, rid in enumerate(cols.get(ls.REQUEST_ID, [])):
        if cols[ls.STATUS][i] != 200 or (deployment is not None and cols[ls.DEPLOYMENT][i] != deployment):
            continue
        rows = _rows(orjson.loads(cols[ls.INPUTS][i]))
        preds = row_predictions(orjson.loads(cols[ls.OUTPUTS][i]), len(rows))
        ts = cols[ls.TIMESTAMP][i]
        ms = int(ts.timestamp() * 1000) if isinstance(ts, dt.datetime) else int(ts)
        for j, (row, pred) in enumerate(zip(rows, preds, strict=True)):
            records.append({**row, REQUEST: f"{rid}#{j}", TIME: ms, PREDICTION: pred, LABEL: None})
    return records


def feedback_labels(tables: list[Any]) -> dict[str, Any]:
    """request id → ground truth (a value, or a list with one value per row of the request)."""
    out: dict[str, Any] = {}
    for t in tables:
        d = t.to_pydict()
        for rid, truth in zip(d.get(ls.REQUEST_ID, []), d.get(ls.GROUND_TRUTH, []), strict=True):
            out[rid] = orjson.loads(truth)
    return out


def apply_labels(records: list[dict[str, Any]], labels: dict[str, Any]) -> set[str]:
    """Set each record's label from ``labels`` (by request id); returns the request ids used."""
    used: set[str] = set()
    for r in records:
        rid, _, j = r[REQUEST].rpartition("#")
        if rid in labels:
            truth = labels[rid]
            r[LABEL] = truth[int(j)] if isinstance(truth, list) and int(j) < len(truth) else truth
            used.add(rid)
    return used


def trim(records: list[dict[str, Any]], window: Window, now_ms: int) -> list[dict[str, Any]]:
    records.sort(key=lambda r: r[TIME])
    if window.kind == "rows":
        return records[-window.size :]
    return [r for r in records if r[TIME] >= now_ms - window.size]


def load_buffer(store: ArtifactStore, path: str) -> list[dict[str, Any]]:
    try:
        with store.open(path) as f:
            data = f.read()
    except (NotFound, FileNotFoundError):
        return []
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.ParquetFile(pa.BufferReader(data)).read()  # in this thread: see serving's read_log
    rows: list[dict[str, Any]] = table.to_pylist()
    for r in rows:  # labels and predictions are kept as JSON so that any type survives
        r[LABEL] = orjson.loads(r[LABEL]) if r.get(LABEL) is not None else None
        r[PREDICTION] = orjson.loads(r[PREDICTION]) if r.get(PREDICTION) is not None else None
    return rows


def save_buffer(store: ArtifactStore, path: str, records: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            **r,
            LABEL: None if r[LABEL] is None else orjson.dumps(r[LABEL]).decode(),
            PREDICTION: None if r[PREDICTION] is None else orjson.dumps(r[PREDICTION]).decode(),
        }
        for r in records
    ]
    sink = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist(rows) if rows else pa.table({REQUEST: pa.array([], pa.string())}), sink
    )
    store.put_bytes(sink.getvalue(), path)


def features_table(records: list[dict[str, Any]], columns: list[str]) -> Any:
    """The window's feature columns (and prediction/label) as an Arrow table, for ``drift``."""
    import pyarrow as pa

    data: dict[str, Any] = {}
    for c in columns:
        values = [r.get(c) for r in records]
        try:
            data[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: compare as text
            data[c] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(data)
