"""The team server's cost: ``loopline data add`` through ``loopline server`` against the same add on the
embedded store, as fresh command-line processes on the same host (what a user types).

* ``server_add_one_file`` — one 1 GiB file of random bytes (``--quick``: 128 MiB);
* ``server_add_many_files`` — 10,000 files, 1 GiB in all (``--quick``: 1,000 files).

The embedded add copies into the local store (default mode; this machine's ext4 has no reflinks).
Through the server the client hashes, asks which blobs are missing, streams them to the server, which
checks each BLAKE3 while storing it, and creates the version: the server runs on this host, on its own
SQLite database and artifact folder, so both sides pay for the bytes once. The goal is the issue's:
through the server within 1.5x of embedded (the "peer" column here is embedded Loopline).

Each figure is the fastest of 3 rounds (``--quick``: 1), each on a fresh copy of the data and a fresh
store; as in ``benchmarks/data.py``, no round deletes a file (this machine's ext4 makes file creation
slow for minutes after a mass deletion), finished rounds' files are truncated instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    ForeignLoad,
    Options,
    Report,
    Row,
    clean_env,
    log,
    module_main,
    tracking_server,
)
from benchmarks.data import _make_data, _retire, _run

NAME = "team_server"
TITLE = "Team server: loopline data add through loopline server vs embedded (fresh CLI processes)"
WORKLOADS = ("server_add_one_file", "server_add_many_files")


def _embedded(work: Path, data: Path) -> float:
    env = clean_env({"LOOPLINE_TRACKING_URI": f"sqlite:///{work / 'll' / 'loopline.db'}"})
    (work / "ll").mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "loopline.cli", "db", "upgrade"], work, env
    )  # the store exists, as a server's does
    return _run(
        [sys.executable, "-m", "loopline.cli", "data", "add", str(data), "--name", "bench"], work, env
    )


def _through_server(work: Path, data: Path) -> float:
    server = tracking_server("loopline", work / "server")  # its own SQLite database and artifact folder
    try:
        server.start()
        client = work / "client"
        client.mkdir()
        cmd = [sys.executable, "-m", "loopline.cli", "data", "add", str(data), "--name", "bench"]
        seconds = _run(cmd, client, clean_env({"LOOPLINE_TRACKING_URI": server.url}))
        if (client / ".loopline").exists():
            raise RuntimeError("the client opened a local store instead of the server's")
        return seconds
    finally:
        server.stop()


def run(opts: Options) -> Report:
    report = Report(NAME, TITLE, peer_name="embedded")
    picked = opts.only or set(WORKLOADS)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-team-", dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        log("team_server: writing the benchmark data")
        sources = _make_data(root, opts.quick)
        with ForeignLoad() as noise:
            for workload in WORKLOADS:
                if workload not in picked:
                    continue
                src, size = sources[workload.removeprefix("server_")]
                rounds: dict[str, list[float]] = {"embedded": [], "server": []}
                for system, fn in (("embedded", _embedded), ("server", _through_server)):
                    for n in range(1 if opts.quick else 3):
                        work = root / f"{workload}-{system}-{n}"
                        copy = work / src.name
                        log(f"team_server: {workload}: {system}, round {n + 1}")
                        shutil.copytree(src, copy)
                        os.sync()
                        rounds[system].append(fn(work, copy))
                        _retire(work)
                figures[workload] = {"bytes": size, "files": sum(1 for _ in src.rglob("*.bin")), **rounds}
        report.meta.update(
            figures=figures, python=sys.version.split()[0], foreign_cpu_cores={"all": noise.cores}
        )
    for workload, row in figures.items():
        what = "1 file" if row["files"] == 1 else f"{row['files']:,} files"
        report.rows.append(
            Row(workload, f"data add {row['bytes'] / (1 << 30):.2g} GiB as {what}: server vs embedded", "s",
                min(row["embedded"]), min(row["server"]), False, goal_ratio=0.67,
                note="within 1.5x of embedded: ratio >= 0.67")
        )  # fmt: skip
    return report


if __name__ == "__main__":
    module_main(run, {}, sys.argv[1:])
