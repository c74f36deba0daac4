"""Feature references, resolved once; on-demand transformations, run the same way offline and online.

``resolve`` turns ``["driver_stats:conv_rate", "adjusted:value", …]`` (or a FeatureService) into
what to read from which view, which on-demand views to run on top, and the output column names.
``run_on_demand`` builds the function's input the same way in both paths — an Arrow table of the
declared types, handed over as pandas (``mode="pandas"``) or as Python lists (``mode="python"``)
— and casts its output to the declared types, so a training set and a served request see the
same values for the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidInput, NotFound
from loopline.features.definitions import (
    Definition,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)

ARROW_TYPES = {
    "float64": "float64",
    "float32": "float32",
    "int64": "int64",
    "int32": "int32",
    "string": "string",
    "bool": "bool_",
}


def arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    if dtype == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, ARROW_TYPES[dtype])()


@dataclass(frozen=True)
class Resolved:
    """A request for features, resolved against the registry."""

    refs: tuple[tuple[str, str], ...]  # (view, feature) in the caller's order
    names: tuple[str, ...]  # output column of each ref
    views: dict[str, tuple[str, ...]]  # regular view -> features to read (incl. on-demand inputs)
    on_demand: tuple[OnDemandFeatureView, ...]
    dtypes: dict[tuple[str, str], str]  # declared type of each feature read from a view


@dataclass(frozen=True)
class Fetch:
    """The features wanted from one view (one entry of ``Resolved.views``, with its definition)."""

    view: FeatureView
    features: tuple[str, ...]


def refs_of(features: Sequence[str] | FeatureService | str, defs: Mapping[str, Definition]) -> list[str]:
    if isinstance(features, FeatureService):
        return features.refs()
    if isinstance(features, str):
        svc = defs.get(features)
        if not isinstance(svc, FeatureService):
            raise NotFound(
                f"No feature service named {features!r}.",
                hint="Pass a list of 'view:feature' references or the name of a registered FeatureService.",
            )
        return svc.refs()
    out = list(features)
    if not out:
        raise InvalidInput("No features requested.", hint="Pass ['view:feature', ...] or a FeatureService.")
    return out


def resolve(
    features: Sequence[str] | FeatureService | str,
    defs: Mapping[str, Definition],
    *,
    full_feature_names: bool = False,
) -> Resolved:
    refs: list[tuple[str, str]] = []
    for ref in refs_of(features, defs):
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise InvalidInput(
                f"Invalid feature reference {ref!r}.",
                hint="Use 'view:feature', e.g. 'driver_stats:conv_rate'.",
            )
        view, feat = ref.split(":")
        d = defs.get(view)
        if not isinstance(d, (FeatureView, OnDemandFeatureView)):
            known = sorted(k for k, v in defs.items() if isinstance(v, (FeatureView, OnDemandFeatureView)))
            raise NotFound(
                f"Unknown feature view {view!r} in {ref!r}.",
                hint=f"Feature views: {', '.join(known) or 'none'}.",
            )
        if feat not in d.features:
            raise NotFound(f"Unknown feature {ref!r}.", hint=f"{view!r} has: {', '.join(d.features)}.")
        if (view, feat) not in refs:
            refs.append((view, feat))
    names = tuple(f"{v}__{f}" if full_feature_names else f for v, f in refs)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(
            f"Feature names {dupes} appear in more than one view.",
            hint="Pass full_feature_names=True (columns become view__feature).",
        )
    views: dict[str, list[str]] = {}
    on_demand: list[OnDemandFeatureView] = []
    for v, f in refs:
        d = defs[v]
        if isinstance(d, OnDemandFeatureView):
            if d not in on_demand:
                on_demand.append(d)
                for iv, feats in d.inputs():
                    for x in feats:
                        if x not in views.setdefault(iv, []):
                            views[iv].append(x)
        elif f not in views.setdefault(v, []):
            views[v].append(f)
    dtypes: dict[tuple[str, str], str] = {}
    for v, wanted in views.items():
        fv = defs.get(v)
        if not isinstance(fv, FeatureView):
            raise InvalidInput(f"{v!r} is not a feature view, so on-demand views cannot read from it.")
        declared = {f.name: f.dtype for f in fv.schema}
        dtypes.update({(v, f): declared[f] for f in wanted})
    return Resolved(tuple(refs), names, {k: tuple(v) for k, v in views.items()}, tuple(on_demand), dtypes)


def on_demand_input(
    odfv: OnDemandFeatureView,
    columns: Mapping[tuple[str, str], Any],
    dtypes: Mapping[tuple[str, str], str],
    request: Mapping[str, Any],
    n: int,
) -> Any:
    """The Arrow table an on-demand function sees: request fields, then its input features by name."""
    import pyarrow as pa

    data: dict[str, Any] = {}
    for field in odfv.request_fields():
        if field.name not in request:
            raise InvalidInput(
                f"On-demand view {odfv.name!r} needs request field {field.name!r}.",
                hint="Add it to the entity rows (online) or as a column of the entity frame (offline).",
            )
        col = request[field.name]
        typ = arrow_type(field.dtype)
        data[field.name] = (
            col.cast(typ) if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(col, typ)
        )
    for view, feats in odfv.inputs():
        for f in feats:
            col = columns[(view, f)]
            typ = arrow_type(dtypes[(view, f)])
            data[f] = col.cast(typ) if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(col, typ)
    if not data:
        return pa.table({"__n": pa.nulls(n)}).drop(["__n"])
    return pa.table(data)


def run_on_demand(odfv: OnDemandFeatureView, table: Any) -> dict[str, Any]:
    """Run the function on ``table``; its declared outputs as Arrow arrays of the declared types."""
    import pyarrow as pa

    n = table.num_rows
    arg = (
        table.to_pandas()
        if odfv.mode == "pandas"
        else {c: table.column(c).to_pylist() for c in table.column_names}
    )
    try:
        out = odfv.udf(arg)
    except Exception as e:  # the definition's code failed on these inputs: say whose, as bad input
        raise InvalidInput(
            f"On-demand view {odfv.name!r} failed: {type(e).__name__}: {e}.",
            hint="Fix the function in the definitions file and apply it again.",
        ) from e
    if odfv.mode == "pandas":
        get = (lambda name: pa.Array.from_pandas(out[name])) if hasattr(out, "columns") else None
    else:
        get = (lambda name: pa.array(list(out[name]))) if isinstance(out, Mapping) else None
    if get is None:
        kind = "a pandas DataFrame" if odfv.mode == "pandas" else "a dict of lists"
        raise InvalidInput(f"On-demand view {odfv.name!r} must return {kind}, not {type(out).__name__}.")
    result: dict[str, Any] = {}
    for field in odfv.schema:
        try:
            arr = get(field.name)
        except KeyError:
            raise InvalidInput(
                f"On-demand view {odfv.name!r} did not return column {field.name!r}."
            ) from None
        if len(arr) != n:
            raise InvalidInput(f"On-demand view {odfv.name!r} returned {len(arr)} rows for {n}.")
        try:
            result[field.name] = arr.cast(arrow_type(field.dtype))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise InvalidInput(
                f"On-demand view {odfv.name!r}: {field.name!r} is not {field.dtype}: {e}"
            ) from None
    return result
