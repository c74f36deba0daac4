"""Small files read once for both their digest and their blob (copy mode, local stores).

Hashing a file and then copying it into the store reads it twice, and a file changed between
the two reads would be stored under a digest that is not its content's. Here the bytes hashed
are the bytes stored: ``hash_and_stage`` reads a small file whole, hashes it and, when the
store lacks that blob, writes a read-only copy beside it (``BlobArtifactStore.stage_blob``);
``commit`` moves the copy into place once the caller has decided to keep the version; ``close``
deletes whatever was not committed, so an add that fails or finds nothing new leaves nothing.

Big files (``MMAP_MIN`` and up) are not read into memory: they are hashed through mmap on
every core and copied in the kernel (``BlobArtifactStore.put_blob``).
"""

from __future__ import annotations

import contextlib
import os

import blake3

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.digests import read_small
from loopline.artifacts.local_files import READ_ONLY


class SmallFileCopies:
    def __init__(self, store: BlobArtifactStore) -> None:
        self._store = store
        self._staged: dict[str, str] = {}  # digest -> staged copy; filled from several threads
        self._spare: list[str] = []  # copies of a digest another thread staged first

    def hash_and_stage(self, path: str, size: int | None = None) -> str:
        """The BLAKE3 of the file at ``path``, its bytes staged for the store if it lacks them.

        ``size`` (``hash_file``'s signature) is not used: the file is read to its end.
        """
        data = read_small(path)
        digest = str(blake3.blake3(data).hexdigest())
        if digest in self._staged or self._store.has_blob(digest):
            return digest
        tmp = self._store.stage_blob(digest)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
        try:
            view = data
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        if self._staged.setdefault(digest, tmp) != tmp:  # atomic: one copy per digest wins
            self._spare.append(tmp)
        return digest

    def commit(self, digest: str) -> bool:
        """Move the staged copy of ``digest`` into the store; False if none was staged."""
        tmp = self._staged.pop(digest, None)
        if tmp is None:
            return False
        self._store.commit_staged(tmp, digest)
        return True

    def close(self) -> None:
        """Delete the copies nobody committed."""
        for tmp in [*self._staged.values(), *self._spare]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._staged.clear()
        self._spare.clear()

    def __enter__(self) -> SmallFileCopies:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
