"""Steps, pipelines and the DAG: tracing, validation errors that name the culprit, order, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from pipeline_support import write

from loopline.errors import InvalidInput
from loopline.pipelines import compose, pipeline, step
from loopline.pipelines.graph import Graph, Node
from loopline.pipelines.task import load_file


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def square(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@step
def total(xs: list[int], offset: int = 0) -> int:
    return sum(xs) + offset


def test_a_step_outside_a_pipeline_is_its_plain_function() -> None:
    assert total(square(load(3))) == 5


def test_tracing_builds_the_dag_from_how_outputs_feed_inputs() -> None:
    @pipeline
    def p(n: int = 4, offset: int = 1) -> object:
        xs = load(n)
        return {"a": total(square(xs), offset), "b": total(xs)}

    g = p.build(p.resolve_params({}))
    assert list(g.nodes) == ["load", "square", "total", "total_2"]
    assert g.nodes["square"].deps == ("load",)
    assert g.nodes["total"].deps == ("square",)
    assert g.nodes["total_2"].deps == ("load",)
    assert g.nodes["total"].args["offset"] == 1
    assert g.order() == ["load", "square", "total", "total_2"]
    assert g.dependants("load") == {"square", "total", "total_2"}
    assert g.to_json()["outputs"] == {"a": {"$step": "total"}, "b": {"$step": "total_2"}}


def test_a_step_needs_a_return_annotation() -> None:
    with pytest.raises(InvalidInput, match="Step 'untyped' has no return type annotation") as e:

        @step
        def untyped(x: int):  # type: ignore[no-untyped-def]
            return x

    assert "-> pd.DataFrame" in e.value.hint


def test_wrong_arguments_and_branching_on_an_output_name_the_step() -> None:
    @pipeline
    def wrong() -> object:
        return total()

    with pytest.raises(InvalidInput, match="Step 'total' was called with the wrong arguments"):
        wrong.build({})

    @pipeline
    def branchy() -> object:
        xs = load(3)
        return total(xs) if xs else None

    with pytest.raises(InvalidInput, match="Cannot branch on the output of step 'load'"):
        branchy.build({})


def test_parameters_missing_unknown_and_coerced() -> None:
    @pipeline
    def p(n: int, lr: float = 0.1, fast: bool = False) -> object:
        return total(load(n))

    with pytest.raises(InvalidInput, match="Pipeline 'p' needs parameter 'n'") as e:
        p.resolve_params({})
    assert "-p n=VALUE" in e.value.hint
    with pytest.raises(InvalidInput, match="Pipeline 'p' has no parameter 'epochs'"):
        p.resolve_params({"n": 1, "epochs": 3})
    assert p.resolve_params({"n": "3", "lr": 1, "fast": "yes"}) == {"n": 3, "lr": 1.0, "fast": True}
    with pytest.raises(InvalidInput, match="Parameter 'n' of pipeline 'p' must be a int"):
        p.resolve_params({"n": "three"})


def test_compose_wires_steps_by_parameter_name_and_refuses_a_cycle() -> None:
    @step
    def raw(rows: int) -> list[int]:
        return list(range(rows))

    @step
    def clean(raw: list[int]) -> list[int]:
        return raw

    good = compose("good", [raw, clean])
    g = good.build(good.resolve_params({"rows": 2}))
    assert g.nodes["clean"].deps == ("raw",) and g.to_json()["outputs"] == {"clean": {"$step": "clean"}}

    @step
    def a(c: int) -> int:
        return c

    @step
    def b(a: int) -> int:
        return a

    @step
    def c(b: int) -> int:
        return b

    cyclic = compose("cyclic", [a, b, c])
    with pytest.raises(InvalidInput, match=r"Pipeline 'cyclic' has a cycle: a → b → c → a"):
        cyclic.build({})


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 12))
    names = [f"n{i}" for i in range(n)]
    return {names[i]: draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else [] for i in range(n)}


@settings(max_examples=60, deadline=None)
@given(dags(), st.randoms())
def test_order_is_topological_for_any_dag_and_any_back_edge_is_a_cycle(
    deps: dict[str, list[str]], rnd
) -> None:  # type: ignore[no-untyped-def]
    names = list(deps)
    rnd.shuffle(names)  # insertion order must not matter
    g = Graph("prop", {n: Node(n, None, {}, tuple(deps[n])) for n in names})
    order = g.order()
    assert sorted(order) == sorted(names)
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[d] < pos[n] for n in names for d in deps[n])
    # add an edge from a node to one of its ancestors (or itself): now there is a cycle
    child = rnd.choice(names)
    ancestors = {child} | {a for a in names if child in g.dependants(a)}
    target = rnd.choice(sorted(ancestors))
    g.nodes[target] = Node(target, None, {}, (*g.nodes[target].deps, child))
    with pytest.raises(InvalidInput, match="has a cycle"):
        g.order()


def test_fingerprint_covers_called_project_code_only(tmp_path: Path) -> None:
    project = write(
        tmp_path / "proj",
        helpers_fp="""
        SCALE = 2

        def scale(x):
            return x * SCALE

        def unrelated(x):
            return x - 1
        """,
        steps_fp='''
        import json
        import helpers_fp
        from loopline.pipelines import step

        @step
        def featurize(x: int) -> int:
            """Docstrings and comments do not count."""
            return helpers_fp.scale(x) + len(json.dumps(x))
        ''',
    )
    first = load_file(str(project / "steps_fp.py")).featurize.fingerprint

    def again() -> str:
        import sys

        for name in [m for m in sys.modules if m == "helpers_fp" or m.startswith("_loopline_steps_fp")]:
            del sys.modules[name]
        return str(load_file(str(project / "steps_fp.py")).featurize.fingerprint)

    helpers = project / "helpers_fp.py"
    helpers.write_text(helpers.read_text().replace("return x - 1", "return x - 2"))
    assert again() == first  # an unrelated function changed
    steps = project / "steps_fp.py"
    steps.write_text(steps.read_text().replace('"""Docstrings and comments do not count."""', "# a comment"))
    assert again() == first
    helpers.write_text(helpers.read_text().replace("SCALE = 2", "SCALE = 3"))
    changed_constant = again()
    assert changed_constant != first
    helpers.write_text(helpers.read_text().replace("return x * SCALE", "return x * SCALE + 1"))
    assert again() not in (first, changed_constant)
