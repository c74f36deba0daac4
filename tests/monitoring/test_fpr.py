"""Each p-value test flags drift on 2-8% of no-drift samples at alpha = 0.05 (it should be 5%).

Evidently's default categorical chi-square treats the reference's proportions as exact and flags
53-90% of such samples; a two-sample test must not. Seeded, so the figures are reproducible; the
effect floor is off (min_effect=0) so that the p-value alone decides.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopline.monitoring import ReferenceProfile, drift

TRIALS = 400
CATS = np.array(["a", "b", "c", "d", "e"])
PROBS = [0.4, 0.3, 0.2, 0.08, 0.02]  # "e" is rare: pooled when its expected count is under 5


def _numeric(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table({"x": rng.normal(size=n)})


def _categorical(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table({"x": rng.choice(CATS, size=n, p=PROBS)})


@pytest.mark.parametrize(
    ("test", "make", "n_ref", "n_cur"),
    [
        ("ks", _numeric, 200, 150),  # exact p-values
        ("ks", _numeric, 12_000, 400),  # asymptotic p-values
        ("chisquare", _categorical, 300, 120),
        ("chisquare", _categorical, 5_000, 80),  # a large reference and a small window
        ("g_test", _categorical, 300, 120),
    ],
)
def test_false_positive_rate_is_near_alpha(test: str, make: object, n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng([n_ref, n_cur, len(test)])
    flagged = 0
    for _ in range(TRIALS):
        ref = ReferenceProfile.build(make(rng, n_ref))  # type: ignore[operator]
        report = drift(ref, make(rng, n_cur), tests={"x": test}, min_effect=0.0, workers=1)  # type: ignore[operator]
        col = report.columns["x"]
        assert col.test == test and col.p_value is not None
        flagged += col.drifted
    rate = flagged / TRIALS
    print(f"{test} {n_ref}x{n_cur}: {rate:.1%}")
    assert 0.02 <= rate <= 0.08, f"{test} flagged {rate:.1%} of no-drift samples"
