"""Traffic splitting, weighted and sticky, and what a deployment spec accepts."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from loopline.errors import InvalidInput
from loopline.serving.deployments import DeploymentSpec, Route, Router, Shadow


def test_ten_thousand_decisions_at_90_10_fall_within_statistical_bounds() -> None:
    router = Router([("v1", 90), ("v2", 10)], random.Random(1234))
    n = 10_000
    counts = Counter(router.choose() for _ in range(n))
    sd = math.sqrt(n * 0.1 * 0.9)  # binomial: 30
    assert abs(counts["v2"] - 1000) < 4 * sd, counts  # 4 sigma: fails by chance ~1 in 16,000 seeds
    assert counts["v1"] + counts["v2"] == n


@pytest.mark.parametrize("seed", range(5))
def test_the_split_holds_for_any_seed(seed: int) -> None:
    router = Router([("a", 1), ("b", 1), ("c", 2)], random.Random(seed))
    counts = Counter(router.choose() for _ in range(10_000))
    for name, p in (("a", 0.25), ("b", 0.25), ("c", 0.5)):
        assert abs(counts[name] - 10_000 * p) < 4 * math.sqrt(10_000 * p * (1 - p)), counts


def test_zero_weight_routes_get_nothing_and_sticky_keys_always_land_on_the_same_version() -> None:
    router = Router([("v1", 90), ("v2", 10), ("v3", 0)], random.Random(0))
    assert "v3" not in {router.choose() for _ in range(2000)}
    keys = [f"user-{i}" for i in range(2000)]
    first = [router.choose(k) for k in keys]
    assert first == [router.choose(k) for k in keys]
    share = Counter(first)["v2"] / len(keys)
    assert 0.07 < share < 0.13  # hashing spreads keys by weight too


def test_a_router_needs_positive_weight() -> None:
    with pytest.raises(InvalidInput):
        Router([("v1", 0)])


def test_a_deployment_spec_round_trips_and_is_checked() -> None:
    spec = DeploymentSpec(
        "churn-prod",
        (Route("models:/churn@champion", 90), Route("models:/churn/8", 10)),
        Shadow("models:/churn/9", 0.5),
        "x-user-id",
    )
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    assert spec.models == ("models:/churn@champion", "models:/churn/8", "models:/churn/9")
    for bad, message in (
        ({"routes": []}, "no routes"),
        ({"routes": [{"model": "models:/churn", "weight": 1}]}, "names no version or alias"),
        ({"routes": [{"model": "models:/churn/1", "weight": -1}]}, "'weight' must be"),
        ({"routes": [{"model": "models:/churn/1", "weight": float("inf")}]}, "'weight' must be"),
        ({"routes": [{"model": "models:/churn/1", "weight": "90"}]}, "'weight' must be"),
        ({"routes": [{"model": "models:/churn/1", "weight": 0}]}, "add up to 0"),
        ({"routes": [{"model": 3, "weight": 1}]}, "'model' must be"),
        (
            {
                "routes": [{"model": "models:/churn/1"}],
                "shadow": {"model": "models:/churn/2", "sample_rate": 2},
            },
            "sample_rate",
        ),
        ({"routes": [{"model": "models:/churn/1"}], "sticky_header": "x user"}, "header name"),
        ({"routes": [{"model": "models:/churn/1"}], "colour": "red"}, "Unknown deployment field"),
        ({"routes": [{"model": f"models:/churn/{i}"} for i in range(1, 70)]}, "at most 64"),
    ):
        with pytest.raises(InvalidInput, match=message):
            DeploymentSpec.from_dict({"name": "x", **bad})
    for name in ("../etc", "", "a" * 257, "-x"):
        with pytest.raises(InvalidInput, match="Invalid deployment name"):
            DeploymentSpec(name, (Route("models:/churn/1", 1),))
