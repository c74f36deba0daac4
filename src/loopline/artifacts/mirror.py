"""Copy an artifact root into another (a local folder into ``s3://…``, or back), file by file.

Blobs are content-addressed and never change, so a file already at the destination with the same
size is skipped: an interrupted copy is resumed by running it again. Local destinations are written
to a temporary name and renamed; an S3 object appears only once it is whole.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Progress = Callable[[int], None]  # bytes just copied
_CHUNK = 8 << 20


@dataclass(frozen=True)
class MirrorReport:
    files: int
    bytes: int
    skipped: int  # already at the destination


def _fs(uri: str) -> tuple[Any, str]:  # fsspec is untyped
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(uri)
    return fs, root.rstrip("/")


def listing(uri: str) -> dict[str, int]:
    """Every file under ``uri``: path relative to it -> size (staged uploads and ``tmp/`` left out)."""
    fs, root = _fs(uri)
    if not fs.exists(root):
        return {}
    found = fs.find(root, detail=True)
    out: dict[str, int] = {}
    for path, info in found.items():
        rel = path[len(root) :].lstrip("/")
        staged = rel.startswith("tmp/") or os.path.basename(rel).startswith(".tmp-")
        if info.get("type") == "file" and not staged:
            out[rel] = int(info.get("size") or 0)
    return out


def mirror(source: str, dest: str, progress: Progress | None = None) -> MirrorReport:
    """Copy every file of the artifact root ``source`` that ``dest`` lacks."""
    src_fs, src_root = _fs(source)
    dst_fs, dst_root = _fs(dest)
    have = listing(dest)
    local = "file" in dst_fs.protocol
    files = copied_bytes = skipped = 0
    for rel, size in sorted(listing(source).items()):
        if have.get(rel) == size:
            skipped += 1
            if progress is not None:
                progress(size)
            continue
        target = f"{dst_root}/{rel}"
        staged = f"{target}.tmp-{uuid.uuid4().hex}" if local else target
        dst_fs.makedirs(os.path.dirname(target), exist_ok=True)
        with src_fs.open(f"{src_root}/{rel}", "rb") as r, dst_fs.open(staged, "wb") as w:
            while chunk := r.read(_CHUNK):
                w.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        if local:
            os.replace(staged, target)
        files += 1
        copied_bytes += size
    return MirrorReport(files, copied_bytes, skipped)


__all__ = ["MirrorReport", "listing", "mirror"]
