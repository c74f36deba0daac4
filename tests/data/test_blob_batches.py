"""Batched blob uploads (``POST data/blobs/batch``): many blobs per request, each verified.

A real ``loopline server`` subprocess (SQLite and an artifact folder of its own) for the module;
the client is the real ``HttpBlobStore``; malformed, corrupt and cut-off bodies are written by
hand (httpx, or a raw socket where the body has to stop half-way). The framing's parser is also
checked on its own against every way a body can be split into pieces (hypothesis).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import httpx
import pytest
from hypothesis import assume, given, settings, strategies as st
from support import serve_loopline

from loopline.artifacts.manifest import Entry, Manifest
from loopline.config import Settings
from loopline.context import Context
from loopline.data import DataClient, rest_blobs
from loopline.data.blob_frames import MAGIC, MEDIA_TYPE, FrameReader, frame_header
from loopline.data.rest_blobs import HttpBlobStore
from loopline.errors import BadRequest, InvalidInput

API = "/api/2.0/loopline/data"
BATCH = f"{API}/blobs/batch"


def digest_of(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


def record(data: bytes, digest: str | None = None) -> bytes:
    return frame_header(digest or digest_of(data), len(data)) + data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("blob-batches")
    with serve_loopline(home, check_log=True) as url:
        yield url, home / "artifacts"


@pytest.fixture
def blobs(server: tuple[str, Path], tmp_path: Path) -> Iterator[HttpBlobStore]:
    context = Context(Settings.from_env({}, tracking_uri=server[0]))
    yield HttpBlobStore(context.http, tmp_path / "cache")
    context.http.close()


def staged(artifacts: Path) -> list[Path]:
    """Blobs being written (``.tmp-…`` beside their place), anywhere in the store."""
    return list((artifacts / "blobs").glob("*/.tmp-*"))


def wait_until(condition: Callable[[], bool], failure: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


# ---- the client's batches ----------------------------------------------------------------------


def test_many_files_travel_in_few_requests_and_round_trip_exactly(
    blobs: HttpBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest_blobs, "BATCH_BYTES", 64 << 10)  # small batches, so that there are several
    monkeypatch.setattr(rest_blobs, "READ", 16 << 10)  # and the big file is read in many pieces
    contents = [os.urandom(n) for n in [0, 1, 5_000, 20_000, 40_000, 70_000, 300_000] + [3_000] * 200]
    contents.append(contents[3])  # the same content twice: one blob
    files = []
    for i, data in enumerate(contents):
        path = tmp_path / "src" / f"{i:03d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files.append((digest_of(data), len(data), path))
    requests: list[str] = []
    blobs.rest.http.event_hooks["request"].append(lambda r: requests.append(f"{r.method} {r.url.path}"))

    blobs.put_blobs(files)
    # ~1 MB in 64 KiB batches: a few dozen requests for 209 blobs, not one each.
    assert requests and set(requests) == {f"POST {BATCH}"}
    assert len(requests) < 30
    assert blobs.missing(d for d, _, _ in files) == set()
    for i, data in enumerate(contents):
        out = tmp_path / "back" / f"{i}.bin"
        blobs.get_blob(digest_of(data), out)
        assert out.read_bytes() == data
    # Sent again, nothing is stored twice and nothing changes.
    blobs.put_blobs(files[:5])
    assert blobs.missing(d for d, _, _ in files) == set()


def test_a_file_changed_after_hashing_is_refused_and_named(blobs: HttpBlobStore, tmp_path: Path) -> None:
    good, stale = tmp_path / "good.bin", tmp_path / "stale.bin"
    good.write_bytes(os.urandom(1000))
    stale.write_bytes(b"what it holds now")
    hashed = digest_of(b"what it held before")  # same length: only the content differs
    with pytest.raises(InvalidInput, match=r"stale\.bin.*changed after it was hashed"):
        blobs.put_blobs([(digest_of(good.read_bytes()), 1000, good), (hashed, 17, stale)])
    assert blobs.missing([hashed]) == {hashed}


def test_a_file_that_shrank_since_it_was_hashed_stops_the_upload(
    blobs: HttpBlobStore, tmp_path: Path
) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"0123456789")
    digest = digest_of(b"0123456789abcdef")
    with pytest.raises(InvalidInput, match="changed while it was being uploaded"):
        blobs.put_blobs([(digest, 16, path)])
    assert blobs.missing([digest]) == {digest}


def test_an_add_through_the_server_uses_batches(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "tree"
    for i in range(300):
        (folder / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 7}" / f"{i}.bin").write_bytes(os.urandom(100 + i))
    client = DataClient(Settings.from_env({}, tracking_uri=server[0]))
    assert isinstance(client.blobs, HttpBlobStore)
    posts: list[str] = []
    client.blobs.rest.http.event_hooks["request"].append(
        lambda r: posts.append(r.url.path) if r.method in ("POST", "PUT") else None
    )
    name = f"batched-{uuid.uuid4().hex[:8]}"
    result = client.add(folder, name)
    assert (result.created, result.blobs_stored, result.stored_as) == (True, 300, {"upload": 300})
    # missing, one batch of 300 files, one batch of the manifest, the version
    assert posts == [f"{API}/blobs/missing", BATCH, BATCH, f"{API}/versions"]
    client.get(f"datasets:/{name}/1", tmp_path / "copy")
    for path in folder.rglob("*.bin"):
        assert (tmp_path / "copy" / path.relative_to(folder)).read_bytes() == path.read_bytes()
    # The same files as another dataset: every blob is there already, so only the manifest travels.
    posts.clear()
    other = client.add(folder, f"{name}-again")
    assert (other.created, other.blobs_stored, other.stored_as) == (True, 0, {})
    assert posts == [f"{API}/blobs/missing", BATCH, f"{API}/versions"]


# ---- what the server refuses -------------------------------------------------------------------


def test_a_corrupt_blob_in_a_batch_is_refused_and_none_of_it_is_stored(server: tuple[str, Path]) -> None:
    url, artifacts = server
    before, bad, after = os.urandom(3000), os.urandom(2 << 20), os.urandom(3000)
    claimed = digest_of(bad[:-1] + b"\0" if bad[-1] else bad[:-1] + b"\1")  # one byte differs
    body = MAGIC + record(before) + record(bad, claimed) + record(after)
    with httpx.Client(base_url=url) as http:
        resp = http.post(BATCH, content=body, headers={"Content-Type": MEDIA_TYPE})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert claimed in resp.json()["message"] and "not stored" in resp.json()["message"]
        missing = http.post(f"{API}/blobs/missing", json={"digests": [digest_of(b) for b in (before, after)]})
        # The blob before it was whole and verified: kept. The refusal stored nothing after it.
        assert missing.json() == {"missing": [digest_of(after)]}
        assert http.post(f"{API}/blobs/missing", json={"digests": [claimed]}).json() == {"missing": [claimed]}
        assert http.get(f"{API}/blobs/{claimed}").status_code == 404
        assert http.get(f"{API}/blobs/{digest_of(bad)}").status_code == 404
    assert not (artifacts / "blobs" / claimed[:2] / claimed).exists()
    wait_until(lambda: not staged(artifacts), "the refused blob's temporary file was left behind")


FRAMES = "loopline-blobs/1"  # the hint of a malformed body names the format


@pytest.mark.parametrize(
    ("body", "says", "hint"),
    [
        (b"", "before the magic line", FRAMES),
        (b"loopline-blob", "before the magic line", FRAMES),
        (b'{"digests": []}' + b"\0" * 8, "not a blob batch", FRAMES),
        (MAGIC + frame_header("ab" * 32, 10)[:20], "inside a header", FRAMES),
        (MAGIC + frame_header("ab" * 32, 10) + b"12345", "5 bytes short", FRAMES),
        (MAGIC + record(b"fine") + frame_header("ab" * 32, 1 << 40), "1,099,511,627,776 bytes short", FRAMES),
        (MAGIC + record(b"") * 10_001, "More than 10,000 blobs", "several batches"),
    ],
    ids=["empty", "short-magic", "json", "cut-header", "cut-blob", "huge-claim", "too-many"],
)
def test_bad_framing_is_answered_4xx_json(
    server: tuple[str, Path], body: bytes, says: str, hint: str
) -> None:
    url, artifacts = server
    with httpx.Client(base_url=url) as http:
        resp = http.post(BATCH, content=body, headers={"Content-Type": MEDIA_TYPE})
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    assert answer["error_code"] == "BAD_REQUEST"
    assert says in answer["message"] and hint in answer["message"]
    assert not (artifacts / "blobs" / "ab" / ("ab" * 32)).exists()
    wait_until(lambda: not staged(artifacts), "a temporary file of a refused body was left behind")


def test_an_empty_batch_stores_nothing(server: tuple[str, Path]) -> None:
    with httpx.Client(base_url=server[0]) as http:
        resp = http.post(BATCH, content=MAGIC, headers={"Content-Type": MEDIA_TYPE})
    assert resp.status_code == 200 and resp.json() == {"received": 0, "stored": 0}


def test_an_interrupted_batch_leaves_no_half_blob_and_no_version(server: tuple[str, Path]) -> None:
    url, artifacts = server
    first, second = os.urandom(10_000), os.urandom(8 << 20)
    body = MAGIC + record(first) + record(second)
    host, port = url.removeprefix("http://").split(":")
    second_dir = artifacts / "blobs" / digest_of(second)[:2]
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST {BATCH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {MEDIA_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])  # 4 MiB into the second blob
        wait_until(lambda: any(second_dir.glob(".tmp-*")), "the server never started writing the blob")
    wait_until(lambda: not staged(artifacts), "the cut-off blob's temporary file was not cleaned up")
    assert not (second_dir / digest_of(second)).exists()
    name = f"cut-{uuid.uuid4().hex[:8]}"
    manifest = Manifest.of(
        [Entry("a.bin", digest_of(first), 10_000), Entry("b.bin", digest_of(second), 8 << 20)]
    )
    with httpx.Client(base_url=url) as http:
        assert http.post(f"{API}/blobs/missing", json={"digests": [digest_of(second)]}).json() == {
            "missing": [digest_of(second)]
        }
        encoded = manifest.encode()
        stored = http.post(BATCH, content=MAGIC + record(encoded), headers={"Content-Type": MEDIA_TYPE})
        assert stored.json() == {"received": 1, "stored": 1}
        version = {
            "name": name,
            "digest": manifest.digest,
            "format": "files",
            "num_files": 2,
            "size_bytes": manifest.size,
        }
        refused = http.post(f"{API}/versions", json=version)
        assert refused.status_code == 400 and "not on the server" in refused.json()["message"]
        assert http.get(f"{API}/versions", params={"name": name}).status_code == 404
        # Sent again whole, the version can be made.
        again = http.post(BATCH, content=body, headers={"Content-Type": MEDIA_TYPE})
        assert again.status_code == 200 and again.json()["received"] == 2
        assert http.post(f"{API}/versions", json=version).json()["created"] is True
    assert (second_dir / digest_of(second)).read_bytes() == second


# ---- the framing, on its own -------------------------------------------------------------------


class Collect:
    """A ``BlobSink`` that keeps what it is given."""

    def __init__(self) -> None:
        self.blobs: list[tuple[str, int | None, bytes]] = []
        self._open: list[bytes] | None = None

    def begin(self, digest: str, size: int | None) -> None:
        assert self._open is None, "a record began before the last one ended"
        self._open = []
        self.blobs.append((digest, size, b""))

    def write(self, data: memoryview) -> None:
        assert self._open is not None
        self._open.append(bytes(data))

    def end(self) -> None:
        assert self._open is not None
        digest, size, _ = self.blobs[-1]
        self.blobs[-1] = (digest, size, b"".join(self._open))
        self._open = None


@settings(max_examples=200, deadline=None)
@given(
    contents=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_any_split_of_a_body_gives_the_same_records(contents: list[bytes], cuts: list[int]) -> None:
    body = MAGIC + b"".join(record(c) for c in contents)
    sink = Collect()
    reader = FrameReader(sink, max_records=100)
    at = 0
    for cut in [*sorted({min(c, len(body)) for c in cuts}), len(body)]:
        reader.feed(body[at:cut])
        at = cut
    reader.close()
    assert sink.blobs == [(digest_of(c), len(c), c) for c in contents]
    assert reader.records == len(contents)


@given(body=st.binary(max_size=200), cut=st.integers(min_value=1, max_value=60))
def test_a_body_cut_short_is_refused_on_close(body: bytes, cut: int) -> None:
    whole = MAGIC + record(body)
    assume(len(whole) - cut != len(MAGIC))  # that cut leaves a whole (empty) batch
    reader = FrameReader(Collect(), max_records=10)
    reader.feed(whole[: max(len(whole) - cut, 0)])
    with pytest.raises(BadRequest):
        reader.close()


# ---- which blobs a bucket lacks ----------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize(("stored", "listings"), [(2, ["blobs/00", "blobs"]), (6, ["blobs/00", "blobs/01"])])
def test_missing_on_a_bucket_lists_all_blobs_or_each_prefix(
    s3_uri: str, monkeypatch: pytest.MonkeyPatch, stored: int, listings: list[str]
) -> None:
    """A young bucket is listed whole (a request or two); a fuller one prefix by prefix."""
    from loopline.artifacts.blobs import BlobArtifactStore

    store = BlobArtifactStore(s3_uri)
    picked: dict[str, list[bytes]] = {"00": [], "01": []}
    n = 0
    while min(len(v) for v in picked.values()) < 12:  # 12 contents whose digests start 00, 12 with 01
        data = f"blob {n}".encode()
        group = picked.get(digest_of(data)[:2])
        if group is not None and len(group) < 12:
            group.append(data)
        n += 1
    for data in picked["00"][:stored] + picked["01"][:1]:
        store.put_blob_bytes(data)
    finds: list[str] = []
    real_find = store.fs.find
    monkeypatch.setattr(
        store.fs,
        "find",
        lambda path, **kw: finds.append(path.split("/artifacts/")[1]) or real_find(path, **kw),
    )
    wanted = [digest_of(d) for group in picked.values() for d in group]
    assert store.missing(wanted) == {digest_of(d) for d in picked["00"][stored:] + picked["01"][1:]}
    assert finds == listings
