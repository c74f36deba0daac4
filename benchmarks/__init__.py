"""Side-by-side benchmarks: Loopline against its peers, on the same machine, the same workload.

Each benchmark module (only ``tracking`` so far) exposes ``NAME``, ``WORKLOADS`` and
``run(options) -> Report``; ``python -m benchmarks`` runs them all and prints one ratio table each.
Peers run as real servers in subprocesses, driven by their own clients; see ``benchmarks/README.md``.
"""

from __future__ import annotations

__all__: list[str] = []
