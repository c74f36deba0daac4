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
class OnlinePlan:
    resolved: Resolved
    reads: tuple[ViewRead, ...]
    join_keys: tuple[str, ...]
    request_fields: tuple[str, ...]

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
        return cls(resolved, tuple(reads), tuple(keys), tuple(dict.fromkeys(request)))


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
    for odfv in plan.resolved.on_demand:
        _run(odfv, values, plan.resolved.dtypes, cols, n)
    for (view, feat), name in zip(plan.resolved.refs, plan.resolved.names, strict=True):
        out[name] = values[(view, feat)]
    return OnlineResponse(out)


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
