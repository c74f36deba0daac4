"""Loopline's demo: a small, real experiment, tracked end to end on the embedded default (./.loopline).

    make demo                 # or: .venv/bin/python examples/demo.py

Six scikit-learn models learn to tell malignant from benign tumours (scikit-learn's breast-cancer
data set, shipped with the library: nothing is downloaded). The training data is versioned and
validated first (a suite inferred from its own profile). Every run records its parameters, a
learning curve (validation metrics per epoch, tree or boosting stage), the dataset version it read,
and three artifacts: the confusion matrix, the classification report and the feature importances.
The runs are searched back, best first; the best model is registered as the champion; then
``loopline serve`` serves it a batch of "production" data that has drifted, the ground truth comes
back for each request, and a monitor on the champion compares the logged traffic with the
champion's training data (found through lineage) and measures its accuracy, with an HTML report.
The demo ends by printing where to look.

Each step is one function; ``main`` calls them in order. Running it again adds a new session of
runs next to the old ones.
"""

from __future__ import annotations

import functools
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.base import ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import loopline
from loopline.data import infer_suite, profile_table, validate
from loopline.data.types import DatasetVersion
from loopline.tracking.types import Run

EXPERIMENT = "breast-cancer"
SEED = 0
# Best first: highest validation accuracy, ties broken by the lower validation log loss.
ORDER_BY = ["metrics.val_accuracy DESC", "metrics.val_log_loss ASC"]


# ---- step 1: data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """A stratified 75/25 split, standardised on the training part."""

    X_train: np.ndarray
    X_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    features: list[str]
    classes: list[str]

    def frame(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(X, columns=self.features)


def load_data() -> Data:
    raw = load_breast_cancer()
    X_train, X_val, y_train, y_val = train_test_split(
        raw.data, raw.target, test_size=0.25, stratify=raw.target, random_state=SEED
    )
    scaler = StandardScaler().fit(X_train)
    return Data(
        scaler.transform(X_train),
        scaler.transform(X_val),
        y_train,
        y_val,
        [str(f).replace(" ", "_") for f in raw.feature_names],
        list(raw.target_names),
    )


TRAIN_DATA = "breast-cancer-train"


def version_and_validate(d: Data, console: Console) -> DatasetVersion:
    """The training data becomes a dataset version (a no-op when it is unchanged), checked against
    a suite inferred from its own profile: the suite a later batch will have to pass."""
    train = d.frame(d.X_train).assign(label=d.y_train)
    version = loopline.log_dataset(train, name=TRAIN_DATA, description="standardised training split")
    suite = infer_suite(profile_table(train), name="breast-cancer")
    result = validate(version.uri, suite)
    loopline.data.record_validation(version.uri, result.to_dict())
    stats = result.statistics()
    console.print(
        f"Versioned the training data as [bold]{version.uri}[/] ({version.num_rows} rows, digest "
        f"{version.digest[:12]}); validated: {stats['successful']} of "
        f"{stats['evaluated']} expectations hold."
    )
    return version


# ---- step 2: models that report progress -------------------------------------------------------
# A trainer yields after every epoch (or tree, or boosting stage): the model so far, its training
# loss if it reports one, and its predicted probability of class 1 on the validation set.

Step = tuple[ClassifierMixin, float | None, np.ndarray]
Trainer = Callable[[dict[str, Any], Data], Iterator[Step]]


def sgd_logistic(p: dict[str, Any], d: Data) -> Iterator[Step]:
    """Logistic regression by stochastic gradient descent, one pass over the data per epoch."""
    model = SGDClassifier(loss="log_loss", alpha=p["alpha"], random_state=SEED)
    for _ in range(p["epochs"]):
        model.partial_fit(d.X_train, d.y_train, classes=[0, 1])
        train_loss = log_loss(d.y_train, model.predict_proba(d.X_train))
        yield model, train_loss, model.predict_proba(d.X_val)[:, 1]


def mlp(p: dict[str, Any], d: Data) -> Iterator[Step]:
    """A one-hidden-layer network trained with Adam, one epoch per ``partial_fit``."""
    model = MLPClassifier(
        hidden_layer_sizes=(p["hidden"],), learning_rate_init=p["learning_rate"], random_state=SEED
    )
    for _ in range(p["epochs"]):
        model.partial_fit(d.X_train, d.y_train, classes=[0, 1])
        yield model, model.loss_, model.predict_proba(d.X_val)[:, 1]


def random_forest(p: dict[str, Any], d: Data) -> Iterator[Step]:
    """A forest grown ``step`` trees at a time (warm start keeps the trees already grown)."""
    model = RandomForestClassifier(
        n_estimators=0, max_depth=p["max_depth"], warm_start=True, random_state=SEED, n_jobs=1
    )
    for n in range(p["step"], p["n_estimators"] + 1, p["step"]):
        model.set_params(n_estimators=n).fit(d.X_train, d.y_train)
        yield model, None, model.predict_proba(d.X_val)[:, 1]


def gradient_boosting(p: dict[str, Any], d: Data) -> Iterator[Step]:
    """Boosted trees, fitted once and evaluated after every stage."""
    model = GradientBoostingClassifier(
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        max_depth=p["max_depth"],
        random_state=SEED,
    ).fit(d.X_train, d.y_train)
    for stage, proba in enumerate(model.staged_predict_proba(d.X_val)):
        yield model, float(model.train_score_[stage]), proba[:, 1]


@dataclass(frozen=True)
class Candidate:
    name: str
    family: str
    train: Trainer
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """How many times the trainer yields (the length of the progress bar)."""
        p = self.params
        return int(p["epochs"]) if "epochs" in p else int(p["n_estimators"] // p.get("step", 1))


CANDIDATES = [
    Candidate("logreg-alpha-0.0001", "sgd-logreg", sgd_logistic, {"alpha": 0.0001, "epochs": 30}),
    Candidate("logreg-alpha-0.01", "sgd-logreg", sgd_logistic, {"alpha": 0.01, "epochs": 30}),
    Candidate("logreg-alpha-0.3", "sgd-logreg", sgd_logistic, {"alpha": 0.3, "epochs": 30}),
    Candidate("mlp-32", "mlp", mlp, {"hidden": 32, "learning_rate": 0.001, "epochs": 60}),
    Candidate(
        "forest-100", "random-forest", random_forest, {"max_depth": 6, "n_estimators": 100, "step": 10}
    ),
    Candidate(
        "boosting-150",
        "gradient-boosting",
        gradient_boosting,
        {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 2},
    ),
]


# ---- step 3: train and track -------------------------------------------------------------------


def val_metrics(d: Data, proba: np.ndarray) -> dict[str, float]:
    return {
        "val_accuracy": float(accuracy_score(d.y_val, proba >= 0.5)),
        "val_log_loss": float(log_loss(d.y_val, proba, labels=[0, 1])),
        "val_roc_auc": float(roc_auc_score(d.y_val, proba)),
    }


def write_reports(model: ClassifierMixin, d: Data, proba: np.ndarray, folder: Path) -> None:
    """The run's artifacts: confusion matrix, classification report, feature importances."""
    predicted = (proba >= 0.5).astype(int)
    cm = confusion_matrix(d.y_val, predicted)
    pd.DataFrame(cm, index=[f"true_{c}" for c in d.classes], columns=[f"pred_{c}" for c in d.classes]).to_csv(
        folder / "confusion_matrix.csv"
    )
    (folder / "classification_report.txt").write_text(
        classification_report(d.y_val, predicted, target_names=d.classes, digits=3)
    )
    # Permutation importance works the same for every model: how much the validation ROC AUC drops
    # when one feature's values are shuffled.
    imp = permutation_importance(
        model, d.X_val, d.y_val, scoring="roc_auc", n_repeats=3, random_state=SEED, n_jobs=1
    )
    pd.DataFrame(
        {"feature": d.features, "importance": imp.importances_mean, "std": imp.importances_std}
    ).sort_values("importance", ascending=False).to_csv(folder / "feature_importances.csv", index=False)


def train_one(c: Candidate, d: Data, data_uri: str, session: str, on_step: Callable[[], None]) -> None:
    """Train one candidate inside a run: params, dataset, a metric per step, then the artifacts."""
    with loopline.start_run(
        experiment=EXPERIMENT,
        run_name=c.name,
        tags={"model_family": c.family, "demo_session": session},
    ):
        loopline.log_params({"model": c.family, **c.params, "seed": SEED, "n_train": len(d.y_train)})
        loopline.log_dataset(data_uri, context="training")  # the run's input: an edge in the lineage graph

        started = time.perf_counter()
        last: Step | None = None
        for step, last in enumerate(c.train(c.params, d)):
            _, train_loss, proba = last
            metrics = val_metrics(d, proba)
            if train_loss is not None:
                metrics["train_loss"] = train_loss
            loopline.log_metrics(metrics, step=step)  # buffered, written in the background
            on_step()
        assert last is not None
        model, _, proba = last  # the fully trained model and its validation predictions
        loopline.log_metrics(
            {
                "fit_seconds": time.perf_counter() - started,
                "val_f1": float(f1_score(d.y_val, proba >= 0.5)),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            write_reports(model, d, proba, Path(tmp))
            loopline.log_artifacts(tmp)
        # The model itself: MLflow's layout, a signature from an input example, a digest per file.
        example = pd.DataFrame(d.X_val[:5], columns=d.features)
        info = loopline.log_model(model, "model", input_example=example)
        loopline.set_tag("model_id", info.model_id)


def train_all(d: Data, data_uri: str, session: str, console: Console) -> None:
    columns = (
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for c in CANDIDATES:
            task = progress.add_task(c.name, total=c.steps)
            train_one(c, d, data_uri, session, functools.partial(progress.advance, task))


# ---- step 4: compare -----------------------------------------------------------------------------


def sparkline(values: list[float], width: int = 14) -> str:
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    n = min(width, len(values))  # evenly spaced points, first and last included
    picked = [values[round(i * (len(values) - 1) / max(n - 1, 1))] for i in range(n)]
    return "".join(bars[int((v - lo) / span * (len(bars) - 1))] for v in picked)


def compare(session: str, console: Console) -> list[Run]:
    """Search this session's runs back, best first, and print them side by side."""
    runs = loopline.search_runs([EXPERIMENT], f"tags.demo_session = '{session}'", order_by=ORDER_BY)
    table = Table(
        title=f"Experiment '{EXPERIMENT}', session {session}, best first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("#", justify="right")
    table.add_column("run", no_wrap=True)
    for name in ("acc", "AUC", "F1", "loss"):  # validation accuracy, ROC AUC, F1 and log loss
        table.add_column(name, justify="right")
    table.add_column("learning curve", no_wrap=True)  # validation log loss, step by step
    table.add_column("run ID", style="dim", no_wrap=True)
    for rank, r in enumerate(runs, 1):
        m = r.data.metrics
        curve = [p.value for p in loopline.get_metric_history(r.info.run_id, "val_log_loss")]
        table.add_row(
            str(rank),
            r.info.run_name,
            f"{m['val_accuracy']:.3f}",
            f"{m['val_roc_auc']:.3f}",
            f"{m['val_f1']:.3f}",
            f"{m['val_log_loss']:.3f}",
            sparkline(curve),
            r.info.run_id[:8],
            style="bold green" if rank == 1 else None,
        )
    console.print(table)
    return runs


# ---- step 5: register the best model, alias it champion, load it back -----------------------


MODEL_NAME = "breast-cancer"


def register_best(runs: list[Run], d: Data, console: Console) -> int:
    """The best run's model becomes the next version of MODEL_NAME and the champion."""
    best = runs[0]
    registry = loopline.RegistryClient()
    logged = registry.store.get_logged_model(best.data.tags["model_id"])
    version = registry.register(
        logged.artifact_location, MODEL_NAME, run_id=best.info.run_id, model_id=logged.model_id
    ).version
    registry.set_alias(MODEL_NAME, "champion", version)
    champion = loopline.load_model(f"models:/{MODEL_NAME}@champion")  # files checked against digests
    X_val = pd.DataFrame(d.X_val, columns=d.features)
    accuracy = float(np.mean(np.asarray(champion.predict(X_val)) == d.y_val))
    console.print(
        f"Registered [bold]{best.info.run_name}[/] as [bold]models:/{MODEL_NAME}/{version}[/] "
        f"(alias champion); loaded back and verified, validation accuracy {accuracy:.3f}."
    )
    return version


# ---- step 6: serve the champion; production data drifts; its monitor notices ----------------------


def drifted(d: Data, X: np.ndarray) -> pd.DataFrame:
    """Rows in which three measurements shifted (a new scanner, say)."""
    rng = np.random.default_rng(SEED)
    batch = d.frame(X).copy()
    for column in d.features[:3]:
        batch[column] = batch[column] * 1.3 + 0.8 + rng.normal(0, 0.1, len(batch))
    return batch


def drifted_batch(d: Data) -> pd.DataFrame:
    """Later traffic: the validation rows, drifted."""
    return drifted(d, d.X_val)


def serve_traffic(batch: pd.DataFrame, truth: np.ndarray) -> tuple[int, float]:
    """``loopline serve`` the champion on a free port, send ``batch`` in requests of 10 rows, then post
    the ground truth for each request as it would arrive later. Returns (rows served, p50 ms)."""
    from closed_loop.demo_loop import serving

    log = Path(loopline.get_tracking_uri().removeprefix("sqlite:///")).parent / "logs" / "serve.log"
    latencies: list[float] = []
    with (
        serving(log, f"models:/{MODEL_NAME}@champion") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        for start in range(0, len(batch), 10):
            rows = batch.iloc[start : start + 10]
            body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
            t0 = time.perf_counter()
            r = http.post("/invocations", json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            feedback = {
                "request_id": r.headers["x-request-id"],
                "ground_truth": truth[start : start + 10].tolist(),
            }
            http.post("/api/2.0/loopline/feedback", json=feedback).raise_for_status()
    return len(batch), float(np.median(latencies))


def serve_and_monitor(d: Data, console: Console) -> Path:
    """The champion serves a drifted batch; a monitor on models:/…@champion compares the logged
    requests with the champion's own training data (found through lineage) and its accuracy on the
    requests whose ground truth came back; the report is one self-contained HTML file."""
    from loopline.monitoring.html import render_html
    from loopline.monitoring.monitors import Monitors

    rows, p50 = serve_traffic(drifted_batch(d), d.y_val)
    monitors = Monitors()
    monitors.create(
        f"{MODEL_NAME}-champion",
        model=f"models:/{MODEL_NAME}@champion",  # no reference given: the training data, via lineage
        window="1000rows",
        target="label",
        categorical=["label"],
        thresholds={"drift_share": 0.1, "accuracy": 0.9},  # alarm when 10% of columns move
        replace=True,
    )
    result = monitors.run(f"{MODEL_NAME}-champion")
    out = Path(loopline.get_tracking_uri().removeprefix("sqlite:///")).parent / "reports" / "drift.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = result.report
    assert report is not None, "the monitor found no requests in the inference log"
    render_html(report, out)
    verdict = "[bold red]drifted[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    accuracy = result.metrics.get("performance.accuracy")
    console.print(
        f"Served {rows} rows through [bold]loopline serve[/] (p50 {p50:.1f} ms per 10-row request). "
        f"Monitor {MODEL_NAME}-champion, against {result.reference}: {verdict}; "
        f"{len(report.drifted_columns)} of {len(report.columns)} columns moved "
        f"({', '.join(report.drifted_columns[:5])})"
        + (f"; accuracy on the labelled requests {accuracy:.3f}" if accuracy is not None else "")
        + f"; alerts: {', '.join(a['event'] for a in result.alerts) or 'none'}. Report: {out}"
    )
    return out


# ---- step 7: the loop closes itself (examples/closed_loop) ---------------------------------------


def close_the_loop_on(d: Data, console: Console) -> None:
    """The loop declared in examples/closed_loop/loopline.yaml retrains, gates, rolls out and rolls
    back by itself while the deployment serves drifted traffic."""
    from closed_loop.demo_loop import close_the_loop

    from loopline.monitoring.monitors import Monitors

    def run_monitor() -> list[str]:
        return [str(a["event"]) for a in Monitors().run(f"{MODEL_NAME}-champion").alerts]

    train = d.frame(d.X_train).assign(label=d.y_train)
    labelled_production = drifted(d, d.X_train).assign(label=d.y_train)
    close_the_loop(
        holdout=d.frame(d.X_val).assign(label=d.y_val),
        new_training_data=pd.concat([train, labelled_production], ignore_index=True),
        production=drifted_batch(d),
        truth=d.y_val,
        monitor=f"{MODEL_NAME}-champion",
        console=console,
        home=Path(loopline.get_tracking_uri().removeprefix("sqlite:///")).parent,
        run_monitor=run_monitor,
    )


# ---- step 8: where to look -----------------------------------------------------------------------


def where_to_look(runs: list[Run], data: DatasetVersion, report: Path, console: Console) -> None:
    best, second = runs[0].info, runs[1].info
    artifact = f"{best.experiment_id}/{best.run_id}/artifacts/feature_importances.csv"
    console.rule("Where to look", align="left")
    lines = [
        f"Stored in [bold]{loopline.get_tracking_uri()}[/] and its artifact folder.",
        "",
        "[bold]The command line[/]",
        f'  loopline runs list -e {EXPERIMENT} -o "metrics.val_accuracy DESC" -o metrics.val_log_loss',
        "  loopline runs list -F \"params.model = 'sgd-logreg' AND metrics.val_roc_auc > 0.99\"",
        f"  loopline runs show {best.run_id}",
        f"  loopline runs compare {best.run_id} {second.run_id}",
        "",
        "[bold]The server[/] (it speaks MLflow's REST API: MLflow's own client works unchanged)",
        "  loopline server                    # then open http://127.0.0.1:5000/docs",
        "  export MLFLOW_TRACKING_URI=http://127.0.0.1:5000   # in another shell; pip install mlflow",
        f"  python -c \"import mlflow; print(mlflow.search_runs(experiment_names=['{EXPERIMENT}']))\"",
        f"  curl -O http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/{artifact}",
        "",
        "[bold]Data, lineage and monitoring[/]",
        f"  loopline data show {data.uri.removeprefix('datasets:/')}        # schema, profile, validations",
        f"  loopline lineage {data.uri}     # the runs and models that depend on it",
        f"  loopline monitor history {MODEL_NAME}-champion    # its figures over time; `monitor run` again",
        f"  open {report}",
        "",
        "[bold]The registry and serving[/]",
        f"  loopline models show {MODEL_NAME}",
        f"  loopline serve models:/{MODEL_NAME}@champion --port 8080   # MLflow scoring + Open Inference",
        f"  loopline models download models:/{MODEL_NAME}@champion ./champion   # its files, verified",
        "  curl -X POST localhost:8080/invocations -H 'Content-Type: application/json' \\",
        "       -d @champion/serving_input_example.json",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)  # soft wrap: long commands stay copyable


def main() -> None:
    console = Console()
    session = uuid.uuid4().hex[:8]
    data = load_data()
    console.print(
        f"[bold]Loopline demo[/]: {len(CANDIDATES)} models on scikit-learn's breast-cancer data "
        f"({len(data.y_train)} train / {len(data.y_val)} validation rows, {len(data.features)} features)"
    )
    version = version_and_validate(data, console)
    train_all(data, version.uri, session, console)
    runs = compare(session, console)
    register_best(runs, data, console)
    report = serve_and_monitor(data, console)
    close_the_loop_on(data, console)
    where_to_look(runs, version, report, console)


if __name__ == "__main__":
    main()
