"""The docs' examples, run: every fenced shell command and Python snippet in README.md and docs/*.md.

Each doc runs in a fresh folder of its own, on the embedded default store (``./.loopline``), in one
process that runs its blocks in order: shell blocks (``bash``, ``console``: the ``$`` lines) with
``bash -e``, Python blocks in one namespace, so a later block sees what an earlier one made, as a
reader following the page would; a Python block whose first line is ``# name.py`` is that file, and
is written, not run (the commands after it use it). First, ``tests/docs_setup/<doc>.py`` (when there
is one) makes the data the doc names (``customers.parquet``, ``X``, ``model``…) in that folder and
namespace; ``examples/`` is linked in, as the docs run from the repository's root.

A block that cannot run here (a server left running, S3, Ray, a cluster, an install, a long run)
is marked on the line before its fence with ``<!-- notest: the reason -->``. A doc whose example
drifts from the code fails here, naming the doc, the line and the output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETUP = Path(__file__).resolve().parent / "docs_setup"
SHELL = {"bash", "sh", "shell", "console"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_NOTEST = re.compile(r"^<!--\s*notest:(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    notest: str | None  # the reason, when marked


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file (top-level fences only: the docs indent none)."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = _NOTEST.match(lines[i - 1]) if i else None
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(path.name, i + 1, m.group(1), code, mark.group(1).strip() if mark else None))
        i = end + 1
    return found


def commands(block: Block) -> str:
    """The shell to run: a ``console`` block's ``$`` lines (and their ``\\`` continuations)."""
    if block.lang != "console":
        return block.code
    out, more = [], False
    for line in block.code.splitlines():
        if line.startswith("$ ") or more:
            out.append(line.removeprefix("$ "))
            more = line.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


# Runs in the doc's folder, as its own process: the setup, then each block; stops at the first failure.
DRIVER = r"""
import json, os, subprocess, sys, traceback
plan = json.load(open(sys.argv[1]))
ns = {"__name__": "__docs__"}
if plan["setup"]:
    sys.path.insert(0, os.path.dirname(plan["setup"]))  # the setups' shared helpers (common.py)
    exec(compile(open(plan["setup"]).read(), plan["setup"], "exec"), ns)
for b in plan["blocks"]:
    where = f"{b['doc']}:{b['line']}"
    print(f"--- {where} [{b['lang']}]", flush=True)
    first = b["code"].split("\n", 1)[0]
    if b["lang"] == "python" and first.startswith("# ") and first.endswith(".py") and " " not in first[2:]:
        open(first[2:], "w").write(b["code"])
    elif b["lang"] == "python":
        try:
            exec(compile(b["code"], where, "exec"), ns)
        except BaseException:
            traceback.print_exc()
            print(f"FAILED {where}", flush=True)
            sys.exit(1)
    else:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b["code"]])
        if done.returncode:
            print(f"FAILED {where}: exit status {done.returncode}", flush=True)
            sys.exit(1)
"""


def _runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.notest is None and (b.lang in SHELL or b.lang == "python")]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(path: Path, tmp_path: Path) -> None:
    todo = [Block(b.doc, b.line, b.lang, commands(b), None) for b in _runnable(path)]
    if not todo:
        pytest.skip(f"{path.name} has no runnable example")
    work, bin_ = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    # `loopline` and `python` are this interpreter (and this checkout's sources, through PYTHONPATH).
    python = f'"{sys.executable}"'
    for name, target in (("loopline", f"{python} -m loopline.cli"), ("python", python)):
        (bin_ / name).write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        (bin_ / name).chmod(0o755)
    setup = SETUP / f"{path.stem}.py"
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"setup": str(setup) if setup.exists() else "", "blocks": [asdict(b) for b in todo]})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_", "AWS_"))}
    env |= {
        "PATH": f"{bin_}{os.pathsep}{env['PATH']}",
        "HOME": str(tmp_path),  # nothing of the reader's machine: caches and configs start empty
        "COLUMNS": "120",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]),
        "DOCS_ROOT": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(plan)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,  # ~30 s on a quiet 2-core machine; far more on a busy one
    )
    print(done.stdout)  # shown with -s: what a reader of the doc would see
    assert done.returncode == 0, f"{path.name}'s examples failed:\n{done.stdout[-8000:]}"


def test_notest_marks_name_a_reason_and_precede_a_fence() -> None:
    for path in DOCS:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "notest" in line and line.startswith("<!--"):
                m = _NOTEST.match(line)
                assert m and m.group(1).strip(), f"{path.name}:{i + 1}: write <!-- notest: the reason -->"
                assert _FENCE.match(lines[i + 1]), f"{path.name}:{i + 1}: put the mark right above a fence"


def test_console_blocks_yield_their_commands() -> None:
    block = Block("x.md", 1, "console", "$ a --x \\\n    --y\noutput\n$ b\nmore output\n", None)
    assert commands(block) == "a --x \\\n    --y\nb\n"
