"""The Ray executor: 20 independent steps on a local Ray instance run in parallel and record the
same lineage as the local executor (quick: a few seconds of work on ``num_cpus=2``)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_support import write

from loopline.config import Settings
from loopline.metadata import lineage
from loopline.pipelines import Runner, load_target

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

WIDE = """
import time
from loopline.pipelines import pipeline, step

@step(cpus=1, memory="64MiB")
def work(i: int, seconds: float) -> list:
    start = time.time()
    time.sleep(seconds)
    return [i, start, time.time()]

@pipeline
def wide(width: int = 20, seconds: float = 0.25):
    return [work(i, seconds) for i in range(width)]
"""


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _shape(store_engine: object, run_uri: str, run_id: str) -> set[tuple[str, str, str]]:
    edges = lineage.downstream(store_engine, "default", run_uri)  # type: ignore[arg-type]
    return {(re.sub(run_id, "RUN", e.from_uri), re.sub(run_id, "RUN", e.to_uri), e.relation) for e in edges}


def test_twenty_independent_steps_run_in_parallel_on_ray_with_the_same_lineage(
    ray_local: None, tmp_path: Path, settings: Settings
) -> None:
    pipe = load_target(f"{write(tmp_path / 'proj', wide_pipe=WIDE) / 'wide_pipe.py'}:wide")
    with Runner(settings, executor="ray") as runner:
        on_ray = runner.run(pipe, {}, cache=False)
        assert on_ray.status == "succeeded", on_ray.error
        assert runner.executor.name == "ray"
        spans = sorted((start, end) for _, start, end in on_ray.outputs)
        assert [i for i, _, _ in on_ray.outputs] == list(range(20))
        overlapping = sum(1 for (s1, e1), (s2, _) in itertools.pairwise(spans) if s2 < e1)
        assert overlapping >= 5, f"steps did not overlap: {spans}"
        ray_shape = _shape(runner.store.engine, on_ray.uri, on_ray.run_id)
    with Runner(settings, executor="local") as runner:
        local = runner.run(pipe, {"seconds": 0.0}, cache=False)
        assert local.status == "succeeded"
        assert _shape(runner.store.engine, local.uri, local.run_id) == ray_shape
    assert len([e for e in ray_shape if e[2] == "has_step"]) == 20
    assert runner.store.get_run(on_ray.run_id).executor == "ray"
