"""A drift report as one self-contained HTML page: inline CSS and SVG, no script, no external URL.

At a glance: the verdict and drifted share at the top; then one row per column, drifted first, with its
test, statistic, p-value, threshold, the reason the test was chosen, data-quality notes and an overlay of
the two distributions (reference grey, current coloured, on the reference's bins or top categories).
Given ``history`` (column → [(time_ms, statistic), …], as a monitor keeps), each row also shows the
statistic over time with its threshold.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopline.monitoring.report import ColumnDrift, DriftReport

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}.sub{color:#59636e;margin-bottom:16px}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:600;margin-right:12px}
.bad{background:#ffebe9;color:#a40e26}.ok{background:#dafbe1;color:#116329}
table{border-collapse:collapse;width:100%;margin-top:16px}
th,td{border-bottom:1px solid #d1d9e0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.reason{color:#59636e;font-size:12px;max-width:420px}.q{color:#9a6700;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
svg text{font-size:9px;fill:#59636e}
"""
_REF, _CUR, _DRIFT = "#8c959f", "#0969da", "#cf222e"


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3e}"


def overlay(col: ColumnDrift, width: int = 260, height: int = 90) -> str:
    """Side-by-side bars of the reference and current shares per bin (or category)."""
    h = col.histogram
    labels: Sequence[str] = h.get("labels", [])
    ref: Sequence[float] = h.get("reference", [])
    cur: Sequence[float] = h.get("current", [])
    if not labels:
        return ""
    top = max([*ref, *cur, 1e-12])
    n = len(labels)
    slot = width / n
    bar = max(slot / 2 - 1, 1.0)
    plot_h = height - 14
    colour = _DRIFT if col.drifted else _CUR
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, r, c) in enumerate(zip(labels, ref, cur, strict=True)):
        x = i * slot
        for j, (v, fill) in enumerate(((r, _REF), (c, colour))):
            bh = plot_h * v / top
            parts.append(
                f'<rect x="{x + j * bar + 0.5:.1f}" y="{plot_h - bh:.1f}" width="{bar:.1f}" '
                f'height="{bh:.1f}" fill="{fill}"><title>{_e(label)}: '
                f"{'reference' if j == 0 else 'current'} {v:.1%}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height - 2}">{_e(labels[0])[:18]}</text>')
    parts.append(f'<text x="{width}" y="{height - 2}" text-anchor="end">{_e(labels[-1])[:18]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    points: Sequence[tuple[int, float]], threshold: float | None, width: int = 160, height: int = 40
) -> str:
    """The statistic over time, with a dashed line at its threshold."""
    if len(points) < 2:
        return ""
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    lo, hi = min([*vs, threshold or vs[0]]), max([*vs, threshold or vs[0]])
    span_t = (max(ts) - min(ts)) or 1
    span_v = (hi - lo) or 1.0

    def xy(t: float, v: float) -> str:
        x = (t - min(ts)) / span_t * (width - 4) + 2
        y = height - 2 - (v - lo) / span_v * (height - 4)
        return f"{x:.1f},{y:.1f}"

    path = " ".join(xy(t, v) for t, v in points)
    out = [f'<svg width="{width}" height="{height}" role="img"><title>{len(points)} runs</title>']
    if threshold is not None:
        y = xy(min(ts), threshold).split(",")[1]
        out.append(f'<line x1="0" x2="{width}" y1="{y}" y2="{y}" stroke="{_DRIFT}" stroke-dasharray="3,3"/>')
    out.append(f'<polyline points="{path}" fill="none" stroke="{_CUR}" stroke-width="1.5"/></svg>')
    return "".join(out)


def _quality(q: Mapping[str, Any]) -> str:
    notes = []
    if q.get("missing_share", 0) > 0:
        notes.append(
            f"missing {q['missing_share']:.1%} (reference {q.get('missing_share_reference', 0):.1%})"
        )
    if q.get("infinite"):
        notes.append(f"{q['infinite']} infinite values")
    if q.get("out_of_range_share", 0) > 0:
        notes.append(f"{q['out_of_range_share']:.1%} outside the reference's range")
    if q.get("new_categories"):
        notes.append(f"new categories ({q['new_category_share']:.1%}): " + ", ".join(q["new_categories"][:5]))
    return "<br>".join(_e(n) for n in notes)


def _row(col: ColumnDrift, history: Mapping[str, Sequence[tuple[int, float]]] | None, label: str = "") -> str:
    mark = '<b style="color:#cf222e">drifted</b>' if col.drifted else "ok"
    trend = (
        sparkline(history.get(col.name, []), col.threshold if col.p_value is None else None)
        if history
        else ""
    )
    return (
        f"<tr><td><b>{_e(label or col.name)}</b><br><small>{_e(col.kind)}</small></td><td>{mark}</td>"
        f"<td>{_e(col.test)}</td><td class=num>{_num(col.statistic)}</td>"
        f"<td class=num>{_num(col.p_value)}</td>"
        f"<td class=num>{_num(col.threshold)}</td><td>{overlay(col)}{trend}</td>"
        f"<td><div class=reason>{_e(col.reason)}</div><div class=q>{_quality(col.quality)}</div></td></tr>"
    )


def render_html(
    report: DriftReport,
    path: str | os.PathLike[str] | None = None,
    *,
    history: Mapping[str, Sequence[tuple[int, float]]] | None = None,
    title: str = "",
) -> str:
    """The whole page for ``report``; also written to ``path`` when given."""
    cols = sorted(report.columns.values(), key=lambda c: (not c.drifted, c.name))
    verdict = (
        '<span class="verdict bad">Dataset drift detected</span>'
        if report.dataset_drift
        else '<span class="verdict ok">No dataset drift</span>'
    )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_drift = len(report.drifted_columns)
    rows = [_row(c, history) for c in cols]
    for label, extra in (("prediction", report.prediction_drift), ("target", report.target_drift)):
        if extra is not None:
            rows.insert(0, _row(extra, history, f"{label}: {extra.name}"))
    o = report.options
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title or "Loopline drift report")}</title>
<style>{_CSS}</style></head><body>
<h1>{_e(title or "Drift report")}</h1>
<div class="sub">reference {_e(report.reference)} ({report.n_reference:,} rows) · current {_e(report.current)}
({report.n_current:,} rows) · {when}</div>
{verdict}<b>{n_drift} of {len(cols)}</b> columns drifted ({report.drift_share:.0%}; the dataset drifts at
{o.get("drift_share", 0.5):.0%}) · alpha {o.get("alpha")} with {_e(o.get("correction"))} correction ·
effect floor {o.get("min_effect")}
<div class="legend"><span style="background:{_REF}"></span>reference
<span style="background:{_CUR}"></span>current
<span style="background:{_DRIFT}"></span>current (drifted)</div>
<table><thead><tr><th>column</th><th>verdict</th><th>test</th><th>statistic</th><th>p-value</th>
<th>threshold</th><th>distributions</th><th>why this test · data quality</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page
