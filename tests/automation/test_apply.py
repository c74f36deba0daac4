"""``plan`` / ``apply`` / ``check`` / prune on a real SQLite store (and through a real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import serve_loopline

from loopline.automation import events as ev
from loopline.automation.apply import FieldChange, apply, check, plan
from loopline.automation.spec import InvalidSpec, MonitorSpec, Spec, parse_spec
from loopline.automation.store import open_automation_store
from loopline.automation.types import Gate, GateRule, Policy, RolloutState, RolloutStep, Trigger
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import NotFound
from loopline.monitoring.monitors import Monitors
from loopline.registry.store import open_registry_store
from loopline.serving.deployments import deployment_history, get_deployment, list_deployments, set_deployment
from loopline.tracking import Client
from loopline.tracking.lineage import open_lineage_reader

FILE = """\
version: 1
deployments:
  churn-prod:
    routes: [{model: "models:/churn@champion", weight: 100}]
monitors:
  churn-drift: {target: "deployments:/churn-prod", window: 1h, options: {thresholds: {drift_share: 0.3}}}
policies:
  churn:
    model: churn
    deployment: churn-prod
    pipeline: "train.py:train"
    triggers: [{kind: alert, monitor: churn-drift}]
    gate: {rules: [{kind: metric, metric: roc_auc, max_loss: 0.005}]}
    rollout: [{stage: canary, weight: 10, bake_s: 60}]
"""


def seed(db: str, art: str) -> None:
    """churn versions 1-3 in the registry, champion = 1: what deployment routes resolve to."""
    registry = open_registry_store(Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=art)))
    registry.create_registered_model("churn")
    for _ in range(3):
        registry.create_model_version("churn", "mlflow-artifacts:/0/r/artifacts/model")
    registry.set_registered_model_alias("churn", "champion", 1)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    db, art = f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "art")
    seed(db, art)
    c = Client(Settings.from_env({}, tracking_uri=db, artifacts_uri=art, user="alice"))
    yield c
    c.close()


def actions(p: object) -> list[tuple[str, str, str]]:
    return [(c.kind, c.name, c.action) for c in p.changes]  # type: ignore[attr-defined]


def apply_events(client: Client) -> list[dict[str, object]]:
    return [dict(e.payload) for e in open_lineage_reader(client.context).events(action=ev.APPLY)]


def test_plan_apply_and_a_second_apply_changes_nothing(client: Client) -> None:
    spec = parse_spec(FILE)
    first = plan(spec, client=client)
    assert actions(first) == [
        ("deployment", "churn-prod", "create"),
        ("monitor", "churn-drift", "create"),
        ("policy", "churn", "create"),
    ]
    assert first.drift and not check(spec, client=client)
    assert list_deployments(client=client) == []  # a plan writes nothing

    assert actions(apply(spec, client=client)) == actions(first)
    deployed = get_deployment("churn-prod", client=client)
    assert deployed.revision == 1 and deployed.resolved == {"models:/churn@champion": "models:/churn/1"}
    assert deployment_history("churn-prod", client=client)[0].comment == "loopline apply (loopline.yaml)"
    monitor = Monitors(context=client.context).get("churn-drift")
    assert (monitor.target, monitor.window, monitor.config["labels"]) == (
        "deployments:/churn-prod",
        "1h",
        {"managed-by": "apply"},
    )
    assert monitor.config["thresholds"]["drift"] == {"drift_share": 0.3}
    policy = open_automation_store(client.context).get_policy("churn")
    assert policy.managed and policy.triggers == (Trigger("alert", monitor="churn-drift"),)
    assert apply_events(client) == [
        {
            "source": "loopline.yaml",
            "created": ["deployments:/churn-prod", "monitors:/churn-drift", "policies:/churn"],
            "changed": [],
            "deleted": [],
        }
    ]

    again = apply(spec, client=client)
    assert {c.action for c in again.changes} == {"unchanged"} and again.writes == ()
    assert check(spec, client=client)
    assert get_deployment("churn-prod", client=client).revision == 1  # no new revision
    assert len(apply_events(client)) == 1  # nothing changed: no event either
    assert [e.action for e in open_lineage_reader(client.context).events("policies:/churn")] == [
        "policy.create"
    ]

    # the same objects declared in Python are the same plan: nothing to do
    python = Spec(
        deployments=(deployed.spec,),
        monitors=(MonitorSpec("churn-drift", "deployments:/churn-prod", thresholds={"drift_share": 0.3}),),
        policies=(
            Policy(
                "churn",
                "churn",
                "churn-prod",
                f"{Path('train.py').resolve()}:train",  # what the file's relative path resolves to
                Gate((GateRule("metric", metric="roc_auc", max_loss=0.005),)),
                triggers=(Trigger("alert", monitor="churn-drift"),),
                rollout=(RolloutStep("canary", 10, 60),),
            ),
        ),
    )
    assert {c.action for c in plan(python, client=client).changes} == {"unchanged"}


def test_a_changed_file_is_drift_with_the_fields_that_differ(client: Client) -> None:
    apply(parse_spec(FILE), client=client)
    changed = parse_spec(
        FILE.replace("weight: 100}]", 'weight: 90}, {model: "models:/churn/2", weight: 10}]')
        .replace("window: 1h", "window: 30m")
        .replace("max_loss: 0.005", "max_loss: 0.01")
    )
    p = plan(changed, client=client)
    assert [(c.action, c.fields) for c in p.changes] == [
        (
            "update",
            (
                FieldChange("routes[0].weight", 100, 90),
                FieldChange("routes[1].model", None, "models:/churn/2"),
                FieldChange("routes[1].weight", None, 10),
            ),
        ),
        ("update", (FieldChange("window", "1h", "30m"),)),
        ("update", (FieldChange("gate.rules[0].max_loss", 0.005, 0.01),)),
    ]
    assert not check(changed, client=client)
    apply(changed, client=client)
    assert check(changed, client=client) and not check(parse_spec(FILE), client=client)
    assert get_deployment("churn-prod", client=client).revision == 2
    assert Monitors(context=client.context).get("churn-drift").window == "30m"
    assert apply_events(client)[0]["changed"] == [
        "deployments:/churn-prod",
        "monitors:/churn-drift",
        "policies:/churn",
    ]


def test_a_file_naming_what_exists_nowhere_applies_nothing(client: Client) -> None:
    bad = parse_spec(
        FILE.replace("models:/churn@champion", "models:/churn/9")
        .replace("deployment: churn-prod", "deployment: churn-prd")
        .replace("monitor: churn-drift}", "monitor: drift}")
    )
    with pytest.raises(InvalidSpec) as caught:
        apply(bad, client=client)
    assert [(p.line, p.path, p.message) for p in caught.value.problems] == [
        (4, "deployments.churn-prod.routes[0]", "models:/churn/9 is not a registered model version."),
        (10, "policies.churn.deployment", "no deployment 'churn-prd' in the file or the store."),
        (12, "policies.churn.triggers[0].monitor", "no monitor 'drift' in the file or the store."),
    ]
    assert caught.value.problems[1].hint.startswith("Did you mean 'churn-prod'?")
    assert list_deployments(client=client) == [] and Monitors(context=client.context).list_monitors() == []
    assert open_automation_store(client.context).list_policies() == [] and apply_events(client) == []

    # a policy may name a deployment made by hand, outside the file
    set_deployment("churn-prd", "models:/churn/1", client=client)
    ok = parse_spec(
        "version: 1\npolicies:\n  churn:\n    model: churn\n    deployment: churn-prd\n"
        '    pipeline: "train.py:train"\n    gate: {rules: []}\n'
    )
    assert actions(apply(ok, client=client)) == [("policy", "churn", "create")]


def test_prune_deletes_only_what_apply_made(client: Client) -> None:
    both = FILE.replace(
        "monitors:",
        '  churn-b:\n    routes: [{model: "models:/churn/2", weight: 1}]\nmonitors:\n'
        '  b-drift: {target: "deployments:/churn-b"}',
    )
    apply(parse_spec(both), client=client)
    # made by hand, beside the file: never pruned
    set_deployment("hand", "models:/churn/3", client=client)
    monitors = Monitors(context=client.context)
    monitors.create("hand-drift", deployment="hand")
    store = open_automation_store(client.context)
    store.put_policy(Policy("hand", "churn", "hand", "t.py:f", Gate(())))

    p = plan(parse_spec(FILE), client=client)
    assert actions(p) == [
        ("deployment", "churn-prod", "unchanged"),
        ("deployment", "churn-b", "delete"),
        ("monitor", "churn-drift", "unchanged"),
        ("monitor", "b-drift", "delete"),
        ("policy", "churn", "unchanged"),
    ]
    assert p.changes[1].note == "made by apply, no longer in the file: --prune deletes it"
    assert p.drift and p.writes == ()
    apply(parse_spec(FILE), client=client)
    assert get_deployment("churn-b", client=client)  # kept without --prune

    pruned = apply(parse_spec(FILE), prune=True, client=client)
    assert [c.uri for c in pruned.writes] == ["deployments:/churn-b", "monitors:/b-drift"]
    with pytest.raises(NotFound):
        get_deployment("churn-b", client=client)
    assert sorted(d.name for d in list_deployments(client=client)) == ["churn-prod", "hand"]
    assert sorted(m.name for m in monitors.list_monitors()) == ["churn-drift", "hand-drift"]
    assert [x.name for x in store.list_policies()] == ["churn", "hand"]
    assert apply_events(client)[0]["deleted"] == [
        "monitors:/b-drift",
        "deployments:/churn-b",
    ]  # monitor first
    assert check(parse_spec(FILE), client=client)

    # a hand-made deployment of the same name later is not apply's, though its name was
    set_deployment("churn-b", "models:/churn/2", client=client)
    assert "churn-b" not in {c.name for c in plan(parse_spec(FILE), prune=True, client=client).changes}


def test_declaring_a_hand_made_object_adopts_it_when_apply_writes_it(client: Client) -> None:
    store = open_automation_store(client.context)
    spec = parse_spec(FILE)
    store.put_policy(spec.policies[0])  # by hand: no label
    set_deployment("churn-prod", "models:/churn@champion", client=client)  # by hand, the same spec
    p = plan(spec, client=client)
    assert [(c.action, c.fields) for c in p.changes if c.kind == "policy"] == [
        ("update", (FieldChange("labels.managed-by", None, "apply"),))
    ]
    assert actions(p)[0] == ("deployment", "churn-prod", "unchanged")
    apply(spec, client=client)
    assert store.get_policy("churn").managed
    # the deployment apply never wrote stays the hand's: --prune of a file without it leaves it
    rest = parse_spec("version: 1\n")
    assert [(c.kind, c.name) for c in plan(rest, prune=True, client=client).changes] == [
        ("monitor", "churn-drift"),
        ("policy", "churn"),
    ]


def test_a_rollout_moving_traffic_holds_its_deployment(client: Client) -> None:
    spec = parse_spec(FILE)
    apply(spec, client=client)
    store = open_automation_store(client.context)
    rollout = store.create_rollout(
        spec.policies[0], trigger={"kind": "manual"}, base_revision=1, champion="models:/churn/1"
    )
    # already while it trains: the controller will build its steps from the revision it began at
    moved = parse_spec(FILE.replace("weight: 100", "weight: 50"))
    assert next(c.action for c in plan(moved, client=client).changes) == "held"
    store.advance(
        rollout.id,
        expected_state=RolloutState.TRAINING,
        expected_step=-1,
        event=ev.ROLLOUT_STEP,
        state=RolloutState.ROLLING,
        step=0,
    )
    canary = set_deployment(
        "churn-prod", [("models:/churn@champion", 90), ("models:/churn/2", 10)], client=client
    )  # what the controller does
    p = plan(spec, client=client)
    (held,) = [c for c in p.changes if c.kind == "deployment"]
    assert held.action == "held" and held.note.startswith(
        f"rollout {rollout.id} of policy churn owns its traffic (rolling)"
    )
    assert not p.drift and check(spec, client=client)
    apply(spec, client=client)
    assert get_deployment("churn-prod", client=client).revision == canary.revision  # not reverted

    store.advance(
        rollout.id,
        expected_state=RolloutState.ROLLING,
        expected_step=0,
        event=ev.ROLLBACK,
        state=RolloutState.ROLLED_BACK,
    )
    assert not check(spec, client=client)  # the rollout ended: the weights are the file's again to set


def test_apply_through_a_server_with_only_an_http_uri(tmp_path: Path) -> None:
    db, art = f"sqlite:///{tmp_path / 'srv.db'}", str(tmp_path / "art")
    seed(db, art)
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art) as url:
        client = Client(Settings.from_env({}, tracking_uri=url))
        assert client.context.is_remote
        spec = parse_spec(FILE)
        assert {c.action for c in apply(spec, client=client).changes} == {"create"}
        assert check(spec, client=client)
        assert [c.action for c in apply(spec, client=client).changes] == ["unchanged"] * 3
        assert get_deployment("churn-prod", client=client).revision == 1
        assert open_automation_store(client.context).get_policy("churn").managed
        monitor = Monitors(context=client.context).get("churn-drift")
        assert monitor.config["labels"] == {"managed-by": "apply"}
        recorded = [dict(e.payload) for e in open_lineage_reader(client.context).events(action=ev.APPLY)]
        assert len(recorded) == 1 and "policies:/churn" in recorded[0]["created"]  # the second wrote nothing
        client.close()
