from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from loopline.config import Settings, normalize_store_uri
from loopline.errors import InvalidInput
from loopline.uris import ObjectUri, parse


def test_settings_from_injected_environment() -> None:
    s = Settings.from_env(
        {
            "LOOPLINE_TRACKING_URI": "http://h:5000",
            "LOOPLINE_WORKSPACE": "team",
            "LOOPLINE_FLUSH_INTERVAL": "2",
        }
    )
    assert (s.tracking_uri, s.workspace, s.flush_interval, s.is_remote) == (
        "http://h:5000",
        "team",
        2.0,
        True,
    )


def test_mlflow_tracking_uri_is_honoured_and_loopline_wins() -> None:
    assert Settings.from_env({"MLFLOW_TRACKING_URI": "http://m"}).tracking_uri == "http://m"
    both = {"MLFLOW_TRACKING_URI": "http://m", "LOOPLINE_TRACKING_URI": "http://l"}
    assert Settings.from_env(both).tracking_uri == "http://l"
    assert Settings.from_env(both, tracking_uri="http://x").tracking_uri == "http://x"


@pytest.mark.parametrize(
    ("given_uri", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("./store", "sqlite:///store/loopline.db"),
        ("runs.db", "sqlite:///runs.db"),
        ("file:///tmp/x", "sqlite:////tmp/x/loopline.db"),
        ("sqlite:///a.db", "sqlite:///a.db"),
    ],
)
def test_store_uri_spellings(given_uri: str, expected: str) -> None:
    assert normalize_store_uri(given_uri) == expected


def test_parse_uris() -> None:
    assert parse("models:/churn@champion") == ObjectUri("models", "churn", alias="champion")
    assert parse("models:/churn/3") == ObjectUri("models", "churn", version="3")
    assert parse("runs:/abc/model/MLmodel") == ObjectUri("runs", "abc", path="model/MLmodel")
    assert parse("datasets:/customers/2/part-0.parquet").path == "part-0.parquet"
    for bad in ("nope:/x", "models:x", "models:/", "http://x"):
        with pytest.raises(InvalidInput):
            parse(bad)


_name = st.text(
    st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="-_."), min_size=1, max_size=10
)


@given(
    st.sampled_from(["models", "datasets", "pipelines"]), _name, st.one_of(st.none(), _name), st.booleans()
)
def test_named_uris_round_trip(scheme: str, name: str, tag: str | None, alias: bool) -> None:
    uri = ObjectUri(scheme, name, None if alias else tag, tag if alias else None)
    assert parse(str(uri)) == uri
