"""``loopline apply``: make what runs match a :class:`~loopline.automation.spec.Spec`, like ``terraform``.

    spec = load_spec("loopline.yaml")
    p = plan(spec)                  # what would change: create / update / delete / unchanged / held
    apply(spec)                     # do it (deployments, then monitors, then policies); again: no-op
    plan(spec).drift                # what runs differs from the file (`loopline apply --check`)
    apply(spec, prune=True)         # also delete the objects apply made that the file no longer has

**One write path.** Apply writes through the same functions as the CLI: ``set_deployment`` /
``delete_deployment`` (``loopline deploy set``), ``Monitors.create`` / ``delete`` (``loopline monitor
create``), and the automation store's ``put_policy`` / ``delete_policy``, all opened from one client's
context, so it works the same on a database and through a ``loopline server``.

**What apply manages** (what ``--prune`` may delete; never an object made by hand):

- a policy carries the label ``managed-by: apply`` (``types.MANAGED_LABEL``);
- a monitor carries the same label in its config's ``labels`` (an additive option of ``Monitors.create``);
- a deployment has no labels: every revision apply writes has the comment ``loopline apply (<file>)``,
  kept in its history (and as its event's reason), and a deployment whose history holds such a
  revision is managed. Deleting a deployment deletes its history, so one made later by hand under the
  same name is not. This reads a marker the store keeps anyway, where a ``labels`` field on the
  spec would change what every serving process reads and the REST shape for one bit.

A file that declares an existing hand-made object adopts it when it writes it (a policy or monitor
always gets written once, for its label; a deployment only if its spec differs: one already equal
stays unmanaged, so ``--prune`` leaves it).

**Rollouts own traffic.** While a rollout of a deployment is active (training to promotion), the
controller sets its weights from the revision the rollout began at (and writes that one back when it
promotes or rolls back); apply does not fight it: the deployment's change is ``held`` (shown, not
written, not drift) until the rollout ends, and the next apply makes it.

Every problem a plan finds (a policy's deployment or monitor exists nowhere, a route's model version
is not registered, and everything ``spec.py`` checks) is reported at once with its line, before
anything is written. An apply that wrote something appends one ``loop.apply`` event with the URIs it
created, changed and deleted.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from loopline.automation.spec import InvalidSpec, MonitorSpec, Problem, Spec, check_monitor
from loopline.automation.store import AutomationStore, open_automation_store
from loopline.automation.types import MANAGED_LABEL, Policy, Rollout, policy_to_json
from loopline.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from loopline.monitoring.monitors import Monitors
    from loopline.monitoring.types import Monitor
    from loopline.serving.types import Deployment, DeploymentSpec
    from loopline.tracking import Client

Kind = Literal["deployment", "monitor", "policy"]
Action = Literal["create", "update", "delete", "unchanged", "held"]
KINDS: tuple[Kind, ...] = ("deployment", "monitor", "policy")
MARK = "loopline apply"  # the comment prefix of the deployment revisions apply writes
MANAGED = {MANAGED_LABEL: "apply"}


@dataclass(frozen=True)
class FieldChange:
    """One leaf of an object that differs: ``gate.rules[0].max_loss``, before and after (None: absent)."""

    path: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class Change:
    """What a plan does to one object."""

    kind: Kind
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    note: str = ""
    revision: int = 0  # a deployment's revision as read (written with it as expected_revision)

    @property
    def uri(self) -> str:
        return f"{self.kind}s:/{self.name}" if self.kind != "policy" else f"policies:/{self.name}"


@dataclass(frozen=True)
class Plan:
    """Every object the file declares or apply manages, in apply order, and what happens to it."""

    source: str
    changes: tuple[Change, ...]
    prune: bool = False

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def drift(self) -> bool:
        """What runs differs from the file (a held deployment is the controller's, not drift)."""
        return any(c.action in ("create", "update", "delete") for c in self.changes)

    @property
    def writes(self) -> tuple[Change, ...]:
        """The changes ``apply`` makes: creates and updates, and deletes when pruning."""
        acts = ("create", "update", "delete") if self.prune else ("create", "update")
        return tuple(c for c in self.changes if c.action in acts)


def _client(client: Client | None) -> Client:
    from loopline.tracking import default_client

    return client if client is not None else default_client()


# ---- comparing ------------------------------------------------------------------------------------


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """``value`` as dotted paths to its leaves (an empty mapping or list is a leaf)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _leaves(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple) and value:
        out = {}
        for i, v in enumerate(value):
            out |= _leaves(v, f"{prefix}[{i}]")
        return out
    if isinstance(value, list | tuple):
        return {prefix: []}
    return {prefix: value}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> tuple[FieldChange, ...]:
    """The leaves that differ between two JSON-shaped values (None: the object is absent)."""
    old = _leaves(before) if before is not None else {}
    new = _leaves(after) if after is not None else {}
    if before is None or after is None:  # a whole object comes or goes: its empty leaves say nothing
        old, new = ({k: v for k, v in side.items() if v not in (None, [], {})} for side in (old, new))
    keys = list(old) + [k for k in new if k not in old]

    def filled(path: str, side: Mapping[str, Any]) -> bool:  # an empty {} / [] that got items is no change
        return any(k.startswith((path + ".", path + "[")) for k in side)

    return tuple(
        FieldChange(k, old.get(k), new.get(k))
        for k in keys
        if old.get(k) != new.get(k) and not (filled(k, new) or filled(k, old))
    )


def _deployment_view(spec: DeploymentSpec) -> dict[str, Any]:
    out = spec.to_dict()
    del out["name"]
    return out


def _normal_reference(reference: str) -> str:
    # as Monitors.create stores it: a file reference is absolute
    return os.path.abspath(reference) if reference and not reference.startswith("datasets:/") else reference


def _monitor_view(m: Monitor) -> dict[str, Any]:
    """A stored monitor in the file's shape (its thresholds as one mapping, as the file writes them)."""
    config = m.config
    thresholds: dict[str, float] = {}
    for group in (config.get("thresholds") or {}).values():
        thresholds |= group
    return {
        "target": m.target,
        "reference": m.reference,
        "window": m.window,
        "schedule": m.schedule,
        "options": {
            "webhooks": list(config.get("webhooks") or []),
            "thresholds": thresholds,
            "tests": dict(config.get("tests") or {}),
            "target": config.get("target"),
            "categorical": list(config.get("categorical") or []),
        },
        "labels": dict(config.get("labels") or {}),
    }


def _wanted_monitor(spec: MonitorSpec) -> dict[str, Any]:
    return {**spec.to_dict(), "reference": _normal_reference(spec.reference), "labels": dict(MANAGED)}


def _wanted_policy(policy: Policy) -> Policy:
    return dataclasses.replace(policy, labels={**policy.labels, **MANAGED})


def _policy_view(policy: Policy) -> dict[str, Any]:
    out = policy_to_json(policy)
    del out["name"]
    return out


# ---- what runs --------------------------------------------------------------------------------------


@dataclass
class _World:
    """What the stores hold now."""

    deployments: dict[str, Deployment]
    monitors: dict[str, Monitor]
    policies: dict[str, Policy]
    rolling: dict[str, Rollout]  # deployment name -> its active rollout


def _read(client: Client, store: AutomationStore, monitors: Monitors) -> _World:
    from loopline.serving.deployments import list_deployments

    rolling = {r.deployment: r for r in store.list_rollouts(active=True, limit=1000)}
    return _World(
        {d.name: d for d in list_deployments(client=client)},
        {m.name: m for m in monitors.list_monitors()},
        {p.name: p for p in store.list_policies()},
        rolling,
    )


def _deployment_managed(name: str, client: Client) -> bool:
    """Whether apply ever wrote a revision of ``name`` (its history holds the mark)."""
    from loopline.serving.deployments import deployment_store

    store = deployment_store(client)
    token = None
    while True:
        page = store.list_revisions(name, 1000, token)
        if any(r.comment.startswith(MARK) for r in page.items):
            return True
        if not (token := page.next_page_token):
            return False


def _monitor_managed(m: Monitor) -> bool:
    return (m.config.get("labels") or {}).get(MANAGED_LABEL) == MANAGED[MANAGED_LABEL]


# ---- checking what needs the store ----------------------------------------------------------------


def _hint(name: str, known: Iterable[str], what: str, how: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return (f"Did you mean {close[0]!r}? " if close else "") + f"Declare it under {what}: or {how}."


def _problems(spec: Spec, world: _World, pruned: set[str], client: Client) -> list[Problem]:
    """What the file names that exists nowhere: a policy's deployment or monitor, a monitor's
    deployment, a route's model version."""
    out: list[Problem] = []
    deployments = {d.name for d in spec.deployments} | {
        n for n in world.deployments if f"deployments:/{n}" not in pruned
    }
    monitors = {m.name for m in spec.monitors} | {n for n in world.monitors if f"monitors:/{n}" not in pruned}
    for m in spec.monitors:
        path = f"monitors.{m.name}"
        try:
            check_monitor(m)
        except InvalidInput as e:
            out.append(spec.problem(path, e.message, e.hint))
        target = m.target.removeprefix("deployments:/")
        if m.target.startswith("deployments:/") and target not in deployments:
            hint = _hint(target, deployments, "deployments", "create it with loopline deploy set")
            out.append(
                spec.problem(f"{path}.target", f"no deployment {target!r} in the file or the store.", hint)
            )
    for p in spec.policies:
        path = f"policies.{p.name}"
        if p.deployment not in deployments:
            hint = _hint(p.deployment, deployments, "deployments", "create it with loopline deploy set")
            out.append(
                spec.problem(
                    f"{path}.deployment", f"no deployment {p.deployment!r} in the file or the store.", hint
                )
            )
        for i, t in enumerate(p.triggers):
            if t.kind == "alert" and t.monitor not in monitors:
                hint = _hint(str(t.monitor), monitors, "monitors", "create it with loopline monitor create")
                out.append(
                    spec.problem(
                        f"{path}.triggers[{i}].monitor",
                        f"no monitor {t.monitor!r} in the file or the store.",
                        hint,
                    )
                )
    return out


def _unregistered(spec: Spec, changes: Iterable[Change], client: Client) -> list[Problem]:
    """The routes and shadows of deployments about to be written whose model version is not registered
    (the deployment store would refuse them half-way through an apply)."""
    from loopline.registry import RegistryClient
    from loopline.uris import parse

    writing = {c.name for c in changes if c.kind == "deployment" and c.action in ("create", "update")}
    registry: RegistryClient | None = None
    out: list[Problem] = []
    for d in spec.deployments:
        if d.name not in writing:
            continue
        uris = [(f"routes[{i}]", r.model) for i, r in enumerate(d.routes)]
        uris += [("shadow", d.shadow.model)] if d.shadow is not None else []
        for where, uri in uris:
            if not uri.startswith("models:/"):
                continue
            registry = registry or RegistryClient(client)
            ref = parse(uri)
            try:
                if ref.alias is not None:
                    registry.get_model_version_by_alias(ref.name, ref.alias)
                else:
                    registry.get_model_version(ref.name, str(ref.version))
            except NotFound:
                out.append(
                    spec.problem(
                        f"deployments.{d.name}.{where}",
                        f"{uri} is not a registered model version.",
                        "Register it first (or name a version that exists: loopline models list).",
                    )
                )
    return out


# ---- planning -------------------------------------------------------------------------------------


def _decide(kind: Kind, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Change:
    if before is None:
        return Change(kind, name, "create", diff(None, after))
    fields = diff(before, after)
    return Change(kind, name, "update" if fields else "unchanged", fields)


def plan(spec: Spec, *, prune: bool = False, client: Client | None = None) -> Plan:
    """What ``apply`` would do; ``InvalidSpec`` (every problem, with its line) when it cannot."""
    from loopline.monitoring.monitors import Monitors

    c = _client(client)
    store = open_automation_store(c.context)
    world = _read(c, store, Monitors(context=c.context))
    changes: list[Change] = []

    declared = {d.name for d in spec.deployments}
    for d in spec.deployments:
        cur = world.deployments.get(d.name)
        before = _deployment_view(cur.spec) if cur is not None else None
        change = _decide("deployment", d.name, before, _deployment_view(d))
        if cur is not None:
            change = dataclasses.replace(change, revision=cur.revision)
        if change.action == "update" and (r := world.rolling.get(d.name)) is not None:
            note = (
                f"rollout {r.id} of policy {r.policy} owns its traffic ({r.state.value}): kept until it ends"
            )
            change = dataclasses.replace(change, action="held", note=note)
        changes.append(change)
    for name, cur in world.deployments.items():
        if name not in declared and _deployment_managed(name, c):
            changes.append(_orphan("deployment", name, _deployment_view(cur.spec), prune, cur.revision))

    declared = {m.name for m in spec.monitors}
    for m in spec.monitors:
        mon = world.monitors.get(m.name)
        old = _monitor_view(mon) if mon is not None else None
        changes.append(_decide("monitor", m.name, old, _wanted_monitor(m)))
    for name, mon in world.monitors.items():
        if name not in declared and _monitor_managed(mon):
            changes.append(_orphan("monitor", name, _monitor_view(mon), prune))

    declared = {p.name for p in spec.policies}
    for p in spec.policies:
        pol = world.policies.get(p.name)
        was = _policy_view(pol) if pol is not None else None
        changes.append(_decide("policy", p.name, was, _policy_view(_wanted_policy(p))))
    for name, pol in world.policies.items():
        if name not in declared and pol.managed:
            changes.append(_orphan("policy", name, _policy_view(pol), prune))

    pruned = {ch.uri for ch in changes if ch.action == "delete" and prune}
    problems = _problems(spec, world, pruned, c) + _unregistered(spec, changes, c)
    if problems:
        raise InvalidSpec(spec.source, problems)
    return Plan(spec.source, tuple(changes), prune)


def _orphan(kind: Kind, name: str, before: Mapping[str, Any], prune: bool, revision: int = 0) -> Change:
    note = "made by apply, no longer in the file" + ("" if prune else ": --prune deletes it")
    return Change(kind, name, "delete", diff(before, None), note, revision)


# ---- applying -------------------------------------------------------------------------------------


def apply(spec: Spec, *, prune: bool = False, client: Client | None = None) -> Plan:
    """Make what runs match ``spec``: deployments, then monitors, then policies (deletes, with
    ``prune``, in the reverse order). Returns the plan it carried out; applying the same spec again
    changes nothing. Nothing is written when the plan finds a problem (``InvalidSpec``)."""
    from loopline.monitoring.monitors import Monitors

    c = _client(client)
    p = plan(spec, prune=prune, client=c)
    store = open_automation_store(c.context)
    monitors = Monitors(context=c.context)
    wanted: dict[tuple[str, str], Any] = {("deployment", d.name): d for d in spec.deployments}
    wanted |= {("monitor", m.name): m for m in spec.monitors}
    wanted |= {("policy", x.name): x for x in spec.policies}
    done: dict[str, list[str]] = {"created": [], "changed": [], "deleted": []}
    writes = [w for w in p.writes if w.action != "delete"]
    deletes = [w for w in reversed(p.writes) if w.action == "delete"]
    try:
        for change in writes:
            _write(change, wanted[(change.kind, change.name)], c, store, monitors, spec.source)
            done["created" if change.action == "create" else "changed"].append(change.uri)
        for change in deletes:
            _delete(change, c, store, monitors)
            done["deleted"].append(change.uri)
    finally:
        if any(done.values()):
            _record(store, spec.source, done)
    return p


def _write(
    change: Change, obj: Any, client: Client, store: AutomationStore, monitors: Monitors, source: str
) -> None:
    if change.kind == "deployment":
        from loopline.serving.deployments import set_deployment

        set_deployment(
            obj.name,
            [(r.model, r.weight) for r in obj.routes],
            shadow=obj.shadow,
            sticky_header=obj.sticky_header,
            expected_revision=change.revision,  # 0 to create: a change made meanwhile is a Conflict
            comment=f"{MARK} ({source})",
            client=client,
        )
    elif change.kind == "monitor":
        m: MonitorSpec = obj
        watched = m.target.removeprefix("deployments:/")
        monitors.create(
            m.name,
            deployment=watched if m.target.startswith("deployments:/") else None,
            model=None if m.target.startswith("deployments:/") else m.target,
            reference=m.reference or None,
            window=m.window,
            schedule=m.schedule or None,
            webhooks=m.webhooks,
            thresholds=m.thresholds,
            tests=m.tests,
            target=m.target_column,
            categorical=m.categorical,
            labels=MANAGED,
            replace=change.action == "update",
        )
    else:
        store.put_policy(_wanted_policy(obj))


def _delete(change: Change, client: Client, store: AutomationStore, monitors: Monitors) -> None:
    if change.kind == "deployment":
        from loopline.serving.deployments import delete_deployment

        delete_deployment(change.name, expected_revision=change.revision, client=client)
    elif change.kind == "monitor":
        monitors.delete(change.name)
    else:
        store.delete_policy(change.name)


def _record(store: AutomationStore, source: str, done: Mapping[str, list[str]]) -> None:
    """The ``loop.apply`` event (through a server too: the server's store appends it)."""
    store.record_apply(source, done)


def check(spec: Spec, *, client: Client | None = None) -> bool:
    """Whether what runs matches ``spec`` (``loopline apply --check``: exit 1 when not)."""
    return not plan(spec, client=client).drift


# ---- JSON -------------------------------------------------------------------------------------------


def plan_to_json(p: Plan) -> dict[str, Any]:
    """The plan as ``loopline apply --format json`` prints it."""
    return {
        "source": p.source,
        "prune": p.prune,
        "drift": p.drift,
        "summary": {a: p.count(a) for a in ("create", "update", "delete", "unchanged", "held")},
        "changes": [
            {
                "kind": c.kind,
                "name": c.name,
                "uri": c.uri,
                "action": c.action,
                "note": c.note,
                "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in c.fields],
            }
            for c in p.changes
        ],
    }


__all__ = ["Change", "FieldChange", "Plan", "apply", "check", "diff", "plan", "plan_to_json"]
