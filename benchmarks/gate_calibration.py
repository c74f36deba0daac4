"""The gate's calibration: how often a candidate is promoted, as a function of its true ROC AUC
difference from the champion, under the rule "AUC not worse by more than 0.005, judged by the 95 %
one-sided bound of a paired bootstrap" (``loopline.automation.bootstrap``).

Each trial draws a fresh held-out sample (seeded) from a binormal population: negatives score
N(0, 1), positives N(mu, 1), so a model's AUC is exactly Phi(mu / sqrt 2); the champion has
mu = 1.5 (AUC 0.856), the candidate's mu gives the true difference of the row, and its noise is
correlated (rho = 0.8) with the champion's, as two models scored on the same rows are. A trial
promotes when the bound is no worse than -0.005.

- At the margin (true difference = -0.005, the allowed loss) the promotion rate is the test's false
  promotion rate: it should be alpha = 0.05 within binomial error (goal: under alpha + 3 standard
  errors). Below the margin it should fall towards 0, above it rise towards 1 (the power). The
  percentile bound is a little liberal on small held-out sets: on 1,500 rows (450 positives) about
  0.065 of margin candidates pass (measured: 0.0675 of 1,200), on 3,000 rows 0.048 (of 1,000).
- One speed row: 1,000 resamples of 10,000 rows, this bootstrap against ``scipy.stats.bootstrap``
  (paired, percentile, vectorised, with a rank-based AUC), both warm in this process; the note
  says how far apart their bounds are, in bootstrap standard errors.

Statistics, not a race between processes: everything runs in this process (no workers).
Run alone: ``python -m benchmarks.gate_calibration [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks._harness import Options, Report, Row, log, module_main

NAME = "gate_calibration"
TITLE = "Gate calibration: promotion rate of a paired-bootstrap AUC gate (max loss 0.005, 95 %) by true ΔAUC"
WORKLOADS = ("promotion_curve", "bootstrap_speed")
WORKERS: dict[str, Any] = {}
MAX_LOSS, ALPHA, MU_CHAMPION, RHO, PREVALENCE = 0.005, 0.05, 1.5, 0.8, 0.3
DELTAS = (-0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02)


def binormal(rng: Any, trials: int, n: int, delta: float) -> tuple[Any, Any, Any]:
    """Labels, candidate and champion scores of ``trials`` samples of ``n`` rows each."""
    import numpy as np
    from scipy import stats

    mu = np.sqrt(2) * stats.norm.ppf(stats.norm.cdf(MU_CHAMPION / np.sqrt(2)) + delta)
    y = rng.random((trials, n)) < PREVALENCE
    z, e = rng.normal(size=(trials, n)), rng.normal(size=(trials, n))
    return y.astype(int), mu * y + RHO * z + np.sqrt(1 - RHO**2) * e, MU_CHAMPION * y + z


def promotion_rate(delta: float, trials: int, n: int, resamples: int, seed: int) -> float:
    import numpy as np

    from loopline.automation.bootstrap import non_inferior, paired_bootstrap

    promoted = 0
    rng = np.random.default_rng(seed)
    for start in range(0, trials, 100):  # 100 samples' data at a time
        y, cand, champ = binormal(rng, min(100, trials - start), n, delta)
        for i in range(len(y)):
            iv = paired_bootstrap("roc_auc", y[i], cand[i], champ[i], resamples=resamples, seed=start + i)
            promoted += non_inferior(iv, MAX_LOSS)
    return promoted / trials


def _auc_rows(y: Any, score: Any, axis: int = -1) -> Any:
    from scipy import stats

    ranks = stats.rankdata(score, axis=axis)
    pos = y.sum(axis=axis)
    return ((ranks * y).sum(axis=axis) - pos * (pos + 1) / 2) / (pos * (y.shape[axis] - pos))


def speed(n: int, resamples: int) -> tuple[float, float, float]:
    """(scipy seconds, loopline seconds, |bound difference| in standard errors), both warm."""
    import numpy as np
    from scipy import stats

    from loopline.automation.bootstrap import paired_bootstrap

    y, cand, champ = (a[0] for a in binormal(np.random.default_rng(5), 1, n, 0.0))

    def scipy_bound(k: int) -> Any:
        return stats.bootstrap(
            (y, cand, champ),
            lambda y, a, b, axis=-1: _auc_rows(y, a, axis) - _auc_rows(y, b, axis),
            paired=True,
            vectorized=True,
            method="percentile",
            alternative="greater",
            n_resamples=k,
            batch=100,
            rng=np.random.default_rng(6),
        )

    scipy_bound(50), paired_bootstrap("roc_auc", y, cand, champ, resamples=50)  # warm
    t0 = time.perf_counter()
    ref = scipy_bound(resamples)
    t1 = time.perf_counter()
    ours = paired_bootstrap("roc_auc", y, cand, champ, resamples=resamples)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, abs(ours.bound - ref.confidence_interval.low) / ref.standard_error


def run(opts: Options) -> Report:
    import math

    report = Report(NAME, TITLE, peer_name="scipy.stats.bootstrap")
    n, resamples = 1500, 500
    margin_trials, other_trials = (300, 50) if opts.quick else (1200, 100)
    report.meta |= {"rows_per_trial": n, "resamples": resamples, "rho": RHO, "prevalence": PREVALENCE}
    if opts.wants("promotion_curve"):
        for k, delta in enumerate(DELTAS):
            trials = margin_trials if delta == -MAX_LOSS else other_trials
            log(f"{NAME}: true ΔAUC {delta:+.3f}, {trials} trials")
            rate = promotion_rate(delta, trials, n, resamples, seed=100 + k)
            se = math.sqrt(max(rate * (1 - rate), ALPHA * (1 - ALPHA)) / trials)
            at_margin = delta == -MAX_LOSS
            limit = round(ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / trials), 3)  # binomial, 3 s.e.
            report.rows.append(
                Row(
                    "promotion_curve",
                    f"promoted, true ΔAUC {delta:+.3f}" + (" (the margin)" if at_margin else ""),
                    "rate",
                    None,
                    rate,
                    higher_is_better=delta > -MAX_LOSS,
                    goal_abs=("<", limit) if at_margin else None,
                    note=f"{trials} trials of {n:,} rows, {resamples} resamples; ±{se:.3f} (1 s.e.)"
                    + (f"; nominal alpha {ALPHA}" if at_margin else ""),
                )
            )
    if opts.wants("bootstrap_speed"):
        rows, k = 10_000, 1000
        log(f"{NAME}: {k} resamples of {rows:,} rows, scipy vs loopline")
        peer, ours, apart = speed(rows, k)
        report.rows.append(
            Row(
                "bootstrap_speed",
                f"paired bootstrap of ΔAUC, {k:,} resamples x {rows:,} rows",
                "s",
                peer,
                ours,
                higher_is_better=False,
                goal_abs=("<", 1.0),
                note=f"bounds {apart:.2f} bootstrap s.e. apart (Monte Carlo)",
            )
        )
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
