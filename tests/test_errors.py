"""The Python API's side of the error boundary: bad arguments raise Loopline's own types, with the
dependency's exception chained, and the dependencies' exceptions translate to the type they mean."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loopline.config import Settings
from loopline.errors import (
    BackendUnavailable,
    InvalidInput,
    LooplineError,
    NotFound,
    translate,
)
from loopline.tracking import Client

PG_MISSING = "postgresql://postgres@127.0.0.1:5432/loopline_no_such_db"
PG_DOWN = "postgresql://postgres@127.0.0.1:1/loopline"


def settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "tracking_uri": f"sqlite:///{tmp_path / 'store' / 'loopline.db'}",
        "artifacts_uri": str(tmp_path / "art"),
    }
    return Settings.from_env({}, **(base | overrides))


def test_a_database_that_does_not_exist_or_does_not_answer(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match='database "loopline_no_such_db" does not exist') as missing:
        Client(settings(tmp_path, tracking_uri=PG_MISSING)).search_experiments()
    assert type(missing.value.__cause__).__name__ == "OperationalError"  # the original, chained
    assert missing.value.exit_code == 2 and "CREATE DATABASE" in missing.value.hint
    with pytest.raises(BackendUnavailable, match="could not be reached") as down:
        Client(settings(tmp_path, tracking_uri=PG_DOWN)).search_experiments()
    assert down.value.exit_code == 3


def test_a_store_that_must_exist_is_never_created(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'nope' / 'deeper' / 'x.db'}"
    with pytest.raises(NotFound, match="No Loopline store at"):
        Client(settings(tmp_path, tracking_uri=uri, create_store=False)).search_experiments()
    assert not (tmp_path / "nope").exists()
    Client(settings(tmp_path)).create_experiment("made")  # a write makes the store…
    near = str(tmp_path / "stor")  # …and a typo of it is answered with its path
    with pytest.raises(NotFound) as typo:
        Client(settings(tmp_path, tracking_uri=near, create_store=False)).search_experiments()
    assert str(tmp_path / "store" / "loopline.db") in typo.value.hint
    assert not (tmp_path / "stor").exists()


def test_validation_refuses_an_empty_suite_and_unparsable_sql() -> None:
    from loopline.data.validation import Suite, validate

    with pytest.raises(InvalidInput, match="has no expectations"):
        validate(pd.DataFrame({"a": [1, 2]}), Suite("empty"))
    with pytest.raises(InvalidInput, match="'a >>> 1' is not a SQL expression"):
        Suite.from_dict({"name": "s", "expectations": [{"expect": "custom", "name": "x", "sql": "a >>> 1"}]})


def test_monitors_and_deployments_check_what_they_name(tmp_path: Path) -> None:
    from loopline.monitoring.monitors import Monitors, check_thresholds
    from loopline.serving.deployments import set_deployment

    s = settings(tmp_path)
    monitors = Monitors(s)
    with pytest.raises(NotFound, match="No deployment named 'nope'"):
        monitors.create("m", deployment="nope")
    with pytest.raises(NotFound, match="name=nope not found"):
        monitors.create("m", model="models:/nope@champion")
    with pytest.raises(InvalidInput, match="Unknown threshold 'acuracy'") as typo:
        monitors.create("m", deployment="nope", thresholds={"acuracy": 0.8})
    assert "Did you mean 'accuracy'" in typo.value.hint
    with pytest.raises(InvalidInput, match="Unknown drift test"):
        monitors.create("m", deployment="nope", tests={"a": "nope"})
    check_thresholds({"accuracy": 0.8, "income": 0.2})  # a column key, no reference to check it against
    with pytest.raises(InvalidInput, match="Unknown threshold 'income'"):
        check_thresholds({"income": 0.2}, columns={"age"})
    assert monitors.list_monitors() == []
    with pytest.raises(LooplineError, match="models:/nope@x") as bad:
        set_deployment("bad", [("models:/nope@x", 10)], client=Client(s))
    assert bad.value.exit_code == 2


def test_unknown_references_are_not_found(tmp_path: Path) -> None:
    from loopline.data import DataClient

    data = DataClient(settings(tmp_path))
    with pytest.raises(NotFound, match="No dataset named 'x'"):
        data.get_version("datasets:/x/999")


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except BaseException as e:  # the dependency's own exception, whatever its type
        return e
    raise AssertionError("no exception")


def test_dependency_errors_translate_to_the_type_they_mean(tmp_path: Path) -> None:
    import botocore.exceptions as boto
    import httpx
    import polars as pl
    import yaml

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "good.parquet")
    (tmp_path / "trunc.parquet").write_bytes((tmp_path / "good.parquet").read_bytes()[:50])
    cases: list[tuple[BaseException, type[LooplineError], str]] = [
        (_raised(lambda: pd.read_csv(ragged)), InvalidInput, "Expected 2 fields"),
        (_raised(lambda: pd.read_parquet(tmp_path / "trunc.parquet")), InvalidInput, "Parquet"),
        (_raised(lambda: pl.sql_expr("a >>> 1")), InvalidInput, "a >>> 1"),
        (_raised(lambda: yaml.safe_load("a: [1, 2")), InvalidInput, "Cannot read the input"),
        (boto.NoCredentialsError(), InvalidInput, "No credentials"),
        (boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), BackendUnavailable, "127.0.0.1:1"),
        (_raised(lambda: httpx.get("http://127.0.0.1:1", timeout=2)), BackendUnavailable, "server"),
        (OSError(errno.EADDRINUSE, "Address already in use"), InvalidInput, "already in use"),
        (_raised(lambda: (tmp_path / "missing.txt").read_text()), NotFound, "missing.txt"),
    ]
    for exc, kind, says in cases:
        found = translate(exc)
        assert isinstance(found, kind), (exc, found)
        assert says in found.message, (says, found.message)
    assert translate(ValueError("a bug, not a dependency's error")) is None
    mine = NotFound("x")
    assert translate(mine) is mine
