"""What a pipeline run records to be reproducible: code version, interpreter, packages, seed.

``capture(path)`` returns a JSON-able dict:

- ``git``: the commit of the repository holding ``path``, whether the tree is dirty, and a BLAKE3
  hash of the uncommitted changes (``git diff HEAD`` plus the contents of untracked, not ignored
  files), so two runs from the same commit with different edits are told apart;
- ``python``: version and implementation; ``platform``: OS and machine;
- ``packages``: ``name==version`` of every installed distribution, sorted;
- ``loopline``: Loopline's version.

``compare(a, b)`` lists what differs between two captures, for ``loopline pipeline rerun``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

_GIT_TIMEOUT = 10.0
_HASH_LIMIT = 16 << 20


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(path: str | Path) -> dict[str, Any]:
    """Commit, dirtiness and a hash of uncommitted changes of the repository around ``path``."""
    import blake3

    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top is None:
        return {}
    root = Path(top.decode().strip())
    commit = (_git(["rev-parse", "HEAD"], root) or b"").decode().strip()
    h = blake3.blake3()
    diff = _git(["diff", "HEAD", "--binary"], root) or b""
    h.update(diff)
    untracked = (_git(["ls-files", "--others", "--exclude-standard", "-z"], root) or b"").split(b"\0")
    dirty = bool(diff)
    for rel in sorted(u for u in untracked if u):
        dirty = True
        h.update(b"\0" + rel + b"\0")
        path = root / rel.decode(errors="replace")
        try:
            size = path.stat().st_size
            # big untracked files (data, checkpoints) count by size and time, not by content
            h.update(
                path.read_bytes() if size <= _HASH_LIMIT else f"{size}:{path.stat().st_mtime_ns}".encode()
            )
        except OSError:
            continue
    return {
        "root": str(root),
        "commit": commit,
        "dirty": dirty,
        "changes_hash": str(h.hexdigest()) if dirty else "",
    }


def installed_packages() -> list[str]:
    """``name==version`` of every installed distribution, sorted by name.

    Read from the ``*.dist-info`` / ``*.egg-info`` folder names on ``sys.path`` (what pip writes),
    which takes milliseconds; parsing every distribution's metadata takes a second.
    """
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            stem, dot, kind = folder.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info") or "-" not in stem:
                continue
            name, _, version = stem.partition("-")
            version = version.split("-py", 1)[0]
            seen.setdefault(name.lower().replace("_", "-"), f"{name.replace('_', '-')}=={version}")
    return [seen[k] for k in sorted(seen)]


def capture(path: str | Path | None = None) -> dict[str, Any]:
    """Everything above, for the code at ``path`` (default: the working directory)."""
    from loopline._version import __version__

    return {
        "git": git_state(path or os.getcwd()),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "release": platform.release(),
        },
        "executable": sys.executable,
        "loopline": __version__,
        "packages": installed_packages(),
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two captures (empty when they match)."""
    out: list[str] = []
    gb, ga = before.get("git", {}), after.get("git", {})
    if gb.get("commit") != ga.get("commit"):
        out.append(f"git commit {gb.get('commit', '-')[:12]} → {ga.get('commit', '-')[:12]}")
    if gb.get("changes_hash") != ga.get("changes_hash"):
        out.append("uncommitted changes differ")
    pb, pa = before.get("python", {}).get("version"), after.get("python", {}).get("version")
    if pb != pa:
        out.append(f"Python {pb} → {pa}")
    old = dict(p.split("==", 1) for p in before.get("packages", []) if "==" in p)
    new = dict(p.split("==", 1) for p in after.get("packages", []) if "==" in p)
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            out.append(f"{name} {old.get(name, '(absent)')} → {new.get(name, '(absent)')}")
    return out
