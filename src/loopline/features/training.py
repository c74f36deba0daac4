"""The work behind ``FeatureStore``'s verbs that touch data: training sets, pushes, materialisation.

Kept apart from :mod:`loopline.features.store` so the facade stays a thin, readable list of verbs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput
from loopline.features.definitions import (
    Definition,
    FeatureService,
    FeatureView,
    FileSource,
    PushSource,
    source_uri,
)
from loopline.features.materialize import MaterializeResult, codec_for, encode_keys, encode_rows, stream_view
from loopline.features.offline import event_times, point_in_time_join, to_arrow
from loopline.features.retrieval import Fetch, Resolved, on_demand_input, resolve, run_on_demand
from loopline.features.sources import connect
from loopline.protocol.jobs import Progress

if TYPE_CHECKING:
    import pyarrow as pa

    from loopline.features.catalog import Catalog
    from loopline.features.online import OnlineStore
    from loopline.features.sql_store import SqlFeatureRegistry
    from loopline.protocol.jobs import ProgressFn


def historical(
    catalog: Catalog,
    entity: pa.Table,
    features: Sequence[str] | FeatureService | str,
    *,
    timestamp_column: str,
    full_feature_names: bool,
    save_as: str | None,
    run_id: str | None,
    memory_limit: str | None,
) -> pa.Table:
    """The entity table with each requested feature appended as of each row's time."""
    defs = catalog.definitions()
    res = resolve(features, defs, full_feature_names=full_feature_names)
    check_names(entity, res)
    ets = event_times(entity, timestamp_column)
    fetches = [Fetch(_view(defs, v), feats) for v, feats in res.views.items()]
    limit = memory_limit or os.environ.get("LOOPLINE_FEATURES_MEMORY_LIMIT")
    spill = _spill_dir("loopline-features-")
    opened: list[Any] = []

    def duck() -> Any:
        if not opened:
            opened.append(connect(memory_limit=limit, temp_dir=spill))
        return opened[0]

    try:
        joined = point_in_time_join(
            duck, entity, ets, fetches, catalog.settings, budget=in_memory_budget(limit)
        )
    finally:
        for con in opened:
            con.close()
        shutil.rmtree(spill, ignore_errors=True)
    values: dict[tuple[str, str], Any] = {}
    for fetch, cols in zip(fetches, joined, strict=True):
        for f, col in zip(fetch.features, cols, strict=True):
            values[(fetch.view.name, f)] = col
    result = assemble(entity, res, values)
    if save_as:
        save_training_set(catalog, result, save_as, res.refs, run_id)
    return result


def _view(defs: Mapping[str, Definition], name: str) -> FeatureView:
    view = defs[name]
    assert isinstance(view, FeatureView)  # resolve() puts only feature views in Resolved.views
    return view


def check_names(entity: pa.Table, res: Resolved) -> None:
    clash = [n for n in res.names if n in entity.column_names]
    if clash:
        raise InvalidInput(
            f"The entity frame already has column(s) {clash}, which are also feature names.",
            hint="Rename them, or pass full_feature_names=True.",
        )


def assemble(entity: pa.Table, res: Resolved, values: dict[tuple[str, str], Any]) -> pa.Table:
    """The training set: on-demand views run on the joined ``values`` ({(view, feature): column}),
    then every requested feature appended to ``entity`` in the order asked."""
    import pyarrow as pa

    request = {c: entity.column(c) for c in entity.column_names}
    for odfv in res.on_demand:
        table = on_demand_input(odfv, values, res.dtypes, request, entity.num_rows)
        for f, arr in run_on_demand(odfv, table).items():
            values[(odfv.name, f)] = arr
    result = entity
    for ref, name in zip(res.refs, res.names, strict=True):
        col = values[ref]
        result = result.append_column(
            name, col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
        )
    return result


def _spill_dir(prefix: str) -> str:
    """A fresh path for DuckDB's spill files; DuckDB creates it only if it spills."""
    return os.path.join(tempfile.gettempdir(), f"{prefix}{uuid.uuid4().hex}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*$", re.IGNORECASE)


def in_memory_budget(limit: str | None) -> int:
    """Bytes of feature rows a view may hold for the in-memory join (beyond that, DuckDB spills).

    A quarter of ``memory_limit`` (DuckDB's syntax: ``500MB``, ``2GiB``…) or, without one, of the
    machine's memory; 0 (always DuckDB) when the limit cannot be read.
    """
    if limit:
        m = _SIZE.match(limit)
        if m is None:
            return 0
        unit = m.group(2).upper().rstrip("B")
        base = 1024 if unit.endswith("I") else 1000
        power = "KMGT".find(unit[:1]) + 1 if unit else 0
        return int(float(m.group(1)) * base**power) // 4
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 30


def save_training_set(
    catalog: Catalog, table: pa.Table, name: str, refs: Sequence[tuple[str, str]], run_id: str | None
) -> str:
    """Version ``table`` as dataset ``name``; edges from its views and their sources (and to the run)."""
    try:
        from loopline.data import DataClient, log_dataset
    except ImportError as e:  # pragma: no cover - loopline.data ships with loopline
        raise InvalidInput("Saving a training set needs loopline.data.") from e
    client = DataClient(catalog.settings)
    version = log_dataset(table, name=name, context="training", client=client)
    defs = catalog.definitions()
    edges: list[tuple[str, str, str]] = []
    for view in dict.fromkeys(v for v, _ in refs):
        edges.append((f"features:/{view}", version.uri, "input_of"))
        d = defs.get(view)
        if isinstance(d, FeatureView):
            edges.append((source_uri(d.source), version.uri, "input_of"))
        elif d is not None and hasattr(d, "inputs"):
            for iv, _ in d.inputs():
                edges.append((f"features:/{iv}", version.uri, "input_of"))
    if run_id:
        edges.append((version.uri, f"runs:/{run_id}", "input_of"))
    catalog.registry.record_lineage(
        "training_set.create", version.uri, edges, features=[f"{v}:{f}" for v, f in refs]
    )
    return version.uri


def push(catalog: Catalog, online: OnlineStore, name: str, rows: Any, *, to: str) -> int:
    import pyarrow as pa

    if to not in ("online", "offline", "online_and_offline"):
        raise InvalidInput(f"Unknown push target {to!r}.", hint="Use online, offline or online_and_offline.")
    table = pa.Table.from_pylist(rows) if isinstance(rows, list) else to_arrow(rows)
    written = 0
    for view in catalog.push_views(name):
        ts = view.source.timestamp_field
        need = [*view.join_keys, ts, *view.features]
        missing = [c for c in need if c not in table.column_names]
        if missing:
            raise InvalidInput(f"The pushed rows lack column(s) {missing} of feature view {view.name!r}.")
        times = event_times(table, ts)
        if to != "offline":
            keys = encode_keys([table.column(k) for k in view.join_keys])
            rows = encode_rows(keys, times, [table.column(f) for f in view.features], codec_for(view))
            written += online.write(view.name, rows)
        if to != "online":
            _append_offline(view, table)
    return written


def _append_offline(view: FeatureView, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    src = view.source.batch_source if isinstance(view.source, PushSource) else view.source
    folder = Path(src.path) if isinstance(src, FileSource) else None
    if folder is None or not folder.is_dir():
        raise InvalidInput(
            f"Feature view {view.name!r} cannot take offline pushes: its batch source is not a folder.",
            hint="Point the FileSource at a folder; each push adds a Parquet file to it.",
        )
    # Named by content, written aside then renamed: a retried push (its answer lost) adds no second
    # copy of the rows, and a push cut off midway leaves no partial file for readers of the folder.
    from loopline.features.arrow_ipc import to_ipc

    name = f"push-{hashlib.sha256(to_ipc(table)).hexdigest()[:32]}.parquet"
    part = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, part)
        os.replace(part, folder / name)
    finally:
        part.unlink(missing_ok=True)


def materialize(
    catalog: Catalog,
    jobs: SqlFeatureRegistry,
    online: OnlineStore,
    start_us: int | None,
    end_us: int,
    views: Sequence[str] | None,
    *,
    batch_rows: int,
    incremental: bool,
    progress: ProgressFn | None = None,
) -> list[MaterializeResult]:
    defs = catalog.definitions(fresh=True)
    chosen = [d for d in defs.values() if isinstance(d, FeatureView) and d.online]
    if views is not None:
        known = {d.name for d in chosen}
        unknown = [v for v in views if v not in known]
        if unknown:
            raise InvalidInput(
                f"No online feature view(s) {unknown}.", hint=f"Online views: {sorted(known)}."
            )
        chosen = [d for d in chosen if d.name in views]
    if start_us is not None and start_us > end_us:
        raise InvalidInput("The start of the window is after its end.")
    results: list[MaterializeResult] = []
    for i, view in enumerate(chosen, 1):
        start = start_us
        if incremental:
            last = jobs.last_materialized_end(view.name)
            ttl = view.ttl_us
            start = last * 1000 if last is not None else (end_us - ttl if ttl is not None else None)
        report = _reporter(progress, sum(r.rows for r in results), f"{view.name} (view {i} of {len(chosen)})")
        results.append(_materialize_view(catalog, jobs, online, view, start, end_us, batch_rows, report))
    return results


def _reporter(progress: ProgressFn | None, before: int, where: str) -> Callable[[int], None]:
    """Rows written in one view as the whole call's progress: rows of every view so far (the total
    is not known ahead: the views stream)."""

    def report(rows: int) -> None:
        if progress is not None:
            progress(Progress(before + rows, None, where))

    report(0)
    return report


def _materialize_view(
    catalog: Catalog,
    reg: SqlFeatureRegistry,
    online: OnlineStore,
    view: FeatureView,
    start: int | None,
    end_us: int,
    batch_rows: int,
    report: Callable[[int], None],
) -> MaterializeResult:
    """One view's job: begun (or resumed) in the metadata store, its progress kept per batch and
    ``report``-ed (rows written, counting those of the run it resumes)."""
    job = reg.begin_materialization(view.name, (start or 0) // 1000, end_us // 1000)
    done = [job.rows]  # rows written so far, as of the last committed batch

    def progress(n: int, last_key: list[Any]) -> None:
        done[0] = job.rows + n
        reg.materialization_progress(job.id, done[0], last_key)
        report(done[0])

    spill = _spill_dir("loopline-materialize-")
    con = connect(temp_dir=spill)
    try:
        stream_view(
            con,
            view,
            online,
            start_us=start,
            end_us=end_us,
            cursor=job.cursor,
            settings=catalog.settings,
            batch_rows=batch_rows,
            on_batch=progress,
        )
    except BaseException as e:
        reg.end_materialization(job.id, rows=done[0], error=f"{type(e).__name__}: {e}")
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    reg.end_materialization(job.id, rows=done[0])
    return MaterializeResult(view.name, start if start is not None else 0, end_us, done[0], job.cursor)
