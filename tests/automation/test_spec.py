"""Reading ``loopline.yaml``: the objects it declares, and every problem at once with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.automation.spec import InvalidSpec, MonitorSpec, Spec, load_spec, parse_spec
from loopline.automation.types import Gate, GateRule, Policy, RolloutStep, Trigger
from loopline.serving.types import DeploymentSpec, Route

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "loop" / "loopline.yaml"


def problems(text: str, **kwargs: object) -> list[tuple[int | None, str, str]]:
    """(line, path, message) of each problem ``text`` has."""
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(text, **kwargs)  # type: ignore[arg-type]
    return [(p.line, p.path, p.message) for p in caught.value.problems]


def test_the_example_declares_a_deployment_a_monitor_and_a_policy() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.source == "loopline.yaml"
    assert spec.deployments == (DeploymentSpec("churn-prod", (Route("models:/churn@champion", 100),)),)
    assert spec.monitors == (
        MonitorSpec(
            "churn-drift",
            "deployments:/churn-prod",
            "datasets:/churn@v1",
            "1h",
            "*/5 * * * *",
            thresholds={"drift_share": 0.3, "accuracy": 0.8},
            target_column="churned",
        ),
    )
    (policy,) = spec.policies
    assert (policy.name, policy.model, policy.deployment, policy.pipeline) == (
        "churn",
        "churn",
        "churn-prod",
        f"{EXAMPLE.parent / 'train.py'}:train",  # a pipeline file is relative to the declaring file
    )
    assert policy.triggers == (
        Trigger("alert", monitor="churn-drift"),
        Trigger("dataset", dataset="churn"),
        Trigger("schedule", cron="0 3 * * 0"),
    )
    assert policy.gate == Gate(
        (GateRule("metric", metric="roc_auc", max_loss=0.005), GateRule("latency", p99_ms=50)),
        dataset="datasets:/churn-holdout@latest",
        target="churned",
    )
    assert policy.rollout == (
        RolloutStep("shadow", 100, 60),
        RolloutStep("canary", 5, 120),
        RolloutStep("canary", 25, 300),
    )
    assert (policy.health.max_error_rate, policy.health.max_p99_ms, policy.approval) == (0.01, 50, False)
    assert policy.labels == {}  # apply adds its own label when it writes the policy


GOOD_POLICY = """\
    model: churn
    deployment: churn-prod
    pipeline: "train.py:train"
    gate: {rules: [{kind: metric, metric: roc_auc}]}
"""


def test_unknown_keys_at_every_level_are_reported_with_their_line_and_a_guess() -> None:
    text = f"""\
version: 1
deploymnets: {{}}
deployments:
  churn-prod:
    routes: [{{model: "models:/churn/1", wieght: 3}}]
    shadw: null
monitors:
  drift: {{target: "deployments:/churn-prod", options: {{tresholds: {{}}}}}}
policies:
  churn:
{GOOD_POLICY}    rolout: []
    triggers: [{{kind: alert, monitr: drift}}]
"""
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(text)
    found = [(p.line, p.path, p.message, p.hint.split("?")[0]) for p in caught.value.problems]
    assert found == [
        (2, "deploymnets", "unknown key 'deploymnets'.", "Did you mean 'deployments'"),
        (5, "deployments.churn-prod.routes[0].wieght", "unknown key 'wieght'.", "Did you mean 'weight'"),
        (6, "deployments.churn-prod.shadw", "unknown key 'shadw'.", "Did you mean 'shadow'"),
        (8, "monitors.drift.options.tresholds", "unknown key 'tresholds'.", "Did you mean 'thresholds'"),
        (15, "policies.churn.rolout", "unknown key 'rolout'.", "Did you mean 'rollout'"),
        (16, "policies.churn.triggers[0].monitr", "unknown key 'monitr'.", "Did you mean 'monitor'"),
    ]
    message = caught.value.message
    assert message.startswith("loopline.yaml: 6 problems, nothing was applied:\n")
    assert "loopline.yaml:15: policies.churn.rolout: unknown key 'rolout'.\n    hint: Did you mean" in message


def test_the_types_own_checks_are_reported_where_the_value_is() -> None:
    text = f"""\
version: 1
deployments:
  churn-prod:
    routes:
      - {{model: "models:/churn", weight: 100}}
monitors:
  drift:
    target: "deployments:/churn-prod"
    window: "5 minutes"
policies:
  churn:
{GOOD_POLICY.replace("[{kind: metric, metric: roc_auc}]", "[{kind: metric, max_loss: 0.1}]")}\
    triggers:
      - {{kind: schedule, cron: "every sunday"}}
      - {{kind: webhook}}
    rollout: [{{stage: canary, weight: 500}}]
"""
    assert problems(text) == [
        (5, "deployments.churn-prod.routes[0]", "'models:/churn' names no version or alias."),
        (9, "monitors.drift.window", "Invalid window '5 minutes'."),
        (15, "policies.churn.gate.rules[0]", "A metric rule needs 'metric' (e.g. roc_auc)."),
        (17, "policies.churn.triggers[0].cron", "Invalid cron expression 'every sunday'."),
        (18, "policies.churn.triggers[1].kind", "Unknown trigger kind 'webhook'."),
        (
            19,
            "policies.churn.rollout[0].weight",
            "The canary step's weight must be between 0.0001 and 100, got 500.",
        ),
    ]


def test_a_value_of_the_wrong_type_is_an_error_not_a_surprise() -> None:
    # approval: "no" would be a true value in Python: it must not pass as one
    text = f"""\
version: 1
policies:
  churn:
{GOOD_POLICY}    approval: "no"
    debounce_s: soon
    rollout: [{{stage: shadow, weight: true}}]
    params: [1, 2]
"""
    assert problems(text) == [
        (8, "policies.churn.approval", "'no' is not true or false."),
        (9, "policies.churn.debounce_s", "'soon' is not a number."),
        (10, "policies.churn.rollout[0].weight", "True is not a number."),
        (11, "policies.churn.params", "params must be a mapping, not list."),
    ]


def test_missing_fields_bad_names_and_the_version() -> None:
    text = """\
version: 2
deployments:
  -bad-:
    routes: [{model: "models:/churn/1"}]
  empty: {}
policies:
  churn:
    model: churn
    pipeline: train
    gate: {rules: []}
"""
    found = problems(text)
    assert found[0] == (1, "version", "version 2 is not supported.")
    assert found[1][:2] == (3, "deployments.-bad-") and "Invalid deployment name" in found[1][2]
    assert found[2:] == [
        (5, "deployments.empty", "a deployment needs 'routes'."),
        (7, "policies.churn", "a policy needs 'deployment'."),
    ]


def test_yaml_errors_and_duplicate_keys_have_lines_too() -> None:
    assert problems("version: 1\ndeployments:\n  x: [1, 2\n") == [
        (4, "", "not valid YAML: expected ',' or ']', but got '<stream end>'."),
    ]
    assert problems("version: 1\nmonitors: {}\nmonitors: {}\n") == [
        (3, "monitors", "the key 'monitors' appears twice."),
    ]
    assert problems("") == [(None, "", "the file has no 'version'.")]
    assert problems("- 1\n") == [(1, "", "loopline.yaml must be a mapping (key: value), not list.")]


def test_a_monitor_reference_file_is_relative_to_the_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ref.parquet").write_bytes(b"x")
    (tmp_path / "conf" / "loopline.yaml").write_text(
        "version: 1\nmonitors:\n  m: {target: 'models:/churn@champion', reference: ref.parquet}\n"
        "  n: {target: 'models:/churn@champion', reference: missing.parquet}\n"
    )
    with pytest.raises(InvalidSpec) as caught:
        load_spec(tmp_path / "conf" / "loopline.yaml")
    ((line, path, message),) = [(p.line, p.path, p.message) for p in caught.value.problems]
    assert (line, path) == (4, "monitors.n.reference") and "missing.parquet" in message
    (tmp_path / "conf" / "missing.parquet").write_bytes(b"x")
    spec = load_spec(tmp_path / "conf" / "loopline.yaml")
    assert spec.monitors[0].reference == str(tmp_path / "conf" / "ref.parquet")


def test_the_same_objects_in_python_and_names_declared_twice() -> None:
    policy = Policy("churn", "churn", "churn-prod", "train.py:train", Gate(()))
    spec = Spec(policies=(policy,), monitors=(MonitorSpec("m", "models:/churn@champion"),))
    assert spec.policies == (policy,) and spec.source == "<python>"
    with pytest.raises(InvalidSpec, match=r"<python>: policies.churn: declared twice."):
        Spec(policies=(policy, policy))
