"""``DataClient``: add, version, read, compare and materialise datasets.

Adding a path hashes its files (in parallel; unchanged files come from the hash cache), builds the
manifest, and stops there if the content equals the latest version's. Otherwise it reads what a
tabular dataset holds (schema, rows, profile — a malformed file fails here, before anything is
stored), stores the missing blobs (reflink, else a read-only hard link, else a copy), stores and
pins the manifest, and only then inserts the version row: a crash at any point leaves either no
version or a whole one, and at worst blobs that ``gc`` reclaims.

Through ``loopline server`` it is the same sequence over HTTP: the hashing stays here, the server
is asked once which blobs it lacks, only those are uploaded (each checked against its digest by
the server), then the manifest, and one request creates the version (``loopline.data.store``,
``loopline.data.blob_store``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopline import uris
from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.local_files import LinkMode
from loopline.artifacts.manifest import Entry, Manifest
from loopline.config import Settings
from loopline.data import io
from loopline.data.blob_store import BlobStore, open_blob_store
from loopline.data.hashing import (
    WORKERS,
    HashCache,
    LocalFile,
    hash_files,
    hash_files_counted,
    tree_stamp,
    unchanged_since_walk,
    walk,
)
from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord, VersionContent
from loopline.errors import InvalidInput
from loopline.names import check_name

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from loopline.artifacts.copies import SmallFileCopies
    from loopline.context import Context
    from loopline.data.store import DataStore

Progress = Callable[[int], None]  # called with a number of bytes just processed


@dataclass(frozen=True)
class AddResult:
    version: DatasetVersion
    created: bool  # False: the content equals the latest version's; nothing was stored
    files_hashed: int  # files whose content was read (the rest came from the hash cache)
    blobs_stored: int  # new blobs (files whose content the store did not hold yet)
    stored_as: Mapping[str, int]  # how new blobs were stored: reflink / hardlink / copy / upload


class VersionWriter(Protocol):
    """What adding needs from the metadata store: the latest version, and create-if-changed."""

    def get_version(self, name: str) -> DatasetVersion: ...

    def create_version(self, name: str, content: VersionContent) -> tuple[DatasetVersion, bool]: ...


class DataClient:
    """Dataset versions over the metadata store and the content-addressed blob store.

    Built from a :class:`~loopline.context.Context` (default: one on ``settings``): on a database
    the SQL store and the configured artifact store, on a server (``http://…``) its REST API and
    its artifact store — the client hashes and builds manifests here either way.

    ``versions`` (optional) writes the versions ``add`` creates instead of the data store, which is
    then opened only when something else needs it: ``loopline data add`` passes a
    :class:`~loopline.data.sqlite_versions.SqliteVersions` so that it does not import SQLAlchemy.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        context: Context | None = None,
        versions: VersionWriter | None = None,
    ) -> None:
        if context is None:
            from loopline.context import Context

            context = Context(settings)
        self.context = context
        self.settings = context.settings
        self._store: DataStore | None = None
        if versions is None:
            versions = self.store  # opened now: a bad tracking URI fails here, as it always did
        self._versions = versions
        self.blobs: BlobStore = open_blob_store(context)

    @property
    def store(self) -> DataStore:
        if self._store is None:
            from loopline.data.store import open_data_store

            self._store = open_data_store(self.context)
        return self._store

    @functools.cached_property
    def cache(self) -> HashCache:
        """This machine's hash cache (what was added or checked out where), opened on first use."""
        return HashCache(self.settings.cache_dir / "hashes.sqlite")

    # ---- add -------------------------------------------------------------------------------

    def add(
        self,
        data: str | Path | Any,
        name: str,
        *,
        description: str = "",
        link: LinkMode = "auto",
        progress: Progress | None = None,
    ) -> AddResult:
        """Version ``data`` — a file, a folder, or a pandas/polars/Arrow frame — as ``name``."""
        check_name("dataset", name)
        if isinstance(data, str | Path):
            return self._add_path(Path(data), name, str(data), description, link, progress)
        table = io.to_arrow(data)
        import pyarrow.parquet as pq

        fd, tmp = tempfile.mkstemp(
            suffix=".parquet", dir=self.blobs.staging_dir() if self.blobs.is_local else None
        )
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            source = f"python:{type(data).__module__.split('.')[0]}.{type(data).__name__}"
            # The temp file is ours alone: linking it into the store (then deleting it) is safe.
            return self._add_path(
                Path(tmp), name, source, description, "link", progress, single="data.parquet"
            )
        finally:
            os.unlink(tmp)

    def _add_path(
        self,
        root: Path,
        name: str,
        source: str,
        description: str,
        link: LinkMode,
        progress: Progress | None,
        single: str | None = None,
    ) -> AddResult:
        copies = self._small_file_copies(link)
        # What was not committed is deleted on the way out: the add failed or found nothing new.
        with copies if copies is not None else contextlib.nullcontext():
            files = walk(root)
            if single is not None:  # a frame: name its one file for what it is, not the temp file
                files = [LocalFile(single, files[0].path, files[0].size, files[0].fingerprint)]
            elif files[0].rel == "":
                files = [LocalFile(root.name, files[0].path, files[0].size, files[0].fingerprint)]
            digests, files_hashed = hash_files_counted(
                files,
                self.cache if single is None else None,
                progress,
                copies.hash_and_stage if copies is not None else None,
            )
            manifest = Manifest.of(Entry(f.rel, digests[f.path], f.size) for f in files)
            digest = manifest.digest
            latest = self._latest(name)
            if latest is not None and latest.digest == digest:
                self._track(root, latest, single, files)
                return AddResult(latest, False, files_hashed, 0, {})

            fmt = io.format_of([f.rel for f in files])
            schema: dict[str, str] = {}
            num_rows: int | None = None
            profile: dict[str, Any] = {}
            if fmt != "files":  # read it before storing anything: malformed data stores nothing
                ds = io.dataset([f.path for f in files], fmt)
                schema, num_rows, profile = _describe(ds, fmt)

            stored = self._store_blobs(files, digests, link, copies)
            manifest_digest = self.blobs.put_blob_bytes(manifest.encode())
            assert manifest_digest == digest  # the manifest's blob is named by the version's digest
            self.blobs.pin(self._pin(name, digest), digest, {"dataset": name, "time": time.time()})
            content = VersionContent(
                digest=digest,
                format=fmt,
                source=source if single else str(root.resolve()),
                num_files=len(files),
                size_bytes=manifest.size,
                num_rows=num_rows,
                schema=schema,
                profile=profile,
                description=description,
            )
            version, created = self._versions.create_version(name, content)
            self._track(root, version, single, files)
            counts: dict[str, int] = {}
            for how in stored:
                if how != "present":
                    counts[how] = counts.get(how, 0) + 1
            return AddResult(version, created, files_hashed, sum(counts.values()), counts)

    def _small_file_copies(self, link: LinkMode) -> SmallFileCopies | None:
        """Read small files once for their digest and their copy, where the add will copy."""
        blobs = self.blobs
        if link == "link" or not isinstance(blobs, BlobArtifactStore) or not blobs.is_local:
            return None
        if blobs.clones_files():
            return None
        from loopline.artifacts.copies import SmallFileCopies

        return SmallFileCopies(blobs)

    def _store_blobs(
        self,
        files: list[LocalFile],
        digests: Mapping[str, str],
        link: LinkMode,
        copies: SmallFileCopies | None = None,
    ) -> list[str]:
        unique: dict[str, LocalFile] = {}
        for f in files:
            unique.setdefault(digests[f.path], f)

        def put(item: tuple[str, LocalFile]) -> str:
            digest, f = item
            if copies is not None and copies.commit(digest):
                return "copy"  # staged while hashing: the very bytes that were hashed
            how = self.blobs.put_blob(f.path, digest, link=link)
            # Hashed, then stored: a write in between would leave other bytes under this digest.
            if how != "present" and not unchanged_since_walk(f):
                self.blobs.remove_blob(digest)
                raise InvalidInput(
                    f"{f.rel or f.path} changed while it was being added: no version was made.",
                    hint="Add it again once whatever writes it has finished.",
                )
            return how

        if self.blobs.is_local:  # copies and links: kernel work, one slice of files per core
            from loopline.slices import map_in_slices

            # 10,000 files of 105 KiB: copies 1.10 -> 0.40 s on 2 cores (page-cache memcpy and
            # block allocation run in parallel; the directory locks are spread over 256 folders).
            return map_in_slices(put, list(unique.items()))
        from concurrent.futures import ThreadPoolExecutor

        from loopline.data.rest_blobs import HttpBlobStore

        # Ask once which blobs the store lacks (a request to a server, a listing of a bucket),
        # then send only those; uploads wait on the network: overlap them.
        todo = self.blobs.missing(unique)
        if isinstance(self.blobs, HttpBlobStore):  # many blobs per request, each verified there
            self.blobs.put_blobs([(d, f.size, f.path) for d, f in unique.items() if d in todo])
            sent = ["upload"] * len(todo)
        else:
            with ThreadPoolExecutor(WORKERS) as pool:
                sent = list(pool.map(put, [(d, f) for d, f in unique.items() if d in todo]))
        return sent + ["present"] * (len(unique) - len(todo))

    def _track(
        self, root: Path, version: DatasetVersion, single: str | None, files: list[LocalFile] | None = None
    ) -> None:
        """Remember what ``root`` holds for `status`; ``files``: as just hashed, with their stats."""
        if single is None:  # a frame logged from Python has no path to watch
            name = root.name if root.is_file() else None
            stamp = tree_stamp(files) if files is not None else None
            self.cache.track(str(root.resolve()), version.name, version.version, version.digest, name, stamp)

    def _pin(self, name: str, digest: str) -> str:
        return f"datasets/{self.settings.workspace}/{name}/{digest}"

    def _latest(self, name: str) -> DatasetVersion | None:
        from loopline.errors import NotFound

        try:
            return self._versions.get_version(name)
        except NotFound:
            return None

    # ---- read ------------------------------------------------------------------------------

    def get_version(self, uri: str) -> DatasetVersion:
        """The version ``uri`` names: ``datasets:/name/3``, ``datasets:/name@prod``, ``datasets:/name``."""
        return self.store.resolve(_as_uri(uri))

    def datasets(self) -> list[DatasetSummary]:
        return self.store.list_datasets()

    def versions(self, name: str) -> list[DatasetVersion]:
        return self.store.list_versions(name)

    def manifest(self, version: DatasetVersion) -> Manifest:
        return Manifest.decode(self.blobs.read_blob(version.manifest_digest))

    def scan(self, uri: str) -> pads.Dataset:
        """The version as a lazily read Arrow dataset over its stored files (no copy)."""
        version = self.get_version(uri)
        if not version.is_tabular:
            raise InvalidInput(
                f"{version.uri} is a set of files, not a table.", hint="Materialise it with `get`."
            )
        paths = [self.blobs.blob_path(e.digest) for e in self.manifest(version)]
        filesystem = None
        if not self.blobs.is_local:
            from pyarrow.fs import FSSpecHandler, PyFileSystem

            filesystem = PyFileSystem(FSSpecHandler(self.blobs.fs))
        return io.dataset(paths, version.format, filesystem=filesystem)  # type: ignore[arg-type]  # stored as a Format

    def load(self, uri: str, format: io.OutputFormat = "pandas") -> Any:
        """The version as a pandas or polars DataFrame or an Arrow table."""
        return io.convert(self.scan(uri).to_table(), format)

    def read_table(self, source: str | Path) -> pa.Table:
        """A dataset URI or a Parquet/CSV/JSON path as an Arrow table."""
        if isinstance(source, str) and source.startswith("datasets:/"):
            return self.scan(source).to_table()
        return io.read_file(source)

    # ---- materialise -----------------------------------------------------------------------

    def get(
        self, uri: str, dest: str | Path, *, link: bool = False, progress: Progress | None = None
    ) -> Path:
        """Write the version's files under ``dest`` (a single-file version: to ``dest`` itself if
        it is not an existing folder). ``link`` hard-links read-only instead of copying."""
        version = self.get_version(uri)
        manifest = self.manifest(version)
        dest = Path(dest)
        entries = list(manifest)
        if len(entries) == 1 and not dest.is_dir() and version.num_files == 1 and dest.suffix:
            targets = [(entries[0], str(dest))]
        else:
            targets = [(e, os.path.join(dest, e.path)) for e in entries]
        local = self.blobs.is_local

        def fetch(item: tuple[Entry, str]) -> None:
            entry, target = item
            try:
                same_size = os.stat(target).st_size == entry.size
            except OSError:  # not there (or not reachable): write it
                same_size = False
            if same_size:
                have = hash_files(walk(target), self.cache)
                if next(iter(have.values())) == entry.digest:
                    if progress:
                        progress(entry.size)
                    return
            self.blobs.get_blob(entry.digest, target, link=link, make_parent=not local)
            if progress:
                progress(entry.size)

        if local:  # links and copies: kernel work, one slice of files per core
            from loopline.slices import map_in_slices

            for folder in {os.path.dirname(target) for _, target in targets}:
                os.makedirs(folder or ".", exist_ok=True)
            map_in_slices(fetch, targets)
            return dest
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(WORKERS) as pool:  # downloads wait on the network: overlap them
            list(pool.map(fetch, targets))
        return dest

    def checkout(
        self, uri: str, *, to: str | Path | None = None, prune: bool = False, link: bool = False
    ) -> Path:
        """Restore the folder or file a version was added from (or ``to``) to that version.

        ``prune`` also deletes files under it that the version does not have.
        """
        version = self.get_version(uri)
        target = Path(to) if to is not None else Path(version.source)
        if to is None and version.source.startswith("python:"):
            raise InvalidInput(f"{version.uri} was logged from Python, not a path.", hint="Pass --to PATH.")
        if version.num_files == 1 and not target.is_dir() and target.suffix:
            self.get(uri, target, link=link)
            self._track(target, version, None)
            return target
        self.get(uri, target, link=link)
        if prune and target.is_dir():
            keep = {e.path for e in self.manifest(version)}
            for f in walk(target):
                if f.rel not in keep:
                    os.unlink(f.path)
        self._track(target, version, None)
        return target

    # ---- compare ---------------------------------------------------------------------------

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """Schema, row-count, profile and file changes from version ``a`` to version ``b``."""
        from loopline.artifacts.manifest import diff as manifest_diff

        va, vb = self.get_version(a), self.get_version(b)
        cols_a, cols_b = dict(va.schema), dict(vb.schema)
        out: dict[str, Any] = {
            "from": va.uri,
            "to": vb.uri,
            "same_content": va.digest == vb.digest,
            "rows": {"from": va.num_rows, "to": vb.num_rows},
            "size_bytes": {"from": va.size_bytes, "to": vb.size_bytes},
            "schema": {
                "added": {c: cols_b[c] for c in cols_b.keys() - cols_a.keys()},
                "removed": {c: cols_a[c] for c in cols_a.keys() - cols_b.keys()},
                "type_changed": {
                    c: [cols_a[c], cols_b[c]] for c in cols_a.keys() & cols_b.keys() if cols_a[c] != cols_b[c]
                },
            },
            "files": manifest_diff(self.manifest(va), self.manifest(vb)),
        }
        if va.profile and vb.profile:
            try:
                from loopline.data.profile import TableProfile, diff_profiles

                out["profile"] = diff_profiles(
                    TableProfile.from_dict(va.profile), TableProfile.from_dict(vb.profile)
                )
            except ImportError:  # the profile module is optional while it is being built
                pass
        return out

    # ---- aliases, validation, lineage ------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.store.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias)

    def record_validation(self, uri: str, result: Mapping[str, Any]) -> int:
        """Store a validation result with the version ``uri`` names; returns its id."""
        version = self.get_version(uri)
        suite = str(result.get("suite") or result.get("suite_name") or "suite")
        success = bool(result.get("success"))
        return self.store.record_validation(
            version.name, version.version, suite=suite, success=success, result=result
        )

    def validations(self, uri: str) -> list[ValidationRecord]:
        version = self.get_version(uri)
        return self.store.list_validations(version.name, version.version)

    def link_to_run(self, version: DatasetVersion, run_id: str, context: str = "") -> None:
        """Record ``version`` as an input of run ``run_id`` (MLflow's dataset inputs too)."""
        from loopline.tracking import Client
        from loopline.tracking.types import Dataset, DatasetInput

        ds = Dataset(
            name=version.name,
            digest=version.digest[:36],
            source_type="loopline",
            source=version.uri,
            schema=_mlflow_schema(version.schema),
            profile=f'{{"num_rows": {version.num_rows or 0}}}',
        )
        tags = {"mlflow.data.context": context} if context else {}
        tracking = Client(context=self.context)  # the run lives in this client's store, not the default one
        try:
            tracking.log_inputs(run_id, [DatasetInput(ds, tags)])
        finally:
            tracking.close()
        self.store.add_edge(version.uri, uris.run_uri(run_id), "input_of")

    # ---- housekeeping ----------------------------------------------------------------------

    def verify(self, uri: str) -> list[str]:
        """Re-hash the version's stored files; the paths whose content no longer matches."""
        from loopline.artifacts.digests import hash_file

        version = self.get_version(uri)
        manifest = self.manifest(version)
        absent = self.blobs.missing(manifest.digests())  # one question, however many files
        bad = []
        for e in manifest:
            if e.digest in absent or (
                self.blobs.is_local and hash_file(self.blobs.blob_path(e.digest)) != e.digest
            ):
                bad.append(e.path)
        return bad

    def gc(self, grace_seconds: float = 3600.0) -> tuple[int, int]:
        """Unpin trees no version names (left by an interrupted add), then collect unused blobs;
        the number of blobs removed and the bytes freed. Through a server, the server does both."""
        pins = self.blobs.list_pins(f"datasets/{self.settings.workspace}")
        live = {self._pin(v.name, v.digest) for v in self.store.all_versions()} if pins else set()
        for pin in pins:
            if pin not in live:
                record = self.blobs.read_pin(pin)
                if time.time() - float(record.get("time", 0)) > grace_seconds:
                    self.blobs.unpin(pin)
        return self.blobs.gc(grace_seconds)


def _describe(ds: pads.Dataset, fmt: str) -> tuple[dict[str, str], int, dict[str, Any]]:
    import pyarrow as pa

    try:
        schema = {f.name: str(f.type) for f in ds.schema}
        rows = int(ds.count_rows())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise InvalidInput(
            f"Could not read the {fmt} data: {e}", hint=f"Check that the files are valid {fmt}."
        ) from None
    try:
        from loopline.data.profile import profile_table
    except ImportError:
        return schema, rows, {}
    try:
        profile = profile_table(ds).to_dict()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise InvalidInput(
            f"Could not read the {fmt} data: {e}", hint=f"Check that the files are valid {fmt}."
        ) from None
    return schema, rows, profile


def _as_uri(uri: str) -> str:
    return uri if uri.startswith("datasets:/") else f"datasets:/{uri}"


def _mlflow_schema(schema: Mapping[str, str]) -> str:
    import json

    return json.dumps({"mlflow_colspec": [{"name": k, "type": v} for k, v in schema.items()]})
