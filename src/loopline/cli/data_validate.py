"""``loopline data validate``: run an expectation suite against a dataset version or a file."""

from __future__ import annotations
