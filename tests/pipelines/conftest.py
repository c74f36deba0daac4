"""Fixtures for the pipeline tests: settings on a temporary store, user projects written to disk, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopline.config import Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: runs steps on a local Ray instance (quick; runs in CI)")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'loopline.db'}",
        artifacts_uri=str(tmp_path / "artifacts"),
        user="tester",
    )


@pytest.fixture
def any_settings(store_uri: str, tmp_path: Path) -> Settings:
    """Settings on SQLite and on PostgreSQL (the store contract runs on both)."""
    return Settings.from_env(
        {}, tracking_uri=store_uri, artifacts_uri=str(tmp_path / "artifacts"), user="tester"
    )


@pytest.fixture
def runner(settings: Settings) -> Iterator[Any]:
    from loopline.pipelines import Runner

    with Runner(settings) as r:
        yield r
