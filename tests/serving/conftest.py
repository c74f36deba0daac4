"""Fixtures of the serving tests: a registry with three versions of ``churn``, shared per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serving.helpers import Registry, make_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield make_registry(tmp_path_factory.mktemp("registry"))
