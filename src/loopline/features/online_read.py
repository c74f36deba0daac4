"""The online read path: a plan made once per feature list, then one store query per view.

The plan holds, per view, its join keys, its row codec and the positions of the wanted features
in its rows, so a request does no name lookups: encode the keys, read, decode, place. On-demand
views run afterwards on the same values (see :mod:`loopline.features.retrieval`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidInput
from loopline.features.definitions import Definition, FeatureView, OnDemandFeatureView
from loopline.features.online import OnlineStore
from loopline.features.online.codec import RowCodec, encode_key, key_part
from loopline.features.retrieval import Resolved, on_demand_input, run_on_demand


@dataclass(frozen=True)
class ViewRead:
    view: str
    join_keys: tuple[str, ...]
    codec: RowCodec
    positions: tuple[int, ...]  # index in the view's row of each feature read
    features: tuple[str, ...]


@dataclass(frozen=True)
class SingleKeyRead:
    """The common case, read without building any intermediate: one view, one join key, no on-demand."""

    key: str
    view: str
    decode: Any  # RowCodec.decode
    names: tuple[str, ...]  # output columns, in the order asked
    slots: tuple[int, ...]  # index in the decoded row of each output column


@dataclass(frozen=True)
class OnlinePlan:
    resolved: Resolved
    reads: tuple[ViewRead, ...]
    join_keys: tuple[str, ...]
    request_fields: tuple[str, ...]
    single: SingleKeyRead | None = None

    @classmethod
    def build(cls, resolved: Resolved, defs: Mapping[str, Definition]) -> OnlinePlan:
        reads = []
        keys: list[str] = []
        for name, feats in resolved.views.items():
            view = defs[name]
            assert isinstance(view, FeatureView)
            if not view.online:
                raise InvalidInput(f"Feature view {name!r} is offline only (online=False).")
            reads.append(
                ViewRead(
                    name,
                    view.join_keys,
                    RowCodec([f.dtype for f in view.schema]),
                    tuple(view.features.index(f) for f in feats),
                    feats,
                )
            )
            keys.extend(k for k in view.join_keys if k not in keys)
        request = [f.name for o in resolved.on_demand for f in o.request_fields()]
        single = None
        if len(reads) == 1 and len(keys) == 1 and not resolved.on_demand:
            r = reads[0]
            slots = tuple(r.positions[r.features.index(f)] for _, f in resolved.refs)
            single = SingleKeyRead(keys[0], r.view, r.codec.decode, resolved.names, slots)
        return cls(resolved, tuple(reads), tuple(keys), tuple(dict.fromkeys(request)), single)


class OnlineResponse:
    """Columns of an online read: the join keys, then the features in the order asked."""

    __slots__ = ("_columns",)

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self._columns = columns

    def to_dict(self) -> dict[str, list[Any]]:
        return self._columns

    def __getitem__(self, name: str) -> list[Any]:
        return self._columns[name]

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self._columns)

    def to_arrow(self) -> Any:
        import pyarrow as pa

        return pa.table(self._columns)

    def __repr__(self) -> str:
        return f"OnlineResponse({self._columns!r})"


def _columns(
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]], needed: Sequence[str]
) -> tuple[dict[str, Sequence[Any]], int]:
    if isinstance(entity_rows, Mapping):
        cols = dict(entity_rows)
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise InvalidInput("The entity columns have different lengths.")
        n = lengths.pop() if lengths else 0
    else:
        rows = list(entity_rows)
        n = len(rows)
        if rows and not all(isinstance(r, Mapping) for r in rows):
            raise InvalidInput(
                "entity_rows must be a list of {join key: value} objects or a dict of columns."
            )
        cols = {k: [r.get(k) for r in rows] for k in needed if any(k in r for r in rows)}
    for k in needed:
        if k not in cols:
            raise InvalidInput(f"The entity rows have no {k!r}.", hint=f"Give each row {list(needed)}.")
    return cols, n


def read_online(plan: OnlinePlan, store: OnlineStore, entity_rows: Any) -> OnlineResponse:
    if plan.single is not None and type(entity_rows) in (list, dict):
        fast = _read_single_key(plan.single, store, entity_rows)
        if fast is not None:
            return OnlineResponse(fast)
    cols, n = _columns(entity_rows, [*plan.join_keys, *plan.request_fields])
    out: dict[str, list[Any]] = {k: list(cols[k]) for k in plan.join_keys}
    values: dict[tuple[str, str], list[Any]] = {}
    for r in plan.reads:
        if len(r.join_keys) == 1:
            keys = [key_part(v) for v in cols[r.join_keys[0]]]
        else:
            keys = [encode_key(vals) for vals in zip(*(cols[k] for k in r.join_keys), strict=True)]
        payloads = store.read(r.view, keys)
        decode = r.codec.decode
        per = [[None] * n for _ in r.features]
        for i, p in enumerate(payloads):
            if p is not None:
                row = decode(p)
                for j, pos in enumerate(r.positions):
                    per[j][i] = row[pos]
        for j, f in enumerate(r.features):
            values[(r.view, f)] = per[j]
    return _finish(plan.resolved, out, values, cols, n)


def with_on_demand(
    resolved: Resolved, keys: dict[str, list[Any]], values: dict[tuple[str, str], list[Any]], entity_rows: Any
) -> OnlineResponse:
    """The response from the views' ``values`` read elsewhere (a server): on-demand views run here,
    on the request fields of ``entity_rows``; ``keys`` are the join-key columns."""
    request = list(dict.fromkeys(f.name for o in resolved.on_demand for f in o.request_fields()))
    cols, n = _columns(entity_rows, request)
    return _finish(resolved, dict(keys), values, cols, n)


def _finish(
    resolved: Resolved,
    out: dict[str, list[Any]],
    values: dict[tuple[str, str], list[Any]],
    cols: Mapping[str, Sequence[Any]],
    n: int,
) -> OnlineResponse:
    for odfv in resolved.on_demand:
        _run(odfv, values, resolved.dtypes, cols, n)
    for (view, feat), name in zip(resolved.refs, resolved.names, strict=True):
        out[name] = values[(view, feat)]
    return OnlineResponse(out)


def _read_single_key(
    plan: SingleKeyRead, store: OnlineStore, rows: list[Any] | dict[str, Any]
) -> dict[str, list[Any]] | None:
    """The hot path: rows (or columns) of one view's key. None: take the general path."""
    key = plan.key
    if not rows:
        return None
    if isinstance(rows, dict):
        values = rows.get(key)
        try:
            if type(values) is not list or any(len(c) != len(values) for c in rows.values()):
                return None  # the general path reads any sequence, or says what is wrong
        except TypeError:
            return None
        values = list(values)
    else:
        try:
            values = [r[key] for r in rows]
        except (KeyError, TypeError, IndexError):  # a row lacks the key or is no mapping: the
            return None  # general path says which, or fills None as for rows of differing keys
    payloads = store.read(plan.view, [key_part(v) for v in values])
    decode = plan.decode
    out: dict[str, list[Any]] = {key: values}
    if len(payloads) == 1:
        p = payloads[0]
        if p is None:
            for name in plan.names:
                out[name] = [None]
        else:
            row = decode(p)
            for name, slot in zip(plan.names, plan.slots, strict=True):
                out[name] = [row[slot]]
        return out
    decoded = [decode(p) if p is not None else None for p in payloads]
    for name, slot in zip(plan.names, plan.slots, strict=True):
        out[name] = [row[slot] if row is not None else None for row in decoded]
    return out


def _run(
    odfv: OnDemandFeatureView,
    values: dict[tuple[str, str], list[Any]],
    dtypes: Mapping[tuple[str, str], str],
    cols: Mapping[str, Sequence[Any]],
    n: int,
) -> None:
    result = run_on_demand(odfv, on_demand_input(odfv, values, dtypes, cols, n))
    for f, arr in result.items():
        values[(odfv.name, f)] = arr.to_pylist()
