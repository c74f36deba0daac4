"""Input checks shared by every store, with MLflow's limits and messages that say what to fix."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence

from loopline.errors import InvalidInput
from loopline.metadata.limits import KEY, PARAM_VALUE, TAG_VALUE
from loopline.tracking.types import Metric, Param, RunTag

# MLflow's batch limits for runs/log-batch.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000


_KEY = re.compile(r"^[\w\-. /:]+$")
# Steps and timestamps are BIGINT columns (and int64 in MLflow's protocol).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def check_run_id(run_id: object) -> str:
    """A client-chosen run ID must look like the ones stores make: 32 lowercase hex digits."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidInput(
            f"Invalid run ID {run_id!r:.80}: run IDs are 32 lowercase hex digits.",
            hint="Use uuid.uuid4().hex, or leave the ID to the store.",
        )
    return run_id


def validate_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"A {kind} key must be a non-empty string, got {key!r}.")
    if len(key) > KEY:
        raise InvalidInput(f"{kind.capitalize()} key {key[:40]!r}… is longer than {KEY} characters.")
    if not _KEY.match(key):
        raise InvalidInput(
            f"Invalid {kind} name {key!r}.",
            hint="Names may contain letters, digits, underscores (_), dashes (-), periods (.),"
            " spaces ( ), colons (:) and slashes (/).",
        )
    if key.startswith("/") or posixpath.normpath(key) != key.rstrip("/") or ".." in key.split("/"):
        raise InvalidInput(
            f"Invalid {kind} name {key!r}: it must be a relative path without '..' or '//'.",
        )
    return key


def validate_metric(m: Metric) -> None:
    validate_key("metric", m.key)
    if isinstance(m.value, bool) or not isinstance(m.value, int | float):
        raise InvalidInput(f"Metric {m.key!r} has a non-numeric value {m.value!r}.")
    if not isinstance(m.step, int) or isinstance(m.step, bool):
        raise InvalidInput(f"Metric {m.key!r} has a non-integer step {m.step!r}.")
    if not isinstance(m.timestamp, int) or isinstance(m.timestamp, bool):
        raise InvalidInput(f"Metric {m.key!r} has a non-integer timestamp {m.timestamp!r}.")
    for field, n in (("step", m.step), ("timestamp", m.timestamp)):
        if not INT64_MIN <= n <= INT64_MAX:
            raise InvalidInput(
                f"Metric {m.key!r} has {field} {n}, outside the 64-bit integer range.",
                hint=f"Use a {field} between -2**63 and 2**63 - 1.",
            )


def validate_text(what: str, value: str) -> str:
    """PostgreSQL's text cannot hold NUL: refuse it on every backend alike."""
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character.", hint="Remove the \\x00 from it.")
    return value


def validate_param(p: Param) -> None:
    validate_key("param", p.key)
    if not isinstance(p.value, str):
        raise InvalidInput(f"Param {p.key!r} must have a string value, got {p.value!r}.")
    validate_text(f"Param {p.key!r}", p.value)
    if len(p.value) > PARAM_VALUE:
        raise InvalidInput(
            f"Param {p.key!r} has a value of {len(p.value)} characters; the limit is {PARAM_VALUE}.",
            hint="Log long values as an artifact instead.",
        )


def validate_tag(t: RunTag) -> None:
    validate_key("tag", t.key)
    if not isinstance(t.value, str):
        raise InvalidInput(f"Tag {t.key!r} must have a string value, got {t.value!r}.")
    validate_text(f"Tag {t.key!r}", t.value)
    if len(t.value) > TAG_VALUE:
        raise InvalidInput(f"Tag {t.key!r} is longer than {TAG_VALUE} characters.")


def validate_batch(metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]) -> None:
    """Reject batches over MLflow's limits (clients split larger ones) and malformed entries."""
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise InvalidInput(
            f"A batch logged {len(metrics)} metrics; the limit is {MAX_METRICS_PER_BATCH}.",
            hint="Split the batch (Loopline's client does this for you).",
        )
    if len(params) > MAX_PARAMS_PER_BATCH:
        raise InvalidInput(f"A batch logged {len(params)} params; the limit is {MAX_PARAMS_PER_BATCH}.")
    if len(tags) > MAX_TAGS_PER_BATCH:
        raise InvalidInput(f"A batch logged {len(tags)} tags; the limit is {MAX_TAGS_PER_BATCH}.")
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise InvalidInput(f"A batch logged {total} entities; the limit is {MAX_ENTITIES_PER_BATCH}.")
    keys: set[str] = set()
    for m in metrics:  # the hot path of ingest: check each distinct key once, each value cheaply
        if m.key not in keys:
            validate_key("metric", m.key)
            keys.add(m.key)
        if (
            type(m.value) is not float  # exact types: bool and numpy scalars go the long way
            or type(m.step) is not int
            or type(m.timestamp) is not int
            or not INT64_MIN <= m.step <= INT64_MAX
            or not INT64_MIN <= m.timestamp <= INT64_MAX
        ):
            validate_metric(m)
    seen: dict[str, str] = {}
    for p in params:
        validate_param(p)
        if seen.setdefault(p.key, p.value) != p.value:
            raise InvalidInput(
                f"Param {p.key!r} appears twice in one batch with different values.",
                hint="Log each param once per run.",
            )
    for t in tags:
        validate_tag(t)


def db_value(value: float) -> tuple[float, bool]:
    """A float as stored: NaN becomes (0, is_nan=True) because SQLite stores NaN as NULL."""
    return (0.0, True) if math.isnan(value) else (float(value), False)
