"""Dataset versions: content addressing, deduplication, aliases, reads, materialisation, crash safety."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from loopline.config import Settings
from loopline.data import DataClient
from loopline.errors import InvalidInput, NotFound


@pytest.fixture
def client(tmp_path: Path) -> DataClient:
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'db' / 'loopline.db'}",
        artifacts_uri=str(tmp_path / "art"),
        user="t",
    )
    (tmp_path / "db").mkdir()
    return DataClient(settings)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i in range(30):
        (root / ("sub" if i % 3 == 0 else "") / f"{i}.bin").write_bytes(os.urandom(500 + i))
    return root


def stored_files(client: DataClient) -> list[Path]:
    """Every file in the store's blob folders and its staging folder (staged copies included)."""
    root = Path(client.blobs.root)
    return [p for folder in ("blobs", "tmp") for p in (root / folder).rglob("*") if p.is_file()]


def frame(n: int = 50, seed: int = 0) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "city": rng.choice(["a", "b"], n)})


def test_same_content_twice_makes_one_version(client: DataClient, folder: Path) -> None:
    first = client.add(folder, "images")
    again = client.add(folder, "images")
    assert first.created and not again.created
    assert again.version.version == first.version.version == 1
    assert again.files_hashed == 0  # every digest came from the stat cache
    assert again.blobs_stored == 0
    assert [v.version for v in client.versions("images")] == [1]


def test_changing_one_file_rehashes_and_stores_only_it(client: DataClient, folder: Path) -> None:
    client.add(folder, "images")
    target = folder / "sub" / "3.bin"
    target.write_bytes(b"changed")
    result = client.add(folder, "images")
    assert result.created and result.version.version == 2
    assert result.files_hashed == 1
    assert result.blobs_stored == 1
    changes = client.diff("images/1", "images/2")["files"]
    assert changes == {"added": [], "removed": [], "changed": ["sub/3.bin"]}


def test_blobs_are_shared_across_datasets(client: DataClient, folder: Path) -> None:
    client.add(folder, "images")
    other = client.add(folder, "images-copy")
    assert other.created and other.blobs_stored == 0
    assert other.version.digest == client.get_version("images").digest


def test_frames_round_trip_in_every_format(client: DataClient) -> None:
    df = frame()
    v = client.add(df, "customers").version
    assert v.format == "parquet" and v.num_rows == 50
    assert v.schema == {"id": "int64", "x": "double", "city": "string"} or set(v.schema) == {
        "id",
        "x",
        "city",
    }
    pd.testing.assert_frame_equal(client.load(v.uri, "pandas"), df)
    assert client.load(v.uri, "polars").shape == (50, 3)
    table = client.load(v.uri, "arrow")
    assert isinstance(table, pa.Table) and table.num_rows == 50
    assert client.add(frame(), "customers").created is False  # the same frame again: no new version


def test_csv_and_json_files_are_read_as_tables(client: DataClient, tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "c.csv", index=False)
    frame().to_json(tmp_path / "j.jsonl", orient="records", lines=True)
    frame().to_json(tmp_path / "a.json", orient="records")
    for path, fmt in (("c.csv", "csv"), ("j.jsonl", "json"), ("a.json", "json")):
        v = client.add(tmp_path / path, path.replace(".", "-")).version
        assert (v.format, v.num_rows) == (fmt, 50)
        assert list(client.load(v.uri, "pandas").columns) == ["id", "x", "city"]


def test_uris_resolve_by_number_alias_latest_and_digest(client: DataClient, tmp_path: Path) -> None:
    v1 = client.add(frame(seed=1), "d").version
    v2 = client.add(frame(seed=2), "d").version
    client.set_alias("d", "prod", 1)
    assert client.get_version("datasets:/d@prod").version == 1
    assert client.get_version("datasets:/d").version == 2
    assert client.get_version("datasets:/d@latest").version == 2
    assert client.get_version(f"datasets:/d/{v1.digest[:10]}").version == 1
    assert client.get_version("d/2").digest == v2.digest
    assert client.get_version("d@prod").aliases == ("prod",)
    client.set_alias("d", "prod", 2)  # moving an alias
    assert client.get_version("d@prod").version == 2
    client.delete_alias("d", "prod")
    with pytest.raises(NotFound, match="no alias 'prod'"):
        client.get_version("d@prod")


@pytest.mark.parametrize(
    ("ref", "error"),
    [("datasets:/nope/1", NotFound), ("datasets:/d/9", NotFound), ("datasets:/d/zz", InvalidInput)],
)
def test_unknown_names_and_versions_are_clear_errors(client: DataClient, ref: str, error: type) -> None:
    client.add(frame(), "d")
    with pytest.raises(error) as e:
        client.get_version(ref)
    assert e.value.hint or "d" in e.value.message


def test_bad_names_and_aliases_are_refused(client: DataClient) -> None:
    with pytest.raises(InvalidInput, match="dataset name"):
        client.add(frame(), "no/slashes")
    client.add(frame(), "d")
    for bad in ("3", "latest", "a b"):
        with pytest.raises(InvalidInput, match="alias"):
            client.set_alias("d", bad, 1)


def test_a_malformed_file_stores_nothing(client: DataClient, tmp_path: Path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidInput, match="parquet"):
        client.add(bad, "broken")
    assert client.datasets() == []
    assert stored_files(client) == []  # its staged copy was deleted too


def test_missing_path_is_a_clear_error(client: DataClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="No file or folder"):
        client.add(tmp_path / "nope", "x")


def test_a_crash_before_the_version_row_leaves_no_version(
    client: DataClient, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(client.store, "create_version", crash)
    with pytest.raises(KeyboardInterrupt):
        client.add(folder, "images")
    monkeypatch.undo()
    assert client.datasets() == []
    removed, _ = client.gc(grace_seconds=0)  # the orphaned pin and its blobs go
    assert removed == 31  # 30 files + the manifest
    assert client.add(folder, "images").version.version == 1  # and adding again works


def test_gc_keeps_every_blob_a_version_needs(client: DataClient, folder: Path) -> None:
    v = client.add(folder, "images").version
    assert client.gc(grace_seconds=0) == (0, 0)
    assert client.verify(v.uri) == []


def test_gc_deletes_copies_a_crashed_add_left_staged(client: DataClient, folder: Path) -> None:
    v = client.add(folder, "images").version
    digest = client.manifest(v).entries[0].digest
    stale = Path(client.blobs.stage_blob(digest))
    stale.write_bytes(b"half a copy")
    os.utime(stale, (1, 1))  # long ago
    fresh = Path(client.blobs.stage_blob(digest))
    fresh.write_bytes(b"an add still at work")
    assert client.gc(grace_seconds=3600) == (1, len(b"half a copy"))
    assert not stale.exists() and fresh.exists()
    assert client.verify(v.uri) == []


def test_get_and_checkout_materialise_versions(client: DataClient, folder: Path, tmp_path: Path) -> None:
    client.add(folder, "images")
    original = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.bin")}
    (folder / "2.bin").unlink()
    (folder / "1.bin").write_bytes(b"edited")
    (folder / "extra.bin").write_bytes(b"new")
    client.add(folder, "images")

    out = client.get("images/1", tmp_path / "copy")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.bin")} == original

    client.checkout("images/1", prune=True)
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.bin")} == original


def test_get_writes_a_one_file_version_to_a_bare_file_name(
    client: DataClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"payload" * 100)
    client.add(path, "one")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert client.get("one/1", "copy.bin") == Path("copy.bin")
    assert (work / "copy.bin").read_bytes() == b"payload" * 100
    assert os.listdir(work) == ["copy.bin"]  # no temporary left beside it


def test_get_of_a_missing_blob_says_how_to_get_it(client: DataClient, folder: Path, tmp_path: Path) -> None:
    v = client.add(folder, "images").version
    blob = Path(client.blobs.blob_path(client.manifest(v).entries[0].digest))
    blob.unlink()
    with pytest.raises(NotFound, match="missing") as err:
        client.get(v.uri, tmp_path / "out")
    assert "loopline data pull" in str(err.value.hint)
    assert not [p for p in (tmp_path / "out").rglob(".*.part")]


def test_link_mode_hard_links_and_protects_the_file(client: DataClient, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(4096))
    result = client.add(path, "big", link="link")
    assert result.stored_as in ({"hardlink": 1}, {"reflink": 1})
    if "hardlink" in result.stored_as:
        assert path.stat().st_nlink == 2
        assert not path.stat().st_mode & stat.S_IWUSR


def test_default_mode_never_shares_the_users_inode(client: DataClient, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"v1" * 1000)
    v = client.add(path, "data").version
    with open(path, "ab") as f:  # an in-place edit of the user's file
        f.write(b"more")
    assert client.verify(v.uri) == []


def test_default_mode_stores_the_bytes_it_hashed(
    client: DataClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file edited between hashing and storing must not land under the old content's digest."""
    root = tmp_path / "many"
    root.mkdir()
    payloads = {f"{i:03d}.bin": os.urandom(700 + i) for i in range(300)}  # threaded hashing
    payloads["dup.bin"] = payloads["000.bin"]  # one blob for two files
    for rel, data in payloads.items():
        (root / rel).write_bytes(data)
    store_blobs = client._store_blobs

    def edit_then_store(*args: object, **kwargs: object) -> list[str]:
        for rel in ("007.bin", "250.bin"):
            (root / rel).write_bytes(b"edited after hashing")
        return store_blobs(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client, "_store_blobs", edit_then_store)
    result = client.add(root, "many")
    assert result.stored_as == {"copy": 300}
    assert client.verify(result.version.uri) == []
    out = client.get(result.version.uri, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == payloads
    assert not [p for p in stored_files(client) if p.name.startswith(".tmp-")]  # nor a spare copy


@pytest.mark.parametrize(
    ("size", "link"),
    [(2_000, "link"), (3 << 20, "auto")],  # a small file linked; a big one (mmap-hashed) copied
)
def test_a_file_written_between_hashing_and_storing_makes_no_version(
    client: DataClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, link: str
) -> None:
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(os.urandom(size))
    put_blob = client.blobs.put_blob

    def write_then_put(local_path: str, digest: str, **kwargs: object) -> str:
        if local_path.endswith("b.bin"):
            os.chmod(local_path, 0o644)
            with open(local_path, "ab") as f:  # a writer still at work
                f.write(b"more")
        return put_blob(local_path, digest, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client.blobs, "put_blob", write_then_put)
    with pytest.raises(InvalidInput, match=r"b\.bin changed while it was being added"):
        client.add(root, "d", link=link)  # type: ignore[arg-type]
    assert client.datasets() == []
    stale = [p for p in stored_files(client) if p.read_bytes() == (root / "b.bin").read_bytes()]
    assert stale == []  # the new bytes are not kept under the old bytes' digest
    monkeypatch.undo()
    assert client.add(root, "d", link=link).created  # type: ignore[arg-type]  # once written, it adds


def test_a_re_add_of_touched_but_unchanged_files_stages_nothing(client: DataClient, folder: Path) -> None:
    client.add(folder, "images")
    for path in folder.rglob("*.bin"):
        os.utime(path, ns=(1, 1))  # the stat cache misses: every file is read again
    again = client.add(folder, "images")
    assert not again.created and again.files_hashed == 30 and again.blobs_stored == 0
    assert len(stored_files(client)) == 31  # the 30 blobs and the manifest: no staged copies


def test_verify_finds_a_corrupted_blob(client: DataClient, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"content" * 100)
    v = client.add(path, "f").version
    blob = Path(client.blobs.blob_path(client.manifest(v).entries[0].digest))
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")
    assert client.verify(v.uri) == ["f.bin"]


def test_concurrent_adds_of_the_same_content_make_one_version(client: DataClient, folder: Path) -> None:
    results = []

    def add() -> None:
        results.append(DataClient(client.settings).add(folder, "images"))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.created for r in results) == 1
    assert [v.version for v in client.versions("images")] == [1]


def test_diff_reports_schema_and_rows(client: DataClient) -> None:
    client.add(frame(50), "d")
    changed = frame(80).drop(columns=["city"]).assign(score=1.0)
    client.add(changed, "d")
    out = client.diff("d/1", "d/2")
    assert out["rows"] == {"from": 50, "to": 80}
    assert set(out["schema"]["added"]) == {"score"}
    assert set(out["schema"]["removed"]) == {"city"}
    assert not out["same_content"]


def test_validation_results_are_stored_with_the_version(client: DataClient) -> None:
    v = client.add(frame(), "d").version
    client.record_validation(v.uri, {"suite": "basic", "success": False, "results": []})
    (record,) = client.validations("datasets:/d/1")
    assert (record.suite, record.success, record.version) == ("basic", False, 1)


def test_the_quickstart_example_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "examples" / "data_quickstart.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "no new version" in done.stdout and "datasets:/customers@prod -> version 1" in done.stdout
    client = DataClient(
        Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / '.loopline-data-example' / 'loopline.db'}")
    )
    assert [v.version for v in client.versions("customers")] == [2, 1]


def test_status_sees_unchanged_modified_and_missing_paths(
    client: DataClient, folder: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from loopline.data.status import status

    single = tmp_path / "one.csv"
    frame().to_csv(single, index=False)
    client.add(folder, "images")
    client.add(single, "one")
    assert {s.state for s in status(client.cache)} == {"unchanged"}
    (folder / "1.bin").write_bytes(b"edited")
    states = {Path(s.path).name: (s.state, s.uri) for s in status(client.cache)}
    assert states == {
        "images": ("modified", "datasets:/images/1"),
        "one.csv": ("unchanged", "datasets:/one/1"),
    }
    client.checkout("images/1")
    assert [s.state for s in status(client.cache, [str(folder)])] == ["unchanged"]
    single.unlink()
    assert [s.state for s in status(client.cache, [str(single)])] == ["missing"]

    env = {**os.environ, "LOOPLINE_TRACKING_URI": client.settings.tracking_uri}
    cli = [sys.executable, "-m", "loopline.cli", "data", "status"]
    done = subprocess.run([*cli, "--exit-code"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "missing" in done.stdout and "unchanged  images" in done.stdout
    assert "typer" not in subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "loopline.cli", "data", "status"],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    ).stderr  # fmt: skip
