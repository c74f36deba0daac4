"""What ``@step(...)`` asks of whoever runs the step, checked once: ``StepOptions``.

Executors read it and the graph's ``Step`` holds it; it imports neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopline.errors import InvalidInput

SERIALIZERS = ("json", "pandas", "polars", "arrow", "numpy", "model", "pickle")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(value: str | int | None) -> int | None:
    """``"4GiB"`` → bytes (``None`` stays ``None``; an int is already bytes)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    m = _MEMORY.match(str(value))
    if not m:
        raise InvalidInput(f"Invalid memory {value!r}.", hint="Use a size such as '512MiB' or '4GiB'.")
    return int(float(m[1]) * _UNITS[(m[2] or "B").lower()])


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: resources, retries, timeout, caching, isolation, serializer, registration."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None  # bytes
    retries: int = 0
    retry_delay: float = 1.0  # seconds before the first retry; doubled (``backoff``) each time
    backoff: float = 2.0
    timeout: float | None = None  # seconds; a step with a timeout runs in a process of its own
    cache: bool = True
    isolate: bool = False  # run in a fresh process even on the local executor
    serializer: str | None = None  # force one (e.g. "pickle"); default: chosen by the output's type
    register: str | None = None  # register the output (a model) as a version of this model name
