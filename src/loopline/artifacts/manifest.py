"""A manifest: the sorted list of files of a tree, each by relative path, BLAKE3 digest and size.

It is how a tree of blobs (a dataset version, a pipeline step's outputs) is stored: the manifest
itself is a blob, so the digest of its canonical encoding names the whole tree's content — equal
trees get equal digests however and wherever they were added. The blob store's garbage collector
reads pinned manifests to keep their files alive.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from loopline.artifacts.paths import safe_path
from loopline.errors import InvalidInput

FORMAT = "loopline.manifest/1"


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative, '/'-separated; "" for a tree that is a single file
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Files of a tree, sorted by path. ``digest`` is the BLAKE3 of ``encode()``."""

    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Manifest:
        ordered = tuple(sorted(entries, key=lambda e: e.path))
        for a, b in itertools.pairwise(ordered):
            if a.path == b.path:
                raise InvalidInput(f"The path {a.path!r} appears twice in one tree.")
        return cls(ordered)

    def encode(self) -> bytes:
        """The canonical bytes: the same files always encode to the same bytes."""
        files = [[e.path, e.digest, e.size] for e in self.entries]
        return orjson.dumps({"format": FORMAT, "files": files})

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            doc = orjson.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            entries = tuple(Entry(str(p), str(d), int(s)) for p, d, s in doc["files"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
            raise InvalidInput(f"Not a Loopline manifest: {e}.") from None
        for entry in entries:
            if entry.path:
                safe_path(entry.path)  # a manifest from elsewhere (a remote) must not escape its root
        return cls(entries)

    @property
    def digest(self) -> str:
        import blake3

        return str(blake3.blake3(self.encode()).hexdigest())

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def digests(self) -> set[str]:
        return {e.digest for e in self.entries}


def diff(old: Manifest, new: Manifest) -> dict[str, list[str]]:
    """Paths added, removed and changed between two manifests."""
    a = {e.path: e.digest for e in old}
    b = {e.path: e.digest for e in new}
    return {
        "added": sorted(b.keys() - a.keys()),
        "removed": sorted(a.keys() - b.keys()),
        "changed": sorted(p for p in a.keys() & b.keys() if a[p] != b[p]),
    }


__all__ = ["Entry", "Manifest", "diff"]
