"""Monitoring: data drift, prediction and target drift, data quality and model performance.

``drift(reference, current)`` compares two tables column by column and returns a
:class:`DriftReport` (``.to_dict()``; ``render_html(report, path)`` writes its page); a
:class:`ReferenceProfile` summarises a reference once so that repeated checks never rescan it.
Monitors (``loopline.monitoring.monitors``) run the same checks on a schedule over a deployment's
inference log, store the figures as time series, and alert through events and webhooks. NumPy is
the only heavy import here; SciPy (the ``monitoring`` extra) is imported when a p-value is computed.
"""

from __future__ import annotations

from loopline.monitoring.drift import drift
from loopline.monitoring.html import render_html
from loopline.monitoring.reference import ReferenceProfile
from loopline.monitoring.report import ColumnDrift, DriftReport

__all__ = ["ColumnDrift", "DriftReport", "ReferenceProfile", "drift", "render_html"]
