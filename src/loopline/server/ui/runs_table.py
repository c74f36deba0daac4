"""The runs table of an experiment: what a page asks for, and the columns and rows it shows.

The query goes through ``TrackingStore.search_runs`` (the filter grammar, ordering and page tokens of
``search_runs`` and MLflow's API), loading params, tags and latest metrics only: the history table is
never read for a listing. Paging is forward by token; the tokens of the pages before travel in the
URL (``trail``) so "Previous" needs no server-side session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loopline.metadata.pages import Page
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.tracking.types import Run

PAGE_SIZES = (25, 50, 100, 250)
MAX_DEFAULT_COLUMNS = 8  # of each kind, when the page does not name its columns
FIRST = "-"  # the first page's token (none) in a trail
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Columns that sort by a run attribute rather than a param or metric.
ATTRIBUTES = {"run_name": "Run", "status": "Status", "start_time": "Started", "user_id": "User"}


def identifier(kind: str, key: str) -> str:
    """``metrics.loss``, or ``metrics.`val loss``` for a key that is not a plain name."""
    return f"{kind}.{key}" if _PLAIN_KEY.match(key) else f"{kind}.`{key}`"


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """What the runs page was asked for, read from its query string."""

    filter: str = ""
    sort: str = "start_time"  # an attribute name, or "params.<key>" / "metrics.<key>" (key unquoted)
    desc: bool = True
    page_token: str = ""
    trail: tuple[str, ...] = ()  # the tokens of the pages before this one ("" for the first)
    page_size: int = 50
    columns: tuple[str, ...] = ()  # chosen "params.<key>" / "metrics.<key>"; empty: the page's first few
    deleted: bool = False

    @classmethod
    def from_params(cls, q: Mapping[str, str], columns: Sequence[str] = ()) -> RunsQuery:
        sort = q.get("sort") or "start_time"
        if "." not in sort and sort not in ATTRIBUTES:
            sort = "start_time"
        size = int(q["page_size"]) if q.get("page_size", "").isdigit() else 50
        return cls(
            filter=q.get("filter", "").strip(),
            sort=sort,
            desc=q.get("dir", "desc") != "asc",
            page_token=q.get("page_token", ""),
            trail=tuple("" if t == FIRST else t for t in q["trail"].split(",")) if q.get("trail") else (),
            page_size=size if size in PAGE_SIZES else 50,
            columns=tuple(c for c in columns if c.startswith(("params.", "metrics."))),
            deleted=q.get("deleted") == "1",
        )

    def order_by(self) -> list[str]:
        kind, _, key = self.sort.partition(".")
        clause = identifier(kind, key) if key else self.sort
        # search_runs breaks ties by run ID, so paging through equal values neither repeats nor skips.
        return [f"{clause} {'DESC' if self.desc else 'ASC'}"]

    def params(self, **changes: object) -> dict[str, object]:
        """This query as URL parameters, with ``changes``: what links and forms carry along."""
        out: dict[str, object] = {
            "filter": self.filter,
            "sort": self.sort,
            "dir": "desc" if self.desc else "asc",
            "page_size": self.page_size if self.page_size != 50 else "",
            "col": list(self.columns),
            "deleted": "1" if self.deleted else "",
            "page_token": self.page_token,
            "trail": _trail(self.trail),
        }
        out.update(changes)
        return out

    def next_page(self, token: str) -> dict[str, object]:
        return self.params(page_token=token, trail=_trail((*self.trail, self.page_token)))

    def previous_page(self) -> dict[str, object]:
        return self.params(page_token=self.trail[-1], trail=_trail(self.trail[:-1]))

    def first_page(self, **changes: object) -> dict[str, object]:
        return self.params(page_token="", trail="", **changes)


def _trail(tokens: Sequence[str]) -> str:
    return ",".join(t or FIRST for t in tokens)


@dataclass(frozen=True, slots=True)
class RunsTable:
    runs: list[Run]
    params: list[str]  # param keys shown, in order
    metrics: list[str]
    all_params: list[str]  # every key on this page, for the column chooser
    all_metrics: list[str]
    next_token: str | None
    total: int

    def metric(self, run: Run, key: str) -> float | None:
        for m in run.data.latest_metrics:
            if m.key == key:
                return m.value
        return None


def load(store: SqlTrackingStore, experiment_id: str, q: RunsQuery) -> RunsTable:
    """One page of runs and its columns; raises ``InvalidInput`` for a bad filter or sort key."""
    page: Page[Run] = store.search_runs(
        [experiment_id],
        q.filter or None,
        "ALL" if q.deleted else "ACTIVE_ONLY",
        q.page_size,
        q.order_by(),
        q.page_token or None,
        include=("params", "tags", "metrics"),
    )
    total = store.count_runs([experiment_id], q.filter or None, "ALL" if q.deleted else "ACTIVE_ONLY")
    all_params = sorted({k for r in page.items for k in r.data.params})
    all_metrics = sorted({m.key for r in page.items for m in r.data.latest_metrics})
    if q.columns:
        params = [c.partition(".")[2] for c in q.columns if c.startswith("params.")]
        metrics = [c.partition(".")[2] for c in q.columns if c.startswith("metrics.")]
    else:
        params, metrics = all_params[:MAX_DEFAULT_COLUMNS], all_metrics[:MAX_DEFAULT_COLUMNS]
    # The column a page is sorted by is always shown.
    kind, _, key = q.sort.partition(".")
    if kind == "params" and key not in params:
        params.append(key)
    if kind == "metrics" and key not in metrics:
        metrics.append(key)
    return RunsTable(page.items, params, metrics, all_params, all_metrics, page.next_page_token, total)


__all__ = ["ATTRIBUTES", "PAGE_SIZES", "RunsQuery", "RunsTable", "identifier", "load"]
