"""The one naming rule of Loopline's own objects (loopline/names.py), and that each kind uses it."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import loopline
from loopline.errors import InvalidInput
from loopline.names import IDENTIFIER, check_alias, check_name

GOOD = ["customers", "a", "_tmp", "v2.1-final", "3d_scans", "x" * 256]
BAD = ["", "-rf", ".", "..", ".hidden", "a b", "x/y", "a:b", "café", "x" * 257, "a\n", None, 3]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass_unchanged(name: str) -> None:
    assert check_name("dataset", name) == name


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_naming_the_kind_and_the_rule(name: object) -> None:
    with pytest.raises(InvalidInput) as e:
        check_name("monitor", name)
    assert "monitor name" in e.value.message
    assert "letters, digits" in (e.value.hint or "")


@given(st.text(alphabet=string.ascii_letters + string.digits + "_-./ é", max_size=300))
def test_the_rule_is_exactly_the_documented_one(name: str) -> None:
    documented = (
        0 < len(name) <= 256
        and (name[0].isascii() and (name[0].isalnum() or name[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c in "_-.") for c in name)
    )
    try:
        check_name("dataset", name)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == documented


@pytest.mark.parametrize("alias", ["3", "v3", "V12", "latest", "LATEST"])
def test_an_alias_cannot_read_as_a_version(alias: str) -> None:
    with pytest.raises(InvalidInput, match="reads as a version"):
        check_alias("dataset", alias)


def test_an_alias_is_otherwise_a_name() -> None:
    assert check_alias("dataset", "prod") == "prod"
    assert check_alias("dataset", "v3-candidate") == "v3-candidate"
    with pytest.raises(InvalidInput, match="dataset alias name"):
        check_alias("dataset", "-x")


def test_feature_definitions_are_identifiers() -> None:
    assert check_name("feature view", "driver_stats", IDENTIFIER) == "driver_stats"
    for bad in ("driver-stats", "1x", "a.b", "x" * 129):
        with pytest.raises(InvalidInput, match="column name"):
            check_name("feature view", bad, IDENTIFIER)


def _add_schedule(settings: loopline.Settings, name: str) -> None:
    from loopline.context import Context
    from loopline.pipelines.store import open_pipeline_store
    from loopline.pipelines.types import ScheduleRecord

    record = ScheduleRecord(name, "mod:fn", "* * * * *", {}, "local", True, 0)
    open_pipeline_store(Context(settings)).add_schedule(record)


def test_every_kind_of_loopline_object_checks_its_name_here(tmp_path: Path) -> None:
    """Each store or definition refuses a bad name with this module's message."""
    from loopline.data.client import DataClient
    from loopline.features.definitions import Entity
    from loopline.monitoring.definition import check_definition
    from loopline.pipelines.pipeline import Pipeline

    settings = loopline.Settings(
        tracking_uri=f"sqlite:///{tmp_path / 'db'}", artifacts_uri=str(tmp_path / "a")
    )
    (tmp_path / "f.txt").write_text("x")
    attempts = {
        "dataset": lambda: DataClient(settings).add(tmp_path / "f.txt", "-bad"),
        "entity": lambda: Entity("bad-name", join_keys=["id"]),
        "monitor": lambda: check_definition("..", "models:/m/1", "", "1h", "", {}),
        "pipeline": lambda: Pipeline(lambda: None, name="a b"),
        "schedule": lambda: _add_schedule(settings, "../../etc/cron"),
    }
    for kind, attempt in attempts.items():
        with pytest.raises(InvalidInput, match=re.escape(f"{kind} name")):
            attempt()
