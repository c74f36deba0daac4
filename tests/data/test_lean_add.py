"""The lean `loopline data add` path: sqlite3 writes equal to the SQL store's, and what it skips.

``loopline data add`` on an existing SQLite store writes the version with sqlite3
(``loopline.data.sqlite_versions``) and without importing Typer, SQLAlchemy or fsspec; ``data
status`` answers an untouched tree from one stamp of its stat fingerprints. These tests hold both
to the guarantees of the full path: the same rows and events, the same locking, nothing half-stored.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from loopline.config import Settings
from loopline.data import DataClient
from loopline.data.sqlite_versions import SqliteVersions
from loopline.errors import InvalidInput, NotFound


def settings_for(root: Path) -> Settings:
    (root / "db").mkdir(parents=True, exist_ok=True)
    return Settings.from_env(
        {}, tracking_uri=f"sqlite:///{root / 'db' / 'loopline.db'}", artifacts_uri=str(root / "art"), user="t"
    )


def lean_client(root: Path) -> DataClient:
    settings = settings_for(root)
    DataClient(settings)  # creates the database at the head revision, as `loopline db upgrade` does
    versions = SqliteVersions.open(settings.tracking_uri, workspace=settings.workspace, actor=settings.user)
    assert versions is not None
    return DataClient(settings, versions=versions)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i in range(12):
        (root / ("sub" if i % 3 == 0 else "") / f"{i}.bin").write_bytes(os.urandom(300 + i))
    return root


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The data tables and the events, without what differs between two runs (ids, times, paths)."""
    with sqlite3.connect(db) as conn:
        return {
            "datasets": conn.execute(
                "SELECT workspace, name, description FROM versioned_datasets"
            ).fetchall(),
            "versions": conn.execute(
                "SELECT version, digest, manifest_digest, format, num_files, size_bytes, num_rows, schema,"
                " profile, description, created_by FROM dataset_versions ORDER BY version"
            ).fetchall(),
            "events": conn.execute(
                "SELECT workspace, actor, action, object_uri, json_remove(payload, '$.source'), reason"
                " FROM events WHERE action LIKE 'dataset.%' ORDER BY id"
            ).fetchall(),
        }


def test_lean_writes_equal_the_sql_stores(tmp_path: Path, folder: Path) -> None:
    import pandas as pd

    table = tmp_path / "t.parquet"
    clients = {"full": DataClient(settings_for(tmp_path / "full")), "lean": lean_client(tmp_path / "lean")}
    pd.DataFrame({"a": range(5), "b": list("xyzxy")}).to_parquet(table)
    original = (folder / "1.bin").read_bytes()
    for client in clients.values():
        (folder / "1.bin").write_bytes(original)
        client.add(folder, "images", description="first")
        client.add(folder, "images")  # unchanged: no version, no event
        (folder / "1.bin").write_bytes(b"edited")
        client.add(folder, "images")
        client.add(table, "table")
    full, lean = (rows(c.settings.cache_dir.parent / "loopline.db") for c in clients.values())
    assert lean == full
    assert [a for *_, a, _, _, _ in lean["events"]][:2] == ["dataset.created", "dataset.version_created"]
    # and the full store reads what the lean one wrote
    reader = DataClient(clients["lean"].settings)
    assert [v.version for v in reader.versions("images")] == [2, 1]
    assert reader.get_version("table").num_rows == 5


def test_lean_reads_aliases_and_refuses_what_the_store_refuses(tmp_path: Path, folder: Path) -> None:
    client = lean_client(tmp_path)
    with pytest.raises(NotFound):
        client._versions.get_version("images")
    v = client.add(folder, "images").version
    client.set_alias("images", "prod", v.version)  # through the SQL store, opened on first use
    again = client.add(folder, "images")
    assert not again.created and again.version.aliases == ("prod",)
    for bad in ("", "a b", "x/y", "é"):
        with pytest.raises(InvalidInput):
            client.add(folder, bad)


def test_open_takes_only_an_existing_sqlite_store_at_the_head_revision(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert SqliteVersions.open(settings.tracking_uri, workspace="default", actor="t") is None  # no file yet
    assert SqliteVersions.open("http://localhost:5000", workspace="default", actor="t") is None
    assert SqliteVersions.open("postgresql+psycopg://u@h/db", workspace="default", actor="t") is None
    DataClient(settings)
    opened = SqliteVersions.open(settings.tracking_uri, workspace="default", actor="t")
    assert opened is not None
    opened.close()
    db = tmp_path / "db" / "loopline.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert SqliteVersions.open(settings.tracking_uri, workspace="default", actor="t") is None


def test_a_failure_inside_the_transaction_leaves_nothing(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = lean_client(tmp_path)
    versions = client._versions
    assert isinstance(versions, SqliteVersions)
    real = versions._run

    def run(sql: str, params: Any) -> Any:  # the last statement of a new version fails
        if params.get("action") == "dataset.version_created":
            raise OSError("disk gone")
        return real(sql, params)

    monkeypatch.setattr(versions, "_run", run)
    with pytest.raises(OSError, match="disk gone"):
        client.add(folder, "images")
    monkeypatch.undo()
    full = rows(tmp_path / "db" / "loopline.db")
    assert full == {"datasets": [], "versions": [], "events": []}  # the dataset row rolled back too
    assert client.add(folder, "images").version.version == 1  # and the connection is usable


def test_concurrent_lean_adds_of_the_same_content_make_one_version(tmp_path: Path, folder: Path) -> None:
    clients = [lean_client(tmp_path) for _ in range(4)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.add(folder, "images"))) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert {r.version.version for r in results} == {1}


def cli(*args: str, cwd: Path, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOOPLINE_TRACKING_URI": f"sqlite:///{cwd / 'db' / 'loopline.db'}"}
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "loopline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_cli_add_on_an_existing_store_imports_no_typer_sqlalchemy_or_fsspec(
    tmp_path: Path, folder: Path
) -> None:
    assert cli("db", "upgrade", cwd=tmp_path).returncode == 0
    done = cli("data", "add", str(folder), "--name", "images", "--link", cwd=tmp_path, importtime=True)
    assert done.returncode == 0, done.stderr
    assert "Created datasets:/images/1 (12 files" in done.stdout and "by hardlink" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {"typer", "sqlalchemy", "fsspec", "pydantic"} & imported
    assert not os.stat(folder / "1.bin").st_mode & 0o222  # linked files are read-only
    again = cli("data", "add", str(folder), "-n", "images", "--link", cwd=tmp_path)
    assert "Unchanged: datasets:/images/1" in again.stdout
    other = cli("data", "add", str(folder), "-nimages2", "-d", "copy", "--tracking-uri", "db", cwd=tmp_path)
    assert "Created datasets:/images2/1" in other.stdout and "all already stored" in other.stdout


def test_cli_add_leaves_what_it_does_not_parse_to_the_full_cli(tmp_path: Path, folder: Path) -> None:
    unknown = cli("data", "add", str(folder), "--name", "x", "--bogus", cwd=tmp_path)
    assert unknown.returncode == 2 and "--bogus" in unknown.stderr  # Typer's usage error
    missing = cli("data", "add", str(folder), cwd=tmp_path)
    assert missing.returncode == 2 and "--name" in missing.stderr
    helped = cli("data", "add", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--link" in helped.stdout
    gone = cli("data", "add", str(tmp_path / "nope"), "--name", "x", cwd=tmp_path)
    assert gone.returncode == 1 and "No file or folder" in gone.stderr and "Traceback" not in gone.stderr


def test_cli_runs_load_only_the_command_module_asked_for(tmp_path: Path) -> None:
    done = cli("version", cwd=tmp_path, importtime=True)
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {m for m in imported if m.startswith("loopline.cli.") and m != "loopline.cli.main"}
    listed = cli("--help", cwd=tmp_path)
    assert all(name in listed.stdout for name in ("data", "models", "monitor", "pipeline", "serve", "sweep"))


def test_status_answers_an_untouched_tree_from_its_stamp(tmp_path: Path, folder: Path) -> None:
    from loopline.data.status import status

    client = lean_client(tmp_path)
    client.add(folder, "images")
    ((*_, stamp),) = client.cache.tracked()
    assert stamp is not None
    assert [s.state for s in status(client.cache)] == ["unchanged"]
    os.utime(folder / "2.bin")  # touched, same bytes: re-hashed once, then stamped again
    assert [s.state for s in status(client.cache)] == ["unchanged"]
    ((*_, restamped),) = client.cache.tracked()
    assert restamped not in (None, stamp)
    (folder / "sub" / "new.bin").write_bytes(b"new")
    assert [s.state for s in status(client.cache)] == ["modified"]
    (folder / "sub" / "new.bin").unlink()
    (folder / "2.bin").rename(folder / "2-renamed.bin")
    assert [s.state for s in status(client.cache)] == ["modified"]


def test_a_cache_from_before_stamps_is_upgraded(tmp_path: Path, folder: Path) -> None:
    from loopline.data.hashing import HashCache

    path = tmp_path / "hashes.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE tracked (path TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " version INTEGER NOT NULL, digest TEXT NOT NULL, single TEXT)"
        )
        conn.execute("INSERT INTO tracked VALUES ('/x', 'n', 1, 'd', NULL)")
    cache = HashCache(path)
    assert cache.tracked() == [("/x", "n", 1, "d", None, None)]
    cache.track("/y", "n", 2, "e", None, "s")
    assert cache.tracked()[1] == ("/y", "n", 2, "e", None, "s")


def test_settings_coerce_and_refuse_like_the_model_they_replace() -> None:
    s = Settings.from_env({"LOOPLINE_GC_INTERVAL": "5"})
    assert s.gc_interval == 5.0 and isinstance(s.gc_interval, float)
    assert dataclasses.replace(s, workspace="w").workspace == "w" and s.workspace == "default"
    assert hash(s) == hash(Settings.from_env({"LOOPLINE_GC_INTERVAL": "5.0"}))
    with pytest.raises(InvalidInput, match="flush_interval"):
        Settings.from_env({"LOOPLINE_FLUSH_INTERVAL": "soon"})
    with pytest.raises(InvalidInput, match="gc_interval"):
        Settings(gc_interval=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="colour"):
        Settings.from_env({}, colour="red")
    with pytest.raises(AttributeError):
        s.workspace = "x"  # type: ignore[misc]


def test_the_fast_stamp_equals_the_stamp_of_a_walk(tmp_path: Path) -> None:
    from loopline.data.hashing import current_stamp, tree_stamp, walk

    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / ".git").mkdir()  # skipped by both
    (tree / ".git" / "HEAD").write_text("ref")
    (tree / "a" / "b" / "x.csv").write_text("1,2\n")
    (tree / "y.parquet").write_bytes(b"PAR1")
    (tmp_path / "outside.txt").write_text("linked")
    os.symlink(tmp_path / "outside.txt", tree / "link.txt")  # a link to a file is read through
    files = walk(tree)
    assert [f.rel for f in files] == ["a/b/x.csv", "link.txt", "y.parquet"]
    assert current_stamp(str(tree), "unused") == tree_stamp(files)
    single = tmp_path / "outside.txt"
    (one,) = walk(single)
    assert current_stamp(str(single), "data.txt") == tree_stamp([one._replace(rel="data.txt")])
    (tree / "y.parquet").write_bytes(b"PAR1 changed")
    assert current_stamp(str(tree), "unused") != tree_stamp(files)


def test_many_small_files_are_hashed_in_threads_with_the_same_digests(tmp_path: Path) -> None:
    import blake3

    from loopline.data import hashing

    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(hashing._THREADED_MIN_FILES + 44):  # enough to take the threaded path
        (tree / f"{i:04d}.bin").write_bytes(os.urandom(i % 97) + str(i).encode())
    (tree / "big.bin").write_bytes(os.urandom(2 << 20))  # hashed alone, with BLAKE3's threads
    files = hashing.walk(tree)
    seen: list[int] = []
    digests = hashing.hash_files(files, None, progress=seen.append)
    assert digests == {f.path: blake3.blake3(Path(f.path).read_bytes()).hexdigest() for f in files}
    assert sum(seen) == sum(f.size for f in files)  # progress counts every byte once
    (tree / "0007.bin").unlink()  # gone between the walk and the hashing: the loop's error
    with pytest.raises(FileNotFoundError):
        hashing.hash_files(files, None)


def test_on_a_terminal_the_add_draws_a_bar_that_reaches_the_total(tmp_path: Path) -> None:
    """Progress comes from the hashing threads, batched; the last bytes still reach the bar."""
    import pty
    import re

    root = tmp_path / "many"
    root.mkdir()
    for i in range(400):  # over the threaded-hashing threshold
        (root / f"{i}.bin").write_bytes(os.urandom(2_500))
    assert cli("db", "upgrade", cwd=tmp_path).returncode == 0
    primary, secondary = pty.openpty()
    env = {
        **os.environ,
        "LOOPLINE_TRACKING_URI": f"sqlite:///{tmp_path / 'db' / 'loopline.db'}",
        "COLUMNS": "150",
        "TERM": "xterm",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "data", "add", str(root), "--name", "many"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(primary)
    assert proc.returncode == 0 and "Created datasets:/many/1 (400 files" in out
    counts = re.findall(rb"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) MB", drawn)
    assert counts, drawn[-500:]
    assert counts[-1][0] == counts[-1][1] == b"1.0"  # 400 x 2,500 bytes, all of them shown
