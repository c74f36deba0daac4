"""Reports of a validation result: a self-contained HTML page, and the text helpers the CLI shares.

The HTML report is one file: inline CSS, no script, no external font, image or stylesheet, so it
can be attached to a CI run or mailed and still render. Failing rows are listed per check in a
``<details>`` element (opens without JavaScript).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from loopline.data.validation.result import ExpectationResult, ValidationResult, json_safe

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem;margin:0 0 .3rem}.meta{color:#59636e;margin-bottom:1rem}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-weight:600;font-size:.85rem}
.pass{background:#dafbe1;color:#1a7f37}.fail{background:#ffebe9;color:#cf222e}
.warn{background:#fff8c5;color:#9a6700}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .2rem;
border-radius:3px}
details{margin:.2rem 0}summary{cursor:pointer;color:#0969da}table.rows{width:auto;font-size:12px}
.stats span{margin-right:1.2rem}
"""


def status(r: ExpectationResult) -> str:
    """``pass``, ``fail`` or ``warn`` (a failed check of severity warning)."""
    if r.success:
        return "pass"
    return "warn" if r.severity == "warning" else "fail"


def short(value: Any, limit: int = 80) -> str:
    """An observed value in a table cell: compact, cut at ``limit`` characters."""
    value = json_safe(value)
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, dict):
        # Failing values read as examples: "min=-1, max=200, e.g. -1, 200".
        text = ", ".join(
            f"e.g. {short(v, limit)[1:-1]}" if k == "unexpected_values" else f"{k}={short(v, limit)}"
            for k, v in value.items()
        )
    elif isinstance(value, list):
        text = "[" + ", ".join(short(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unexpected(r: ExpectationResult) -> str:
    """``12 (0.12%)`` for a row-level check, empty for a table-level one."""
    if r.unexpected_count is None:
        return ""
    pct = r.unexpected_percent or 0.0
    return f"{r.unexpected_count:,} ({pct:.3g}%)"


def rows_preview(r: ExpectationResult, limit: int = 5) -> str:
    """The first failing row indices: ``3, 17, 40 … (+12)``."""
    rows = r.failing_rows
    if rows is None or len(rows) == 0:
        return ""
    head = ", ".join(str(int(x)) for x in rows[:limit])
    return head + (f" … (+{len(rows) - limit:,})" if len(rows) > limit else "")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _sample_table(sample: list[dict[str, Any]]) -> str:
    if not sample:
        return ""
    cols = list(sample[0])
    head = "".join(f"<th>{'row' if c == '_row' else _e(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(short(row.get(c), 60))}</td>" for c in cols) + "</tr>" for row in sample
    )
    return f'<table class="rows"><tr>{head}</tr>{body}</table>'


def render_html(result: ValidationResult, path: str | Path | None = None, *, sample_rows: int = 10) -> str:
    """The self-contained HTML report of ``result``; also written to ``path`` when given.

    A function of the result, not a method of it: the result knows nothing of how it is shown.
    """
    stats = result.statistics()
    verdict = "pass" if result.success else "fail"
    lines = []
    for r in result.results:
        state = status(r)
        detail = ""
        if r.failing_sample:
            total = len(r.failing_rows) if r.failing_rows is not None else len(r.failing_sample)
            shown = r.failing_sample[:sample_rows]
            detail = (
                f"<details><summary>{len(shown)} of {total:,} failing rows</summary>"
                f"{_sample_table(shown)}</details>"
            )
        if r.error:
            detail += f"<div>{_e(r.error)}</div>"
        lines.append(
            "<tr>"
            f'<td><span class="badge {state}">{state}</span></td>'
            f"<td><code>{_e(r.label)}</code></td>"
            f"<td>{_e(', '.join(r.expectation.columns()))}</td>"
            f"<td>{_e(r.expectation.describe())}</td>"
            f"<td>{_e(short(r.observed))}</td>"
            f'<td class="num">{_e(unexpected(r))}</td>'
            f"<td>{_e(rows_preview(r))}{detail}</td>"
            "</tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Validation: {_e(result.suite)} on {_e(result.target)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{_e(result.suite)} <span class="badge {verdict}">{"passed" if result.success else "failed"}</span></h1>
<div class="meta">on <code>{_e(result.target)}</code> · {result.num_rows:,} rows · {_e(result.created_at)} ·
{result.duration_seconds:.3f} s</div>
<div class="stats"><span>{stats["evaluated"]} checks</span><span>{stats["successful"]} passed</span>
<span>{stats["unsuccessful"] - stats["warnings"]} failed</span><span>{stats["warnings"]} warnings</span></div>
<table><tr><th>Status</th><th>Check</th><th>Columns</th><th>Expected</th><th>Observed</th>
<th>Unexpected</th><th>Failing rows</th></tr>
{"".join(lines)}
</table>
<p class="meta">Unexpected: failing rows, and their share of the non-missing values. Row numbers are 0-based
positions in the validated table. Made by Loopline (schema loopline.validation/1).</p>
</body></html>
"""
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page
