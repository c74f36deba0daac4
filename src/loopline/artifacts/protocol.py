"""What an artifact store does: files at logical paths, stored once per content."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of a listing: ``path`` relative to the store root."""

    path: str
    is_dir: bool
    file_size: int | None = None
    digest: str | None = None


class ArtifactStore(Protocol):
    """Logical paths over content-addressed blobs (or a remote server that keeps them)."""

    def put_file(self, local_path: str | Path, path: str) -> FileInfo:
        """Store a local file at ``path`` (atomically: readers see the old or the new file)."""
        ...

    def put_bytes(self, data: bytes, path: str) -> FileInfo: ...

    def open(self, path: str) -> BinaryIO:
        """A binary stream of the file at ``path``; read it in chunks for big files."""
        ...

    def get_file(self, path: str, local_path: str | Path) -> Path: ...

    def list(self, prefix: str = "") -> list[FileInfo]:
        """The direct children of folder ``prefix`` (empty for the root)."""
        ...

    def walk(self, prefix: str = "") -> Iterator[FileInfo]:
        """Every file below ``prefix``, recursively."""
        ...

    def delete(self, prefix: str) -> int:
        """Remove the file or folder at ``prefix``; returns how many files went."""
        ...
