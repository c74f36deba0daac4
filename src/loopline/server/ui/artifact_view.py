"""What the run page shows of an artifact: a listing of a folder, and a preview of a file by its kind.

Files come through the server's own artifact routes (``mlflow_artifacts.list_location`` and
``open_location``), so a path that could leave the run's folder is refused there, once, for the UI
as for the REST API. Previews read a bounded head of the file: text and tables are shown from their
first bytes or rows whatever the file's size. Images and HTML reports are served by ``raw`` with a
media type for the browser and ``Content-Security-Policy: sandbox``, so a report's scripts never run
with the UI's origin (the page also frames it in a sandboxed iframe).
"""

from __future__ import annotations

import csv
import io
import posixpath
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_TEXT = 64 * 1024  # bytes of a text file shown
MAX_TABLE_BYTES = 256 * 1024  # bytes of a CSV read for its head
TABLE_ROWS = 50
IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".bmp": "image/bmp",
}
HTML = {".html", ".htm"}
TABLES = {".csv", ".tsv", ".parquet"}
TEXT = {
    ".txt", ".log", ".json", ".jsonl", ".yaml", ".yml", ".md", ".py", ".toml", ".cfg", ".ini", ".sh",
    ".xml", ".sql", ".r", ".ipynb", ".out", ".err",
}  # fmt: skip
# Files MLflow writes without a suffix that are text.
TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "LICENSE", "README"}


def kind_of(name: str) -> str:
    """image, html, table, text or binary, by the file's name."""
    base = posixpath.basename(name)
    suffix = posixpath.splitext(base)[1].lower()
    if suffix in IMAGES:
        return "image"
    if suffix in HTML:
        return "html"
    if suffix in TABLES:
        return "table"
    if suffix in TEXT or base in TEXT_NAMES or not suffix:
        return "text"
    return "binary"


def media_type(name: str) -> str:
    """What ``raw`` serves a file as: images and HTML as themselves, the rest as a download."""
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in IMAGES:
        return IMAGES[suffix]
    if suffix in HTML:
        return "text/html; charset=utf-8"
    return "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Preview:
    path: str
    kind: str
    text: str = ""
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None  # known for parquet (its footer says)
    problem: str = ""  # why a preview could not be made: the file is still downloadable


def preview(f: BinaryIO, path: str) -> Preview:
    """The preview of the file open in ``f`` (read no further than the preview needs)."""
    kind = kind_of(path)
    if kind == "text":
        head = f.read(MAX_TEXT + 1)
        if b"\x00" in head[:8192]:
            return Preview(path, "binary")
        return Preview(path, kind, head[:MAX_TEXT].decode("utf-8", "replace"), len(head) > MAX_TEXT)
    if kind == "table":
        try:
            return _parquet(f, path) if path.lower().endswith(".parquet") else _csv(f, path)
        except Exception as e:  # a malformed file is the artifact's problem, not the page's
            return Preview(path, kind, problem=f"Cannot read it as a table: {e}")
    return Preview(path, kind)


def _csv(f: BinaryIO, path: str) -> Preview:
    head = f.read(MAX_TABLE_BYTES + 1)
    truncated = len(head) > MAX_TABLE_BYTES
    text = head[:MAX_TABLE_BYTES].decode("utf-8", "replace")
    if truncated:  # the last line may be cut: drop it
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text), delimiter="\t" if path.lower().endswith(".tsv") else ",")
    rows: list[list[str]] = []
    for row in reader:
        rows.append(row)
        if len(rows) > TABLE_ROWS:
            break
    if not rows:
        return Preview(path, "table", problem="The file is empty.")
    more = len(rows) > TABLE_ROWS or truncated
    return Preview(path, "table", columns=rows[0], rows=rows[1 : TABLE_ROWS + 1], truncated=more)


def _parquet(f: BinaryIO, path: str) -> Preview:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(f)
    total = pf.metadata.num_rows
    batch = next(pf.iter_batches(batch_size=TABLE_ROWS), None)
    columns = [f"{fld.name} ({fld.type})" for fld in pf.schema_arrow]
    rows = [] if batch is None else [[_cell(v) for v in r.values()] for r in batch.to_pylist()]
    return Preview(path, "table", columns=columns, rows=rows, total_rows=total, truncated=total > len(rows))


def _cell(v: object) -> str:
    return "" if v is None else str(v)


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, folder path) of each folder from the root down to ``path``."""
    out = [("artifacts", "")]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        out.append((part, "/".join(parts[: i + 1])))
    return out


__all__ = ["Preview", "crumbs", "kind_of", "media_type", "preview"]
