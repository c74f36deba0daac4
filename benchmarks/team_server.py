"""The team server's cost: ``loopline data add`` through ``loopline server`` against the same add on the
embedded store, and against DVC sharing the same data through S3, as fresh command-line processes on
the same host (what a user types).

* ``server_add_one_file`` — one 1 GiB file of random bytes (``--quick``: 128 MiB);
* ``server_add_many_files`` — 10,000 files, 1 GiB in all (``--quick``: 1,000 files);
* ``s3_share_one_file``, ``s3_share_many_files`` — the same data shared with a team through S3.

**Server vs embedded.** The embedded add copies into the local store (default mode; this machine's
ext4 has no reflinks). Through the server the client hashes, asks which blobs are missing, streams
them to the server in batches (many small blobs per request, a few requests at once; a big blob
alone), which checks each BLAKE3 while storing it, and creates the version: the server runs on this
host, on its own SQLite database and artifact folder, so both sides pay for the bytes once. The
goal is the issue's: through the server within 1.5x of embedded (the "peer" column is embedded
Loopline on these rows).

**Sharing through S3, against DVC.** DVC's way to put a dataset where a teammate can fetch it is
``dvc add`` (hash, copy into ``.dvc/cache``) then ``dvc push`` to an S3 remote; Loopline's is one
``loopline data add`` through the team's server, whose artifact store is a bucket. The pair is fair
in what it ends with: every file's content in a bucket of the same S3 server and a record of the
version a teammate can name (DVC: the ``.dvc`` file, and the objects in its remote; Loopline: the
version row on the server, and the blobs in its bucket), both hashed on the client. Each system gets
a fresh moto server (``moto_server`` from ``.venv-bench-data``: the only S3 server this machine can
run; it keeps objects in memory) and its own bucket; DVC's figure is ``dvc add`` + ``dvc push``
(two processes, both timed; a second row holds ``dvc push`` alone), Loopline's the one ``data add``,
with the server already running on SQLite and ``s3://<bucket>/loopline``. The peer column holds
DVC's figure on these rows; ratio above 1 is Loopline ahead. Each round then lists the bucket and
checks that every file's content is there (DVC's cache layout or Loopline's blob layout).

Each figure is the fastest of 3 rounds (``--quick``: 1), each on a fresh copy of the data and a fresh
store; as in ``benchmarks/data.py``, no round deletes a file (this machine's ext4 makes file creation
slow for minutes after a mass deletion), finished rounds' files are truncated instead.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import sys
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    REPO_ROOT,
    ForeignLoad,
    Options,
    Report,
    Row,
    Server,
    clean_env,
    free_port,
    log,
    module_main,
    tracking_server,
)
from benchmarks.data import _make_data, _retire, _run

NAME = "team_server"
TITLE = "Team server: loopline data add through loopline server vs embedded, and vs dvc add + push to S3"
WORKLOADS = ("server_add_one_file", "server_add_many_files", "s3_share_one_file", "s3_share_many_files")
DATA_BIN = REPO_ROOT / ".venv-bench-data" / "bin"
DVC, MOTO = DATA_BIN / "dvc", DATA_BIN / "moto_server"
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DVC_VERSION = "dvc 3.67.1 + dvc-s3 3.3.0"


def _add(data: Path) -> list[str]:
    return [sys.executable, "-m", "loopline.cli", "data", "add", str(data), "--name", "bench"]


def _embedded(work: Path, data: Path) -> dict[str, float]:
    env = clean_env({"LOOPLINE_TRACKING_URI": f"sqlite:///{work / 'll' / 'loopline.db'}"})
    (work / "ll").mkdir(parents=True, exist_ok=True)
    # The store exists, as a server's does (like `dvc init`: untimed).
    _run([sys.executable, "-m", "loopline.cli", "db", "upgrade"], work, env)
    return {"add": _run(_add(data), work, env)}


def _through_server(
    work: Path, data: Path, artifacts: str | None = None, s3: dict[str, str] | None = None
) -> float:
    server = tracking_server("loopline", work / "server", artifacts=artifacts)  # its own SQLite database
    server.env.update(s3 or {})
    try:
        server.start()
        client = work / "client"
        client.mkdir()
        seconds = _run(_add(data), client, clean_env({"LOOPLINE_TRACKING_URI": server.url}))
        if (client / ".loopline").exists():
            raise RuntimeError("the client opened a local store instead of the server's")
        return seconds
    finally:
        server.stop()


def _server(work: Path, data: Path) -> dict[str, float]:
    return {"add": _through_server(work, data)}


# ---- sharing through S3 (moto) ----------------------------------------------------------------------


def _moto(home: Path) -> tuple[Server, str]:
    """A fresh moto server with one empty bucket: (the server, the bucket's name)."""
    port = free_port()
    cmd = [str(MOTO), "-H", "127.0.0.1", "-p", str(port)]
    server = Server("moto", cmd, port, clean_env(), home / "moto.log")
    server.start(health="/")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    _s3_request(port, "PUT", f"/{bucket}")
    return server, bucket


def _s3_request(port: int, method: str, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"S3 {method} {path}: {resp.status} {body[:300]!r}")
        return body
    finally:
        conn.close()


def _object_names(moto: Server, bucket: str, prefix: str) -> set[str]:
    """The last path segment of every object under ``prefix`` (ListObjectsV2, page by page)."""
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    names: set[str] = set()
    token = ""
    while True:
        query = f"list-type=2&prefix={prefix}" + (f"&continuation-token={token}" if token else "")
        root = ET.fromstring(_s3_request(moto.port, "GET", f"/{bucket}?{query}"))
        names |= {k.text.rsplit("/", 1)[-1] for k in root.iter(f"{ns}Key") if k.text}
        token = root.findtext(f"{ns}NextContinuationToken") or ""
        if not token:
            return names


def _content_names(data: Path, digest: Callable[[bytes], str]) -> set[str]:
    return {digest(p.read_bytes()) for p in data.rglob("*") if p.is_file()}


def _loopline_s3(work: Path, data: Path) -> dict[str, float]:
    import blake3

    moto, bucket = _moto(work)
    try:
        s3 = {**S3_KEYS, "AWS_ENDPOINT_URL": moto.url, "AWS_ENDPOINT_URL_S3": moto.url}
        seconds = _through_server(work, data, f"s3://{bucket}/loopline", s3)
        wanted = _content_names(data, lambda b: str(blake3.blake3(b).hexdigest()))
        if wanted - _object_names(moto, bucket, "loopline/blobs/"):
            raise RuntimeError("some of the files' blobs are not in the bucket")
    finally:
        moto.stop()
    return {"add": seconds}


def _dvc_s3(work: Path, data: Path) -> dict[str, float]:
    import hashlib

    moto, bucket = _moto(work)
    try:
        env = clean_env({"DVC_NO_ANALYTICS": "1", **S3_KEYS})
        repo = work / "dvc"
        repo.mkdir()
        target = repo / data.name
        shutil.move(str(data), target)  # DVC versions files inside its repository
        _run([str(DVC), "init", "--no-scm", "-q"], repo, env)
        _run([str(DVC), "remote", "add", "-d", "team", f"s3://{bucket}/dvc"], repo, env)
        _run([str(DVC), "remote", "modify", "team", "endpointurl", moto.url], repo, env)
        add = _run([str(DVC), "add", "-q", data.name], repo, env)
        push = _run([str(DVC), "push"], repo, env)  # not -q: a failure says why
        wanted = _content_names(target, lambda b: hashlib.md5(b).hexdigest()[2:])  # files/md5/ab/<rest>
        if wanted - _object_names(moto, bucket, "dvc/files/md5/"):
            raise RuntimeError("some of the files are not in DVC's remote")
    finally:
        moto.stop()
    return {"add": add, "push": push, "add+push": add + push}


def _s3_ready() -> None:
    if not (DVC.exists() and MOTO.exists()):
        raise SystemExit(f"{DVC} or {MOTO} is missing: run `make .venv-bench-data/.installed`.")
    if importlib.util.find_spec("s3fs") is None:
        raise SystemExit(
            f"s3fs is missing from {sys.prefix}: `pip install -e '.[s3]'` there (`make bench` does)."
        )


SYSTEMS: dict[str, tuple[tuple[str, Callable[[Path, Path], dict[str, float]]], ...]] = {
    "server_add": (("embedded", _embedded), ("server", _server)),
    "s3_share": (("dvc", _dvc_s3), ("loopline", _loopline_s3)),
}


def run(opts: Options) -> Report:
    report = Report(NAME, TITLE, peer_name="embedded | dvc")
    picked = [w for w in WORKLOADS if w in (opts.only or set(WORKLOADS))]
    if any(w.startswith("s3_") for w in picked):
        _s3_ready()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-team-", dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        log("team_server: writing the benchmark data")
        sources = _make_data(root, opts.quick)
        with ForeignLoad() as noise:
            for workload in picked:
                kind = workload.rsplit("_", 2)[0]  # server_add, s3_share
                src, size = sources["add_one_file" if "_one_" in workload else "add_many_files"]
                rounds: dict[str, list[dict[str, float]]] = {}
                for system, fn in SYSTEMS[kind]:  # one system's rounds, then the other's
                    for n in range(1 if opts.quick else 3):
                        work = root / f"{workload}-{system}-{n}"
                        copy = work / src.name
                        log(f"team_server: {workload}: {system}, round {n + 1}")
                        shutil.copytree(src, copy)
                        os.sync()
                        rounds.setdefault(system, []).append(fn(work, copy))
                        _retire(work)
                figures[workload] = {"bytes": size, "files": sum(1 for _ in src.rglob("*.bin")), **rounds}
        report.meta.update(
            figures=figures,
            peer_version=f"embedded Loopline | {DVC_VERSION}",
            python=sys.version.split()[0],
            foreign_cpu_cores={"all": noise.cores},
        )
    for workload, row in figures.items():
        what = f"{row['bytes'] / (1 << 30):.2g} GiB as " + (
            "1 file" if row["files"] == 1 else f"{row['files']:,} files"
        )

        def best(system: str, phase: str, row: dict[str, Any] = row) -> float:
            return min(r[phase] for r in row[system])

        if workload.startswith("server_add"):
            report.rows.append(
                Row(workload, f"data add {what}: server vs embedded", "s", best("embedded", "add"),
                    best("server", "add"), False, goal_ratio=0.67, note="within 1.5x: ratio >= 0.67")
            )  # fmt: skip
        else:
            report.rows.append(
                Row(workload, f"share {what} via S3: vs dvc add + dvc push", "s", best("dvc", "add+push"),
                    best("loopline", "add"), False, goal_ratio=1.0, note="data add through a server on S3")
            )  # fmt: skip
            report.rows.append(
                Row(workload, f"share {what} via S3: vs dvc push alone", "s", best("dvc", "push"),
                    best("loopline", "add"), False, note="DVC's push without its add")
            )  # fmt: skip
    return report


if __name__ == "__main__":
    module_main(run, {}, sys.argv[1:])
