"""The artifact-store contract, run against a local folder and S3 (moto's server)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings, strategies as st

from loopline.artifacts import BlobArtifactStore, hash_file, safe_path
from loopline.artifacts.digests import MMAP_MIN, read_small
from loopline.errors import InvalidInput, NotFound


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobArtifactStore:
    if request.param == "local":
        return BlobArtifactStore(str(tmp_path / "root"))
    return BlobArtifactStore(str(request.getfixturevalue("s3_uri")))


def test_put_get_list_round_trip(store: BlobArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(3 << 20))  # big enough for the multi-threaded hash path
    info = store.put_file(src, "1/run/artifacts/model/model.bin")
    assert info.file_size == 3 << 20 and info.digest == hash_file(src)
    store.put_bytes(b"hello", "1/run/artifacts/notes.txt")
    assert [(f.path, f.is_dir) for f in store.list("1/run/artifacts")] == [
        ("1/run/artifacts/model", True),
        ("1/run/artifacts/notes.txt", False),
    ]
    assert store.list("1/run/artifacts/notes.txt") == []  # a file lists as nothing, as in MLflow
    assert store.list("nowhere") == []
    assert [f.path for f in store.walk("1")] == [
        "1/run/artifacts/model/model.bin",
        "1/run/artifacts/notes.txt",
    ]
    out = store.get_file("1/run/artifacts/model/model.bin", tmp_path / "dl" / "m.bin")
    assert out.read_bytes() == src.read_bytes()
    with store.open("1/run/artifacts/notes.txt") as f:
        assert f.read() == b"hello"


def test_same_content_is_stored_once(store: BlobArtifactStore) -> None:
    store.put_bytes(b"same", "a/x")
    store.put_bytes(b"same", "b/y")
    blobs = store.fs.find(f"{store.root}/blobs")
    assert len(blobs) == 1


def test_overwrite_replaces_content(store: BlobArtifactStore) -> None:
    store.put_bytes(b"one", "f.txt")
    store.put_bytes(b"two", "f.txt")
    with store.open("f.txt") as f:
        assert f.read() == b"two"


def test_missing_file_is_not_found(store: BlobArtifactStore) -> None:
    with pytest.raises(NotFound, match="No artifact"):
        store.open("nope.txt")


def test_delete_and_gc_keep_shared_blobs(store: BlobArtifactStore) -> None:
    store.put_bytes(b"shared", "dead/a")
    store.put_bytes(b"only-dead", "dead/b")
    store.put_bytes(b"shared", "live/a")
    assert store.delete("dead") == 2
    assert store.list("dead") == []
    removed, freed = store.gc(grace_seconds=0)
    assert (removed, freed) == (1, len(b"only-dead"))
    with store.open("live/a") as f:
        assert f.read() == b"shared"
    assert store.gc(grace_seconds=0) == (0, 0)


def test_gc_grace_period_protects_fresh_blobs(store: BlobArtifactStore) -> None:
    store.put_bytes(b"x", "t/x")
    store.delete("t")
    assert store.gc(grace_seconds=3600) == (0, 0)


@pytest.mark.parametrize(
    "bad", ["../etc/passwd", "a/../../b", "/abs", "a\x00b", "a\\b", "C:/x", "a//b", "./a"]
)
def test_unsafe_paths_are_refused(store: BlobArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid artifact path"):
        store.put_bytes(b"x", bad)


def test_file_and_folder_of_one_name_cannot_coexist(tmp_path: Path) -> None:
    store = BlobArtifactStore(str(tmp_path / "root"))
    store.put_bytes(b"x", "a/b")
    with pytest.raises(InvalidInput, match="parent folders is a file"):
        store.put_bytes(b"y", "a/b/c")
    with pytest.raises(InvalidInput, match="a folder of that name exists"):
        store.put_bytes(b"y", "a")


def test_a_crashed_write_leaves_no_visible_file(tmp_path: Path) -> None:
    store = BlobArtifactStore(str(tmp_path / "root"))
    staged = store.stage()
    staged.write(b"half a file")
    staged.abort()  # what a crash before commit amounts to: no ref, so nothing visible
    assert store.list("") == []
    assert not list((tmp_path / "root" / "tmp").iterdir())


_segment = st.text(
    st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))


@given(st.lists(_segment, min_size=1, max_size=4).filter(lambda p: not re.match(r"[A-Za-z]:", p[0])))
@settings(max_examples=200, deadline=None)
def test_relative_paths_without_dot_segments_are_kept_as_they_are(parts: list[str]) -> None:
    path = "/".join(parts)
    assert safe_path(path) == path


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_accepted_path_stays_inside_the_root(path: str) -> None:
    try:
        clean = safe_path(path)
    except InvalidInput:
        return
    assert not clean.startswith("/") and ".." not in clean.split("/") and "\x00" not in clean
    assert os.path.normpath(os.path.join("/srv/root", clean)).startswith("/srv/root/")


def test_a_new_store_is_flat_and_an_old_one_keeps_its_layout(tmp_path: Path) -> None:
    new = BlobArtifactStore(str(tmp_path / "new"))
    info = new.put_bytes(b"hello", "a.txt")
    assert Path(new.blob_path(str(info.digest))).parent.name == str(info.digest)[:2]  # blobs/ab/<hex>
    assert BlobArtifactStore(str(tmp_path / "new")).open("a.txt").read() == b"hello"

    # A store written before the `layout` file: blobs two levels down, and no marker.
    old_root = tmp_path / "old"
    old = BlobArtifactStore(str(old_root))
    old.put_bytes(b"old bytes", "o.txt")
    digest = str(old.info("o.txt").digest)
    nested = old_root / "blobs" / digest[:2] / digest[2:4] / digest
    nested.parent.mkdir(parents=True)
    os.replace(old.blob_path(digest), nested)
    (old_root / "layout").unlink()
    reopened = BlobArtifactStore(str(old_root))
    assert reopened.open("o.txt").read() == b"old bytes"
    assert reopened.blob_path(digest) == str(nested)
    added = reopened.put_bytes(b"more", "m.txt")
    assert Path(reopened.blob_path(str(added.digest))).parent.parent.name == str(added.digest)[:2]
    assert reopened.gc(grace_seconds=0) == (0, 0)  # both still referenced


@pytest.mark.parametrize("size", [0, 1, 105_000, MMAP_MIN - 1, MMAP_MIN, MMAP_MIN + 12_345])
def test_read_small_returns_every_byte_whatever_the_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    assert bytes(read_small(path)) == data
    assert hash_file(path, size) == blake3.blake3(data).hexdigest()


def test_read_small_keeps_one_buffer_per_thread(tmp_path: Path) -> None:
    """Threads hashing at once must not see each other's bytes in a shared buffer."""
    payloads = [os.urandom(50_000 + i) for i in range(200)]
    for i, data in enumerate(payloads):
        (tmp_path / f"{i}.bin").write_bytes(data)
    expected = [blake3.blake3(d).hexdigest() for d in payloads]
    from loopline.slices import map_in_slices

    got = map_in_slices(lambda i: hash_file(tmp_path / f"{i}.bin", 0), list(range(200)), workers=4)
    assert got == expected


# ---- gc of interrupted writes -------------------------------------------------------------------


def _age(path: Path, seconds: float) -> None:
    past = os.stat(path).st_mtime - seconds
    os.utime(path, (past, past))


def test_gc_collects_interrupted_uploads_even_before_the_first_blob(store: BlobArtifactStore) -> None:
    crashed = store.stage()  # a writer that died mid-upload: never committed nor aborted
    crashed.write(b"x" * 1000)
    crashed._file.flush()
    _age(crashed.local_path, 7200)
    fresh = store.stage()  # one being written now
    fresh.write(b"y" * 10)
    fresh._file.flush()
    uploads = Path(store.staging_dir()) / "uploads"
    old, resumed = uploads / ("a" * 32), uploads / ("b" * 32)  # multipart uploads never completed
    for folder in (old, resumed):
        folder.mkdir(parents=True)
        (folder / "destination").write_text("x/y.bin")
        (folder / "part-00001").write_bytes(b"p" * 500)
        for f in (*folder.iterdir(), folder):
            _age(f, 7200)
    (resumed / "part-00002").write_bytes(b"q" * 500)  # a part that just arrived: the upload stays
    assert not store.fs.exists(f"{store.root}/blobs")
    assert store.gc(grace_seconds=3600) == (0, 1000 + len("x/y.bin") + 500)
    assert not crashed.local_path.exists() and not old.exists()
    assert fresh.local_path.exists() and sorted(p.name for p in resumed.iterdir()) == [
        "destination",
        "part-00001",
        "part-00002",
    ]
    fresh.abort()
    crashed._file.close()


def test_loopline_gc_frees_what_interrupted_uploads_left(tmp_path: Path) -> None:
    import subprocess
    import sys

    from loopline.metadata.engine import create_store_engine

    create_store_engine(f"sqlite:///{tmp_path / 'db.sqlite'}").dispose()  # a store with no blob yet
    root = tmp_path / "artifacts"
    store = BlobArtifactStore(str(root))
    leftover = Path(store.staging_dir()) / "upload-crashed"
    leftover.write_bytes(b"z" * 4096)
    _age(leftover, 7200)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopline.cli",
            "gc",
            "--store-uri",
            f"sqlite:///{tmp_path / 'db.sqlite'}",
            "--artifacts-uri",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "freeing 4,096 bytes" in proc.stdout and not leftover.exists()


# ---- symbolic links under refs/ ------------------------------------------------------------------


def test_a_link_out_of_the_store_is_never_followed(tmp_path: Path) -> None:
    store = BlobArtifactStore(str(tmp_path / "root"))
    store.put_bytes(b"inside", "run/a.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    # A file outside that even looks like a ref, naming a real blob: still not served.
    (outside / "ref.json").write_text(Path(store._ref("run/a.txt")).read_text())
    (outside / "secret.txt").write_text("not an artifact")
    refs = Path(store._ref("run"))
    (refs / "file-link").symlink_to(outside / "ref.json")
    (refs / "dir-link").symlink_to(outside, target_is_directory=True)
    (refs / "passwd").symlink_to("/etc/passwd")
    for path in ("run/file-link", "run/dir-link/secret.txt", "run/dir-link/ref.json", "run/passwd"):
        with pytest.raises(NotFound, match="symbolic link that leads outside"):
            store.open(path)
        assert not store.exists(path)
    assert [f.path for f in store.list("run")] == ["run/a.txt"]
    assert [f.path for f in store.walk("")] == ["run/a.txt"]
    with pytest.raises(NotFound, match="outside"):
        store.list("run/dir-link")
    with pytest.raises(NotFound, match="outside"):
        store.put_bytes(b"escape", "run/dir-link/new.txt")
    with pytest.raises(NotFound, match="outside"):
        store.delete("run/dir-link")
    assert sorted(p.name for p in outside.iterdir()) == ["ref.json", "secret.txt"]
    assert store.gc(grace_seconds=0) == (0, 0)  # the link's "ref" keeps nothing alive, breaks nothing
    with store.open("run/a.txt") as f:
        assert f.read() == b"inside"


def test_a_link_inside_the_store_is_served_and_a_damaged_ref_is_a_clear_error(tmp_path: Path) -> None:
    from loopline.errors import Conflict

    store = BlobArtifactStore(str(tmp_path / "root"))
    info = store.put_bytes(b"inside", "run/a.txt")
    refs = Path(store._ref("run"))
    (refs / "alias.txt").symlink_to(refs / "a.txt")
    with store.open("run/alias.txt") as f:
        assert f.read() == b"inside"
    (refs / "blob-link").symlink_to(store.blob_path(info.digest))  # a link to a blob, not to a ref
    with pytest.raises(NotFound, match="outside"):
        store.open("run/blob-link")
    (refs / "garbage.txt").write_text("not json")
    with pytest.raises(Conflict, match="not a Loopline ref"):
        store.open("run/garbage.txt")
    assert store.delete("run/alias.txt") == 1
    with store.open("run/a.txt") as f:
        assert f.read() == b"inside"
