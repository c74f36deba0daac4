"""Online health of a candidate during a rollout step, read from the inference log.

Every serving process logs each request (``serving/inference_log.py``): which deployment, model
version and role (``primary`` answered, ``shadow`` only logged) served it, its status, latency and
outputs. A step's health is what those rows say about the candidate version since the step began,
counting only the role the step gives it: in a shadow step, its error rate on the requests it saw
and how often its answer agreed, row by row, with the primary's answer to the same request; in a
canary step, its error rate and p99 latency on the requests it answered and, once ground truth has
come back (``POST /api/2.0/loopline/feedback``), its accuracy on them against the other versions'
accuracy on theirs over the same time.

Parts are named ``part-<written ms>-…``: a row logged after the step began is in a part written
after it, so only those parts are read, whatever the log's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopline.artifacts import ArtifactStore
from loopline.automation.types import Health
from loopline.monitoring.logwindow import feedback_labels, parts_since, read_parts, row_predictions
from loopline.monitoring.traffic import quantile
from loopline.serving import log_schema as ls


@dataclass(frozen=True)
class StepHealth:
    """What the candidate's logged requests of one step say."""

    requests: int
    errors: int
    p99_ms: float | None
    compared: int = 0  # rows of shadow answers paired with the primary's answer to the same request
    agreed: int = 0
    labelled: int = 0  # rows the candidate answered whose ground truth came back
    correct: int = 0
    baseline_labelled: int = 0  # the same for the other versions' answers (the champion's)
    baseline_correct: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def baseline_accuracy(self) -> float | None:
        return self.baseline_correct / self.baseline_labelled if self.baseline_labelled else None

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "p99_ms": self.p99_ms,
            "agreement": self.agreement,
            "accuracy": self.accuracy,
            "baseline_accuracy": self.baseline_accuracy,
            "labelled": self.labelled,
        }


def judge(health: StepHealth, limits: Health) -> tuple[bool | None, str]:
    """(True: healthy, False: a regression, None: too few requests to tell yet) and why."""
    if health.requests and health.error_rate > limits.max_error_rate and health.errors >= 2:
        return False, f"error rate {health.error_rate:.1%} over the allowed {limits.max_error_rate:.1%}"
    if health.requests < limits.min_requests:
        return None, f"{health.requests} of the {limits.min_requests} requests needed to judge"
    if limits.max_p99_ms is not None and health.p99_ms is not None and health.p99_ms > limits.max_p99_ms:
        return False, f"p99 latency {health.p99_ms:.1f} ms over the allowed {limits.max_p99_ms:g} ms"
    agreement = health.agreement
    if limits.min_agreement is not None and agreement is not None and agreement < limits.min_agreement:
        return (
            False,
            f"agreement with the champion {agreement:.1%} under the required {limits.min_agreement:.1%}",
        )
    drop, mine, theirs = limits.max_accuracy_drop, health.accuracy, health.baseline_accuracy
    enough = health.labelled >= limits.min_requests
    if drop is not None and mine is not None and theirs is not None and enough and theirs - mine > drop:
        return (
            False,
            f"online accuracy {mine:.1%} against the champion's {theirs:.1%} (allowed drop {drop:.1%})",
        )
    return True, f"{health.requests} requests, error rate {health.error_rate:.1%}"


def _p99(values: Sequence[float]) -> float | None:
    return quantile(sorted(values), 0.99)


def _score(outputs: str, truth: Any) -> tuple[int, int]:
    """(labelled rows, correct rows) of one request's logged ``outputs`` against its ground truth."""
    import orjson

    truths = truth if isinstance(truth, list) else [truth]
    predictions = row_predictions(orjson.loads(outputs), len(truths))
    pairs = [(p, t) for p, t in zip(predictions, truths, strict=True) if p is not None and t is not None]
    return len(pairs), sum(1 for p, t in pairs if p == t or str(p) == str(t))


def _agreement(shadow: str, primary: str) -> tuple[int, int]:
    """(rows compared, rows the same) of two answers to one request."""
    import orjson

    theirs = orjson.loads(primary)
    n = len(theirs) if isinstance(theirs, list) else 1
    pairs = list(zip(row_predictions(orjson.loads(shadow), n), row_predictions(theirs, n), strict=True))
    return len(pairs), sum(1 for a, b in pairs if a == b)


def measure(
    store: ArtifactStore, deployment: str, model: str, version: str, since_ms: int, *, role: str = "primary"
) -> StepHealth:
    """The candidate ``model`` version ``version``'s requests through ``deployment`` since ``since_ms``
    in ``role``: ``shadow`` in a shadow step, ``primary`` (the requests it answered) in a canary step.
    Only that role counts: a shadow's backlog, still logged after a canary step began, must not pass
    for the canary's traffic."""
    requests = errors = compared = agreed = 0
    latencies: list[float] = []
    primary: dict[str, str] = {}  # request id -> the answer another version gave (the champion's)
    answered: dict[str, str] = {}  # request id -> the candidate's answer, where it answered
    shadow: dict[str, str] = {}
    columns = [
        ls.REQUEST_ID,
        ls.TIMESTAMP,
        ls.DEPLOYMENT,
        ls.VERSION,
        ls.ROLE,
        ls.OUTPUTS,
        ls.LATENCY_MS,
        ls.STATUS,
    ]
    for table in read_parts(store, parts_since(store, ls.predictions_dir(model), since_ms)):
        for r in table.select(columns).to_pylist():
            if r[ls.DEPLOYMENT] != deployment or r[ls.TIMESTAMP].timestamp() * 1000 < since_ms:
                continue
            mine = r[ls.VERSION] == version
            if not mine:
                if r[ls.ROLE] == "primary" and r[ls.STATUS] == 200:
                    primary[r[ls.REQUEST_ID]] = r[ls.OUTPUTS]
                continue
            if r[ls.ROLE] != role:
                continue
            if role == "shadow":
                shadow[r[ls.REQUEST_ID]] = r[ls.OUTPUTS]
            else:  # a shadow's latency is not what users wait for: only answered requests are timed
                latencies.append(float(r[ls.LATENCY_MS]))
                if r[ls.STATUS] == 200:
                    answered[r[ls.REQUEST_ID]] = r[ls.OUTPUTS]
            requests += 1
            errors += int(r[ls.STATUS] >= 500)
    for request_id, answer in shadow.items():  # row by row: one request may carry many rows
        if request_id in primary:
            n, same = _agreement(answer, primary[request_id])
            compared += n
            agreed += same
    scores = [0, 0, 0, 0]  # candidate labelled, correct; baseline labelled, correct
    if answered and primary:
        labels = feedback_labels(read_parts(store, parts_since(store, ls.FEEDBACK, since_ms)))
        for offset, outputs in ((0, answered), (2, primary)):
            for request_id, answer in outputs.items():
                if request_id in labels:
                    n, ok = _score(answer, labels[request_id])
                    scores[offset] += n
                    scores[offset + 1] += ok
    return StepHealth(requests, errors, _p99(latencies), compared, agreed, *scores)
