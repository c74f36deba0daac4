"""``loopline ci check``: a repository's data and model checks in one command for CI.

It runs, against the store or server the tracking URI names:

- each ``--suite SUITE.yaml=DATA`` validation (a dataset URI or a file), as ``loopline data validate``;
- each policy's gate of ``loopline.yaml`` (or those named with ``--policy``) on its candidate — the
  policy's challenger alias, or ``--candidate models:/name/7`` — against its champion, as the loop's
  controller would judge it (nothing is promoted; the verdict is tagged on the candidate);
- with ``--drift``, ``loopline apply --check``: what runs must match the file.

Exit codes: 0 every check passed; 1 a check failed; 2 bad input (an invalid file, an unknown
policy, a missing candidate); 3 the store or server could not be reached. ``--format json``
prints every check's result for the CI log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from loopline.cli.common import TrackingUri

FAILED, BAD_INPUT, UNREACHABLE = 1, 2, 3
app = typer.Typer(
    help="Checks for CI: validation suites, model gates, drift from loopline.yaml.", no_args_is_help=True
)


@dataclass
class Check:
    kind: str  # suite | gate | drift
    name: str
    passed: bool
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _suites(pairs: list[str], client: Any) -> list[Check]:
    from loopline.data.client import DataClient
    from loopline.data.validation import validate
    from loopline.errors import InvalidInput

    data_client = DataClient(context=client.context) if pairs else None
    out = []
    for pair in pairs:
        suite, sep, data = pair.partition("=")
        if not sep or not suite or not data:
            raise InvalidInput(
                f"Bad --suite {pair!r}.", hint="Use --suite suite.yaml=datasets:/customers@latest"
            )
        result = validate(data, suite, client=data_client)
        failed = [r.label for r in result.failed]
        why = "" if result.success else "failed: " + ", ".join(failed[:10])
        out.append(Check("suite", f"{suite} on {data}", result.success, why, result.statistics()))
    return out


def _gates(spec: Any, policies: list[str], candidates: list[str], client: Any) -> list[Check]:
    from loopline.automation.gates import judge, verdict_to_json
    from loopline.errors import InvalidInput, NotFound
    from loopline.registry import RegistryClient

    declared = {p.name: p for p in spec.policies}
    unknown = [p for p in policies if p not in declared]
    if unknown:
        raise InvalidInput(
            f"No policy {unknown[0]!r} in {spec.source}.", hint="Declared: " + ", ".join(declared)
        )
    chosen = [declared[p] for p in policies] if policies else list(declared.values())
    given = {c.removeprefix("models:/").split("/")[0].split("@")[0]: c for c in candidates}
    registry = RegistryClient(client)
    out = []
    for policy in chosen:
        try:
            challenger = registry.get_model_version_by_alias(policy.model, policy.challenger_alias)
            candidate = given.get(policy.model, f"models:/{policy.model}/{challenger.version}")
        except NotFound:
            if policy.model not in given:
                raise InvalidInput(
                    f"Policy {policy.name}: model {policy.model!r} has no "
                    f"@{policy.challenger_alias} to judge.",
                    hint=f"Pass --candidate models:/{policy.model}/<version>.",
                ) from None
            candidate = given[policy.model]
        try:
            champion = registry.get_model_version_by_alias(policy.model, policy.champion_alias)
            champion_uri: str | None = f"models:/{policy.model}/{champion.version}"
        except NotFound:
            champion_uri = None
        verdict = judge(policy.gate, candidate, champion_uri, client=client)
        out.append(
            Check(
                "gate",
                f"{policy.name}: {candidate}",
                verdict.passed,
                verdict.reason,
                verdict_to_json(verdict),
            )
        )
    return out


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The loop's declaration.")] = Path("loopline.yaml"),
    suite: Annotated[
        list[str] | None, typer.Option("--suite", "-s", help="SUITE.yaml=DATA to validate; repeatable.")
    ] = None,
    policy: Annotated[
        list[str] | None, typer.Option("--policy", "-p", help="Only these policies' gates.")
    ] = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option("--candidate", "-c", help="models:/name/7 to judge instead of @challenger."),
    ] = None,
    gates: Annotated[bool, typer.Option("--gates/--no-gates", help="Judge the policies' gates.")] = True,
    drift: Annotated[
        bool, typer.Option("--drift", help="Also fail when what runs differs from the file.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    tracking_uri: TrackingUri = None,
) -> None:
    """Run the repository's validation suites and model gates; exit 1 when one fails, 2 on bad
    input, 3 when the store or server cannot be reached.

    Example: [bold]loopline ci check loopline.yaml --suite suites/customers.yaml=datasets:/customers@latest[/]
    """
    from rich.console import Console

    from loopline.cli.common import client as make_client
    from loopline.errors import BackendUnavailable, InvalidInput, NotFound

    err = Console(stderr=True)
    try:
        client = make_client(tracking_uri)
        checks = _suites(suite or [], client)
        if gates or drift:
            from loopline.automation.spec import load_spec

            if not file.exists():
                raise InvalidInput(
                    f"No file {file}.",
                    hint="Name the loop's declaration: loopline ci check path/loopline.yaml",
                )
            spec = load_spec(file)
            if gates:
                checks += _gates(spec, policy or [], candidate or [], client)
            if drift:
                from loopline.automation.apply import check as in_sync

                ok = in_sync(spec, client=client)
                checks.append(
                    Check("drift", str(file), ok, "" if ok else "what runs differs: loopline apply --dry-run")
                )
    except (InvalidInput, NotFound) as e:
        err.print(f"[bold red]Bad input:[/] {e.message}", highlight=False, soft_wrap=True)
        if e.hint:
            err.print(f"[dim]Hint:[/] {e.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None
    except Exception as e:  # a server (BackendUnavailable) or a database (OperationalError) out of reach
        if not isinstance(e, BackendUnavailable | ConnectionError) and type(e).__name__ != "OperationalError":
            raise
        err.print(f"[bold red]Unreachable:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(UNREACHABLE) from None
    if fmt == "json":
        typer.echo(json.dumps([c.__dict__ for c in checks], indent=2, default=str))
    else:
        out = Console(soft_wrap=True)
        for c in checks:
            mark = "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
            out.print(f"{mark} {c.kind:<6} {c.name}" + (f" — {c.why}" if c.why else ""), highlight=False)
        if not checks:
            out.print("No checks: name suites with --suite or policies in the file.")
    if not all(c.passed for c in checks):
        raise typer.Exit(FAILED)
