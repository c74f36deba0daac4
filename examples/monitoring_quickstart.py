"""Monitoring in one minute: a drift check, an HTML report, then a monitor over an inference log.

Run it in an empty folder: ``python monitoring_quickstart.py``. It stores everything under
./.loopline (the embedded default) and writes drift_report.html beside it.

1. ``drift(reference, current)`` on two small frames: which columns moved, which test said so, why.
2. A monitor on a deployment: the inference server's log is simulated here by writing requests and
   their ground truth with the same writer ``loopline serve`` uses; each ``run`` reads only new rows.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from loopline.monitoring import ReferenceProfile, drift, render_html
from loopline.monitoring.monitors import Monitors
from loopline.serving.deployments import set_deployment
from loopline.serving.inference_log import Feedback, InferenceLog, Prediction

rng = np.random.default_rng(0)
N = 2_000


def customers(
    n: int, age_shift: float = 0.0, plans: tuple[float, float, float] = (0.6, 0.3, 0.1)
) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=list(plans)),
        }
    )
    df["churned"] = (df.age < 35).astype(int)
    return df


# ---- 1. a one-off drift check ------------------------------------------------------------------
train = customers(N)
train.to_parquet("train.parquet")
today = customers(N, age_shift=6, plans=(0.4, 0.3, 0.3))
report = drift(train, today, target="churned", categorical=["churned"])
for name, col in report.columns.items():
    verdict = "DRIFTED" if col.drifted else "ok"
    print(f"{name:8} {col.test:10} statistic={col.statistic:.4g} p={col.p_value} -> {verdict}")
print(f"dataset drift: {report.dataset_drift} ({report.drift_share:.0%} of columns)")
print("why age got KS:", report.columns["age"].reason)
render_html(report, "drift_report.html")
print("wrote drift_report.html")

profile = ReferenceProfile.build(train, categorical=["churned"])  # summarise the reference once, reuse it
again = drift(profile, today, target="churned", categorical=["churned"])
print("same verdicts from the stored profile:", again.drifted_columns == report.drifted_columns)

# ---- 2. a monitor over a deployment's inference log -------------------------------------------
mons = Monitors()  # the stores of ./.loopline
set_deployment("churn-prod", "models:/churn/1")  # what `loopline deploy set` declares
mons.create(
    "churn",
    deployment="churn-prod",
    reference="train.parquet",  # default: the model's training dataset, found through lineage
    window="1000rows",
    target="churned",
    categorical=["churned"],
    thresholds={"accuracy": 0.9},
    replace=True,
)


def serve(frame: pd.DataFrame, start: int, label_noise: float) -> None:
    """What `loopline serve` logs for each request, and what POST /feedback adds later."""
    log = InferenceLog(mons.artifacts, flush_interval=3600)
    now = int(time.time() * 1000)
    for i, row in enumerate(frame.itertuples()):
        rid = f"req-{start + i}"
        inputs = {"columns": ["age", "income", "plan"], "data": [[row.age, row.income, row.plan]]}
        prediction = int(row.age < 35)
        log.log_prediction(
            Prediction(rid, now, "churn-prod", "churn", "1", "primary", 1, inputs, [prediction], 2.0, 200)
        )
        truth = prediction if rng.random() > label_noise else 1 - prediction
        log.log_feedback(Feedback(rid, now, truth))
    log.flush()


serve(customers(400), start=0, label_noise=0.02)
first = mons.run("churn")
m = first.metrics
print(f"run 1: {first.run.status}, {first.run.new_rows} new rows, drift share {m['drift_share']:.2f}, "
      f"accuracy {m['performance.accuracy']:.2f}")  # fmt: skip

serve(customers(600, age_shift=12, plans=(0.2, 0.3, 0.5)), start=10_000, label_noise=0.3)
second = mons.run("churn")
drifted = second.report.drifted_columns if second.report else []
print(f"run 2: {second.run.status}, {second.run.new_rows} new rows, drifted {drifted}, "
      f"accuracy {second.metrics['performance.accuracy']:.2f}")  # fmt: skip
print("alerts:", [a["event"] for a in second.alerts])
for t, key, value in mons.history("churn", ["drift_share"]):
    print(f"history {key} @ {t}: {value:.2f}")
