"""What ``drift`` returns: a verdict per column and for the dataset, and its JSON form.

The HTML page of a report is :func:`loopline.monitoring.html.render_html` (a function of the report: the
report knows nothing of how it is shown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. ``to_dict`` gives the documented JSON shape (plus explanatory keys)."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reason: str
    n_reference: int
    n_current: int
    effect: float | None = None  # KS D or total variation distance, for the effect floor
    p_value_adjusted: float | None = None
    exact: bool = True  # False when KS/Wasserstein used the reference's sketch
    quality: Mapping[str, Any] = field(default_factory=dict)
    histogram: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self, *, histogram: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": None if self.p_value is None else _finite(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value_adjusted": self.p_value_adjusted,
            "effect": self.effect,
            "reason": self.reason,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "exact": self.exact,
            "quality": dict(self.quality),
        }
        if histogram:
            out["histogram"] = dict(self.histogram)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str = "") -> ColumnDrift:
        """The inverse of ``to_dict`` (what a server sends back of a monitor's run)."""
        return cls(
            name=d.get("name") or name,
            kind=d["kind"],
            test=d["test"],
            statistic=float(d["statistic"]),
            p_value=d.get("p_value"),
            threshold=float(d["threshold"]),
            drifted=bool(d["drifted"]),
            reason=d.get("reason", ""),
            n_reference=int(d.get("n_reference", 0)),
            n_current=int(d.get("n_current", 0)),
            effect=d.get("effect"),
            p_value_adjusted=d.get("p_value_adjusted"),
            exact=bool(d.get("exact", True)),
            quality=dict(d.get("quality") or {}),
            histogram=dict(d.get("histogram") or {}),
        )


def _finite(x: float) -> float:
    """JSON has no inf: clamp (only PSI against an empty bin can get there, and it is huge anyway)."""
    return x if math.isfinite(x) else (1e308 if x > 0 else 0.0)


@dataclass(frozen=True)
class DriftReport:
    """What ``drift`` returns: the dataset verdict and one ``ColumnDrift`` per column."""

    dataset_drift: bool
    drift_share: float
    columns: dict[str, ColumnDrift]
    options: Mapping[str, Any]
    reference: str
    current: str
    n_reference: int
    n_current: int
    prediction_drift: ColumnDrift | None = None
    target_drift: ColumnDrift | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.drifted]

    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "columns": {n: c.to_dict(histogram=histograms) for n, c in self.columns.items()},
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": len(self.drifted_columns),
            "options": dict(self.options),
            "reference": {"source": self.reference, "rows": self.n_reference},
            "current": {"source": self.current, "rows": self.n_current},
        }
        if self.prediction_drift is not None:
            out["prediction_drift"] = self.prediction_drift.to_dict(histogram=histograms)
        if self.target_drift is not None:
            out["target_drift"] = self.target_drift.to_dict(histogram=histograms)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        """The inverse of ``to_dict`` (histograms come back when they were sent)."""

        def column(x: Any) -> ColumnDrift | None:
            return None if x is None else ColumnDrift.from_dict(x)

        return cls(
            dataset_drift=bool(d["dataset_drift"]),
            drift_share=float(d["drift_share"]),
            columns={n: ColumnDrift.from_dict(c, n) for n, c in (d.get("columns") or {}).items()},
            options=dict(d.get("options") or {}),
            reference=(d.get("reference") or {}).get("source", ""),
            current=(d.get("current") or {}).get("source", ""),
            n_reference=int((d.get("reference") or {}).get("rows", 0)),
            n_current=int((d.get("current") or {}).get("rows", 0)),
            prediction_drift=column(d.get("prediction_drift")),
            target_drift=column(d.get("target_drift")),
        )

    def to_json(self, **kwargs: Any) -> str:
        import json

        return json.dumps(self.to_dict(**kwargs), indent=2)
