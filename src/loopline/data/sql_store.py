"""Versioned datasets on SQLAlchemy: names, versions, aliases and validation results.

A version number is handed out inside the write transaction that inserts it, under a lock on the
dataset (``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR UPDATE`` on PostgreSQL), and only when the
content differs from the latest version: two processes adding the same content at once get one
version between them. Those steps and their SQL are ``data.version_writes``', which the lean
``sqlite3`` path of ``loopline data add`` runs too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from loopline import uris
from loopline.clock import now_ms
from loopline.data import version_writes
from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord, VersionContent
from loopline.errors import InvalidInput, NotFound
from loopline.metadata import schema_data as t
from loopline.metadata.base import SqlStore, text_runner
from loopline.names import check_alias, check_name


class SqlDataStore(SqlStore):
    """Dataset versions of one workspace."""

    # ---- writes ----------------------------------------------------------------------------

    def create_version(self, name: str, content: VersionContent) -> tuple[DatasetVersion, bool]:
        """The new version, or the latest one if its content is the same; and whether it is new."""
        with self._write() as conn:
            return version_writes.create_if_changed(
                text_runner(conn), workspace=self.workspace, actor=self.actor, name=name,
                lock=conn.dialect.name == "postgresql", content=content,
            )  # fmt: skip

    def set_alias(self, name: str, alias: str, version: int) -> None:
        alias = check_alias("dataset", alias)
        with self._write() as conn:
            ds = self._require_dataset(conn, name)
            self._require_version(conn, name, ds, version)
            stmt = self._insert(conn, t.dataset_aliases).values(dataset=ds, alias=alias, version=version)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["dataset", "alias"], set_={"version": version})
            )
            self._event(conn, "dataset.alias_set", f"datasets:/{name}@{alias}", version=version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self._write() as conn:
            ds = self._require_dataset(conn, name)
            gone = conn.execute(
                delete(t.dataset_aliases).where(
                    t.dataset_aliases.c.dataset == ds, t.dataset_aliases.c.alias == alias
                )
            ).rowcount
            if not gone:
                raise NotFound(f"Dataset {name!r} has no alias {alias!r}.")
            self._event(conn, "dataset.alias_deleted", f"datasets:/{name}@{alias}")

    def set_description(self, name: str, version: int, description: str) -> None:
        with self._write() as conn:
            ds = self._require_dataset(conn, name)
            self._require_version(conn, name, ds, version)
            conn.execute(
                update(t.dataset_versions)
                .where(t.dataset_versions.c.dataset == ds, t.dataset_versions.c.version == version)
                .values(description=description)
            )
            self._event(conn, "dataset.version_updated", uris.dataset_uri(name, version))

    def record_validation(
        self, name: str, version: int, *, suite: str, success: bool, result: Mapping[str, Any]
    ) -> int:
        with self._write() as conn:
            ds = self._require_dataset(conn, name)
            self._require_version(conn, name, ds, version)
            vid = conn.execute(
                insert(t.dataset_validations).returning(t.dataset_validations.c.id),
                {
                    "dataset": ds,
                    "version": version,
                    "suite": suite,
                    "success": success,
                    "result": json.dumps(dict(result), default=str),
                    "created_by": self.actor,
                    "creation_time": now_ms(),
                },
            ).scalar_one()
            self._event(
                conn,
                "dataset.validated",
                uris.dataset_uri(name, version),
                suite=suite,
                success=success,
                validation_id=vid,
            )
            return int(vid)

    def add_edge(self, from_uri: str, to_uri: str, relation: str) -> None:
        """A lineage edge between a dataset version and what consumed or produced it."""
        with self._write() as conn:
            self._edge(conn, from_uri, to_uri, relation)

    # ---- reads -----------------------------------------------------------------------------

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version ``version`` of ``name``, or its latest."""
        with self.engine.connect() as conn:
            if version is None:
                return version_writes.latest_version(
                    text_runner(conn), self.workspace, check_name("dataset", name)
                )
            ds = self._require_dataset(conn, name)
            row = conn.execute(
                select(t.dataset_versions).where(
                    t.dataset_versions.c.dataset == ds, t.dataset_versions.c.version == version
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"Dataset {name!r} has no version {version}.",
                    hint=f"`loopline data log {name}` lists its versions.",
                )
            return self._version(conn, name, row)

    def get_by_alias(self, name: str, alias: str) -> DatasetVersion:
        with self.engine.connect() as conn:
            ds = self._require_dataset(conn, name)
            version = conn.execute(
                select(t.dataset_aliases.c.version).where(
                    t.dataset_aliases.c.dataset == ds, t.dataset_aliases.c.alias == alias
                )
            ).scalar()
        if version is None:
            raise NotFound(
                f"Dataset {name!r} has no alias {alias!r}.",
                hint=f"Set one with `loopline data alias {name} {alias} VERSION`.",
            )
        return self.get_version(name, int(version))

    def resolve(self, uri: str) -> DatasetVersion:
        """``datasets:/name/3``, ``datasets:/name@prod``, ``datasets:/name`` or ``…@latest``."""
        parsed = uris.parse(uri)
        if parsed.scheme != "datasets" or parsed.path:
            raise InvalidInput(
                f"Not a dataset version URI: {uri!r}.",
                hint="Use datasets:/<name>/<version> or datasets:/<name>@<alias>.",
            )
        if parsed.alias is not None and parsed.alias != "latest":
            return self.get_by_alias(parsed.name, parsed.alias)
        if parsed.version is None or parsed.alias == "latest" or parsed.version == "latest":
            return self.get_version(parsed.name)
        if parsed.version.isdigit():
            return self.get_version(parsed.name, int(parsed.version))
        return self._by_digest(parsed.name, parsed.version)

    def _by_digest(self, name: str, prefix: str) -> DatasetVersion:
        if len(prefix) < 6 or not all(c in "0123456789abcdef" for c in prefix):
            raise InvalidInput(
                f"Invalid dataset version {prefix!r}.",
                hint="Use a version number, or at least 6 hex digits of a digest.",
            )
        with self.engine.connect() as conn:
            ds = self._require_dataset(conn, name)
            rows = conn.execute(
                select(t.dataset_versions)
                .where(t.dataset_versions.c.dataset == ds, t.dataset_versions.c.digest.startswith(prefix))
                .order_by(t.dataset_versions.c.version.desc())
            ).all()
            if not rows:
                raise NotFound(f"Dataset {name!r} has no version with digest {prefix}….")
            return self._version(conn, name, rows[0])

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.engine.connect() as conn:
            ds = self._require_dataset(conn, name)
            rows = conn.execute(
                select(t.dataset_versions)
                .where(t.dataset_versions.c.dataset == ds)
                .order_by(t.dataset_versions.c.version.desc())
            ).all()
            aliases = self._aliases(conn, ds)
            return [self._version(conn, name, r, aliases) for r in rows]

    def list_datasets(self) -> list[DatasetSummary]:
        v, d = t.dataset_versions, t.versioned_datasets
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    d.c.id,
                    d.c.name,
                    d.c.description,
                    d.c.last_updated_time,
                    func.max(v.c.version),
                    func.count(),
                )
                .join(v, v.c.dataset == d.c.id)
                .where(d.c.workspace == self.workspace)
                .group_by(d.c.id, d.c.name, d.c.description, d.c.last_updated_time)
                .order_by(d.c.name)
            ).all()
            out = []
            for ds, name, desc, updated, latest, count in rows:
                out.append(
                    DatasetSummary(name, desc, int(latest), int(count), self._aliases(conn, ds), int(updated))
                )
            return out

    def list_validations(self, name: str, version: int | None = None) -> list[ValidationRecord]:
        with self.engine.connect() as conn:
            ds = self._require_dataset(conn, name)
            q = select(t.dataset_validations).where(t.dataset_validations.c.dataset == ds)
            if version is not None:
                q = q.where(t.dataset_validations.c.version == version)
            rows = conn.execute(q.order_by(t.dataset_validations.c.id.desc())).all()
        return [
            ValidationRecord(
                int(r.id),
                name,
                int(r.version),
                r.suite,
                bool(r.success),
                json.loads(r.result),
                r.created_by,
                int(r.creation_time),
            )
            for r in rows
        ]

    def all_versions(self) -> list[DatasetVersion]:
        """Every version of every dataset of the workspace (for push/pull and gc)."""
        return [v for s in self.list_datasets() for v in self.list_versions(s.name)]

    # ---- helpers ---------------------------------------------------------------------------

    def _require_dataset(self, conn: Connection, name: str) -> int:
        ds = version_writes.dataset_id(text_runner(conn), self.workspace, check_name("dataset", name))
        if ds is None:
            raise version_writes.no_dataset(name)
        return ds

    def _require_version(self, conn: Connection, name: str, ds: int, version: int) -> None:
        found = conn.execute(
            select(t.dataset_versions.c.version).where(
                t.dataset_versions.c.dataset == ds, t.dataset_versions.c.version == version
            )
        ).first()
        if found is None:
            raise NotFound(f"Dataset {name!r} has no version {version}.")

    @staticmethod
    def _aliases(conn: Connection, ds: int) -> dict[str, int]:
        rows = conn.execute(
            select(t.dataset_aliases.c.alias, t.dataset_aliases.c.version).where(
                t.dataset_aliases.c.dataset == ds
            )
        ).all()
        return {a: int(v) for a, v in rows}

    def _version(
        self, conn: Connection, name: str, row: Row[Any], aliases: Mapping[str, int] | None = None
    ) -> DatasetVersion:
        if aliases is None:
            aliases = self._aliases(conn, int(row.dataset))
        return version_writes.version_from_row(
            name, row._mapping, (a for a, v in aliases.items() if v == int(row.version))
        )
