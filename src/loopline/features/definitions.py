"""Feature definitions in the shape Feast users know: entities, sources, views, services.

    driver = Entity(name="driver", join_keys=["driver_id"])
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        source=FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", Float64), Field("trips", Int64)],
        ttl=timedelta(days=1),
    )

    @on_demand_feature_view(sources=[stats, RequestSource("req", [Field("bonus", Float64)])],
                            schema=[Field("adjusted", Float64)])
    def adjusted(df):
        import pandas as pd
        return pd.DataFrame({"adjusted": df["conv_rate"] + df["bonus"]})

    activity = FeatureService(name="driver_activity", features=[stats[["conv_rate"]], adjusted])

Every definition turns into a JSON ``spec`` (what the registry stores and diffs) and back. An
on-demand function is stored as its source text, so the server and the inference server can run
it without the definitions file: it must be self-contained (import what it uses inside it, or use
``pd``/``np``, which are provided).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeAlias

from loopline.errors import InvalidInput
from loopline.names import IDENTIFIER, check_name

Float64 = "float64"
Float32 = "float32"
Int64 = "int64"
Int32 = "int32"
String = "string"
Bool = "bool"
UnixTimestamp = "timestamp"
DTYPES = (Float64, Float32, Int64, Int32, String, Bool, UnixTimestamp)


@dataclass(frozen=True)
class Field:
    """A named, typed column: ``Field("conv_rate", Float64)``."""

    name: str
    dtype: str = Float64

    def __post_init__(self) -> None:
        check_name("field", self.name, IDENTIFIER)
        if self.dtype not in DTYPES:
            raise InvalidInput(
                f"Field {self.name!r} has unknown dtype {self.dtype!r}.", hint=f"Use one of {DTYPES}."
            )


@dataclass(frozen=True)
class Entity:
    """What features are about, and the columns that identify it (``join_keys``, default ``[name]``)."""

    name: str
    join_keys: Sequence[str] = ()
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("entity", self.name, IDENTIFIER)
        keys = tuple(self.join_keys) or (self.name,)
        for k in keys:
            check_name("join key", k, IDENTIFIER)
        object.__setattr__(self, "join_keys", keys)

    def spec(self) -> dict[str, Any]:
        return {"join_keys": list(self.join_keys), "description": self.description, "tags": dict(self.tags)}


# ---- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where a view's rows come from; ``timestamp_field`` is each row's event time."""

    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str | None = None  # breaks ties between rows of one key and event time
    kind: str = field(default="", init=False)

    def spec(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        out["kind"] = self.kind
        return out


@dataclass(frozen=True, kw_only=True)
class FileSource(DataSource):
    """A Parquet or CSV file, a folder of them, or a glob (``data/*.parquet``)."""

    path: str
    kind: str = field(default="file", init=False)

    def __post_init__(self) -> None:
        # Relative paths are anchored where the definition was made, so `apply` from another
        # folder (or the server) still finds the file.
        if "://" not in self.path:
            object.__setattr__(self, "path", str(Path(self.path).expanduser().resolve()))


@dataclass(frozen=True, kw_only=True)
class DatasetSource(DataSource):
    """A dataset version: ``datasets:/driver_stats/3`` or ``datasets:/driver_stats@prod``."""

    uri: str
    kind: str = field(default="dataset", init=False)


@dataclass(frozen=True, kw_only=True)
class SqlSource(DataSource):
    """A DuckDB SQL query, e.g. ``SELECT * FROM read_parquet('s/*.parquet') WHERE region='eu'``."""

    query: str
    kind: str = field(default="sql", init=False)


@dataclass(frozen=True, kw_only=True)
class PostgresSource(DataSource):
    """A PostgreSQL table (or query). ``uri`` defaults to ``LOOPLINE_FEATURES_POSTGRES_URI``."""

    table: str | None = None
    query: str | None = None
    uri: str | None = None
    kind: str = field(default="postgres", init=False)

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise InvalidInput("A PostgresSource needs exactly one of table= or query=.")


@dataclass(frozen=True, kw_only=True)
class PushSource(DataSource):
    """A stream pushed with ``FeatureStore.push(name, rows)``; history lives in ``batch_source``."""

    name: str
    batch_source: FileSource | DatasetSource | SqlSource | PostgresSource
    kind: str = field(default="push", init=False)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "batch_source": self.batch_source.spec()}


@dataclass(frozen=True)
class RequestSource:
    """Values that arrive with the request (or the entity frame) and feed on-demand views."""

    name: str
    schema: Sequence[Field]

    def spec(self) -> dict[str, Any]:
        return {"kind": "request", "name": self.name, "schema": [[f.name, f.dtype] for f in self.schema]}


Source: TypeAlias = FileSource | DatasetSource | SqlSource | PostgresSource | PushSource


def source_from_spec(spec: Mapping[str, Any]) -> Source:
    kinds: dict[str, Callable[..., Source]] = {
        "file": FileSource,
        "dataset": DatasetSource,
        "sql": SqlSource,
        "postgres": PostgresSource,
    }
    args = {k: v for k, v in spec.items() if k != "kind"}
    if spec["kind"] == "push":
        batch = source_from_spec(args["batch_source"])
        assert not isinstance(batch, PushSource)
        return PushSource(name=args["name"], batch_source=batch)
    return kinds[spec["kind"]](**args)


def source_uri(source: Source) -> str:
    """The source's node in the lineage graph."""
    if isinstance(source, PushSource):
        return source_uri(source.batch_source)
    if isinstance(source, FileSource):
        return source.path if "://" in source.path else f"file://{source.path}"
    if isinstance(source, DatasetSource):
        return source.uri
    if isinstance(source, PostgresSource):
        from sqlalchemy.engine import make_url

        where = make_url(source.uri).render_as_string(hide_password=True) if source.uri else "postgresql:"
        return f"{where}#{source.table or _digest(source.query or '')}"
    return f"duckdb:sql/{_digest(source.query)}"


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Some features of a view, as ``view[["a", "b"]]`` makes for a FeatureService."""

    view: str
    features: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FeatureView:
    """Features of ``entities`` read from ``source``, valid for ``ttl`` after their event time.

    ``ttl=None`` (or zero) means a value never expires. ``schema`` lists the feature columns; join
    keys listed there only declare the key's type. ``online=False`` keeps a view offline only.
    """

    name: str
    entities: Sequence[Entity | str]
    source: Source
    schema: Sequence[Field]
    ttl: timedelta | None = None
    online: bool = True
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    join_keys: tuple[str, ...] = ()  # filled from the entities (entity names need `resolve` first)

    def __post_init__(self) -> None:
        check_name("feature view", self.name, IDENTIFIER)
        keys: list[str] = list(self.join_keys)
        if not keys:
            for e in self.entities:
                keys.extend(e.join_keys if isinstance(e, Entity) else (e,))
        object.__setattr__(self, "join_keys", tuple(keys))
        object.__setattr__(self, "schema", tuple(f for f in self.schema if f.name not in keys))
        if not self.schema:
            raise InvalidInput(
                f"Feature view {self.name!r} declares no features.", hint="Give schema=[Field(...)]."
            )
        if self.ttl is not None and self.ttl.total_seconds() < 0:
            raise InvalidInput(f"Feature view {self.name!r} has a negative ttl.")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    @property
    def ttl_us(self) -> int | None:
        if self.ttl is None or self.ttl.total_seconds() == 0:
            return None
        return self.ttl // timedelta(microseconds=1)

    def __getitem__(self, names: Sequence[str]) -> Projection:
        names = [names] if isinstance(names, str) else list(names)
        for n in names:
            if n not in self.features:
                raise InvalidInput(
                    f"View {self.name!r} has no feature {n!r}.", hint=f"Features: {self.features}."
                )
        return Projection(self.name, tuple(names))

    def spec(self) -> dict[str, Any]:
        return {
            "entities": [e.name if isinstance(e, Entity) else e for e in self.entities],
            "join_keys": list(self.join_keys),
            "source": self.source.spec(),
            "schema": [[f.name, f.dtype] for f in self.schema],
            "ttl_seconds": self.ttl.total_seconds() if self.ttl is not None else None,
            "online": self.online,
            "description": self.description,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, kw_only=True)
class OnDemandFeatureView:
    """Features computed at request time from other views' features and request data.

    ``mode="pandas"``: ``udf(DataFrame) -> DataFrame``; ``mode="python"``: ``udf(dict of lists) ->
    dict of lists``. The same function runs in ``get_historical_features`` and
    ``get_online_features``, so training and serving cannot disagree.
    """

    name: str
    sources: Sequence[FeatureView | Projection | RequestSource]
    schema: Sequence[Field]
    udf: Callable[[Any], Any]
    mode: Literal["pandas", "python"] = "pandas"
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    udf_source: str = ""

    def __post_init__(self) -> None:
        check_name("on-demand feature view", self.name, IDENTIFIER)
        if self.mode not in ("pandas", "python"):
            raise InvalidInput(
                f"Unknown mode {self.mode!r} for {self.name!r}.", hint="Use 'pandas' or 'python'."
            )
        if not self.udf_source:
            object.__setattr__(self, "udf_source", function_source(self.udf))

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def inputs(self) -> list[tuple[str, tuple[str, ...]]]:
        """(view, features) each source view contributes."""
        out = []
        for s in self.sources:
            if isinstance(s, FeatureView):
                out.append((s.name, s.features))
            elif isinstance(s, Projection):
                out.append((s.view, s.features))
        return out

    def request_fields(self) -> list[Field]:
        return [f for s in self.sources if isinstance(s, RequestSource) for f in s.schema]

    def __getitem__(self, names: Sequence[str]) -> Projection:
        names = [names] if isinstance(names, str) else list(names)
        return Projection(self.name, tuple(names))

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": [[v, list(fs)] for v, fs in self.inputs()],
            "request": [[f.name, f.dtype] for f in self.request_fields()],
            "schema": [[f.name, f.dtype] for f in self.schema],
            "mode": self.mode,
            "udf": self.udf_source,
            "description": self.description,
            "tags": dict(self.tags),
        }


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | Projection | RequestSource],
    schema: Sequence[Field],
    mode: Literal["pandas", "python"] = "pandas",
    description: str = "",
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorator form of :class:`OnDemandFeatureView`; the function's name names the view."""

    def wrap(fn: Callable[[Any], Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name=fn.__name__, sources=sources, schema=schema, udf=fn, mode=mode, description=description
        )

    return wrap


@dataclass(frozen=True, kw_only=True)
class FeatureService:
    """A named set of features a model uses: views, projections or on-demand views."""

    name: str
    features: Sequence[FeatureView | OnDemandFeatureView | Projection]
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("feature service", self.name, IDENTIFIER)

    def refs(self) -> list[str]:
        out: list[str] = []
        for f in self.features:
            if isinstance(f, Projection):
                out.extend(f"{f.view}:{n}" for n in f.features)
            else:
                out.extend(f"{f.name}:{n}" for n in f.features)
        return out

    def spec(self) -> dict[str, Any]:
        return {"features": self.refs(), "description": self.description, "tags": dict(self.tags)}


Definition: TypeAlias = Entity | FeatureView | OnDemandFeatureView | FeatureService

KINDS: dict[type[Any], str] = {
    Entity: "entity",
    FeatureView: "feature_view",
    OnDemandFeatureView: "on_demand_feature_view",
    FeatureService: "feature_service",
}


def kind_of(obj: Definition) -> str:
    return KINDS[type(obj)]


def from_spec(kind: str, name: str, spec: Mapping[str, Any]) -> Definition:
    """Rebuild a definition from what the registry stored."""
    if kind == "entity":
        return Entity(name, spec["join_keys"], spec.get("description", ""), spec.get("tags", {}))
    if kind == "feature_view":
        ttl = spec.get("ttl_seconds")
        return FeatureView(
            name=name,
            entities=spec["entities"],
            join_keys=tuple(spec["join_keys"]),
            source=source_from_spec(spec["source"]),
            schema=[Field(n, t) for n, t in spec["schema"]],
            ttl=timedelta(seconds=ttl) if ttl is not None else None,
            online=spec.get("online", True),
            description=spec.get("description", ""),
            tags=spec.get("tags", {}),
        )
    if kind == "on_demand_feature_view":
        sources: list[Projection | RequestSource] = [Projection(v, tuple(fs)) for v, fs in spec["inputs"]]
        if spec["request"]:
            sources.append(RequestSource("request", [Field(n, t) for n, t in spec["request"]]))
        return OnDemandFeatureView(
            name=name,
            sources=sources,
            schema=[Field(n, t) for n, t in spec["schema"]],
            udf=LazyUdf(name, spec["udf"]),
            mode=spec["mode"],
            description=spec.get("description", ""),
            tags=spec.get("tags", {}),
            udf_source=spec["udf"],
        )
    if kind == "feature_service":
        by_view: dict[str, list[str]] = {}
        for ref in spec["features"]:
            view, _, feat = ref.partition(":")
            by_view.setdefault(view, []).append(feat)
        return FeatureService(
            name=name,
            features=[Projection(v, tuple(fs)) for v, fs in by_view.items()],
            description=spec.get("description", ""),
            tags=spec.get("tags", {}),
        )
    raise InvalidInput(f"Unknown definition kind {kind!r}.")


def function_source(fn: Callable[[Any], Any]) -> str:
    """The function's own source without its decorators: what is stored and run elsewhere."""
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise InvalidInput(
            f"Cannot read the source of {getattr(fn, '__name__', fn)!r}: {e}.",
            hint="Define on-demand functions in a .py file (not a lambda typed at a prompt).",
        ) from None
    tree = ast.parse(text)
    node = tree.body[0]
    if isinstance(node, ast.FunctionDef):
        node.decorator_list = []
        return ast.unparse(node)
    raise InvalidInput("An on-demand transformation must be a def function, not a lambda.")


class LazyUdf:
    """A stored on-demand function, compiled on first call (so loading the registry imports no pandas)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self._fn: Callable[[Any], Any] | None = None

    def __call__(self, data: Any) -> Any:
        if self._fn is None:
            self._fn = compile_udf(self.name, self.source)
        return self._fn(data)


def compile_udf(name: str, source: str) -> Callable[[Any], Any]:
    """Turn stored source back into the function (``pd``, ``np`` and ``math`` are in scope)."""
    import math

    import numpy as np

    namespace: dict[str, Any] = {"np": np, "math": math}
    try:
        import pandas as pd

        namespace["pd"] = pd
    except ImportError:  # pragma: no cover - python-mode functions need no pandas
        pass
    tree = ast.parse(source)
    fn_name = next(n.name for n in tree.body if isinstance(n, ast.FunctionDef))
    exec(compile(tree, f"<on-demand view {name}>", "exec"), namespace)  # stored by `apply`, like Feast's udf
    fn: Callable[[Any], Any] = namespace[fn_name]
    return fn
