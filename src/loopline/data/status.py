"""``loopline data status``: has the content at each tracked path changed since it was added?

The one data command meant to run in loops — CI steps, make rules, pre-commit hooks — so it is
kept lean: the standard library, BLAKE3 and orjson, no pydantic, SQLAlchemy or Typer. It reads
only this machine's hash cache: what was last added or checked out at each path, and the stat
fingerprints of its files, so an unchanged tree answers without reading a byte of it.
"""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Sequence

from loopline.data.hashing import HashCache, LocalFile, current_stamp, hash_files, tree_stamp, walk
from loopline.errors import LooplineError
from loopline.locations import cache_folder, default_tracking_uri, normalize_store_uri, sqlite_file

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see hashing.LocalFile)
if TYPE_CHECKING:
    from typing import NamedTuple

    class PathStatus(NamedTuple):
        path: str
        uri: str  # the version last added or checked out here
        state: str  # unchanged | modified | missing

else:
    PathStatus = collections.namedtuple("PathStatus", ["path", "uri", "state"])


def status(cache: HashCache, paths: Sequence[str] = ()) -> list[PathStatus]:
    """The state of every tracked path (or of those under ``paths``)."""
    wanted = [os.path.realpath(p) for p in paths]
    out = []
    for path, name, version, digest, single, stamp in cache.tracked():
        if wanted and not any(path == w or path.startswith(w.rstrip("/") + "/") for w in wanted):
            continue
        uri = f"datasets:/{name}/{version}"
        if not os.path.exists(path):
            out.append(PathStatus(path, uri, "missing"))
            continue
        single_name = single or os.path.basename(path)
        if stamp is not None and current_stamp(path, single_name) == stamp:
            # Every path and stat fingerprint as when it was added: no lookups, no hashing.
            out.append(PathStatus(path, uri, "unchanged"))
            continue
        files = walk(path)
        if files[0].rel == "":
            files = [LocalFile(single_name, files[0].path, files[0].size, files[0].fingerprint)]
        now_stamp = tree_stamp(files)
        from loopline.artifacts.manifest import Entry, Manifest  # only when the stamps differ

        digests = hash_files(files, cache)
        now = Manifest.of(Entry(f.rel, digests[f.path], f.size) for f in files).digest
        if now == digest:
            cache.restamp(path, digest, now_stamp)  # e.g. touched but unchanged: fast next time
        out.append(PathStatus(path, uri, "unchanged" if now == digest else "modified"))
    return out


_USAGE = """Usage: loopline data status [PATHS]... [--exit-code] [--tracking-uri URI]

Show whether each path added (or checked out) on this machine still holds the version it was
added as: only these PATHS, or every tracked path. Exit 0; with --exit-code, 1 when a path is
modified or missing. --tracking-uri (-t): the database whose cache to read."""


class _Usage(Exception):
    pass


def _parse(argv: Sequence[str]) -> tuple[list[str], bool, str | None]:
    """PATHS, --exit-code, --tracking-uri/-t (also ``--tracking-uri=URI`` and ``-tURI``).

    By hand, not argparse: its import is a tenth of this command's run time.
    """
    paths: list[str] = []
    exit_code, tracking = False, None
    args = iter(argv)
    for arg in args:
        if arg == "--":
            paths.extend(args)
        elif arg == "--exit-code":
            exit_code = True
        elif arg in ("--tracking-uri", "-t"):
            tracking = next(args, None)
            if tracking is None:
                raise _Usage(f"Option {arg!r} requires an argument.")
        elif arg.startswith("--tracking-uri="):
            tracking = arg.partition("=")[2]
        elif arg.startswith("-t") and not arg.startswith("--"):
            tracking = arg[2:]
        elif arg.startswith("-") and arg != "-":
            raise _Usage(f"No such option: {arg}")
        else:
            paths.append(arg)
    return paths, exit_code, tracking


def main(argv: Sequence[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(_USAGE)
        return 0
    try:
        paths, exit_code, tracking_uri = _parse(argv)
    except _Usage as e:
        print(f"{_USAGE.splitlines()[0]}\nError: {e}", file=sys.stderr)
        return 2
    tracking = normalize_store_uri(tracking_uri) if tracking_uri else default_tracking_uri()
    database = sqlite_file(tracking)
    if tracking_uri and database is not None and not os.path.isfile(database):
        print(f"Error: No Loopline store at {database}.", file=sys.stderr)
        print("Hint: Check the path given with --tracking-uri.", file=sys.stderr)
        return 2
    cache = os.path.join(cache_folder(tracking), "hashes.sqlite")
    try:  # a read: no cache yet means nothing tracked, and none is made
        found = status(HashCache(cache), paths) if os.path.exists(cache) else []
    except LooplineError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return e.exit_code
    if not found:
        print("Nothing tracked here yet: `loopline data add PATH --name NAME` starts.")
    cwd = os.getcwd()
    for s in found:
        shown = os.path.relpath(s.path, cwd) if s.path.startswith(cwd) else s.path
        print(f"{s.state:<10} {shown}  ({s.uri})")
    changed = any(s.state != "unchanged" for s in found)
    return 1 if exit_code and changed else 0
