"""``loopline data status``: has the content at each tracked path changed since it was added?

The one data command meant to run in loops — CI steps, make rules, pre-commit hooks — so it is
kept lean: the standard library, BLAKE3 and orjson, no pydantic, SQLAlchemy or Typer. It reads
only this machine's hash cache: what was last added or checked out at each path, and the stat
fingerprints of its files, so an unchanged tree answers without reading a byte of it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopline.artifacts.manifest import Entry, Manifest
from loopline.data.hashing import HashCache, LocalFile, hash_files, walk
from loopline.errors import LooplineError
from loopline.locations import cache_dir, default_tracking_uri


@dataclass(frozen=True)
class PathStatus:
    path: str
    uri: str  # the version last added or checked out here
    state: str  # unchanged | modified | missing


def status(cache: HashCache, paths: Sequence[str] = ()) -> list[PathStatus]:
    """The state of every tracked path (or of those under ``paths``)."""
    wanted = [str(Path(p).resolve()) for p in paths]
    out = []
    for path, name, version, digest, single in cache.tracked():
        if wanted and not any(path == w or path.startswith(w.rstrip("/") + "/") for w in wanted):
            continue
        uri = f"datasets:/{name}/{version}"
        if not os.path.exists(path):
            out.append(PathStatus(path, uri, "missing"))
            continue
        files = walk(Path(path))
        if files[0].rel == "":
            files = [LocalFile(single or Path(path).name, files[0].path, files[0].size, files[0].fingerprint)]
        digests = hash_files(files, cache)
        now = Manifest.of(Entry(f.rel, digests[f.path], f.size) for f in files).digest
        out.append(PathStatus(path, uri, "unchanged" if now == digest else "modified"))
    return out


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="loopline data status",
        description="Show whether each path added (or checked out) on this machine still holds the "
        "version it was added as. Exit 0; with --exit-code, 1 when something changed.",
    )
    parser.add_argument("paths", nargs="*", help="only these paths (default: every tracked path)")
    parser.add_argument("--exit-code", action="store_true", help="exit 1 if a path is modified or missing")
    parser.add_argument("--tracking-uri", "-t", default=None, help="the database whose cache to read")
    args = parser.parse_args(list(argv))
    tracking = args.tracking_uri or default_tracking_uri()
    try:
        found = status(HashCache(cache_dir(tracking) / "hashes.sqlite"), args.paths)
    except LooplineError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1
    if not found:
        print("Nothing tracked here yet: `loopline data add PATH --name NAME` starts.")
    cwd = os.getcwd()
    for s in found:
        shown = os.path.relpath(s.path, cwd) if s.path.startswith(cwd) else s.path
        print(f"{s.state:<10} {shown}  ({s.uri})")
    changed = any(s.state != "unchanged" for s in found)
    return 1 if args.exit_code and changed else 0
