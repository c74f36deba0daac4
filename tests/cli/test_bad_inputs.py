"""Bad input to every command group, as a new user types it: the real CLI in a subprocess must exit
with the documented code (2 bad input, 1 refused, 3 unreachable), print a message naming the
problem, never a traceback, and leave no file or store behind when it fails or only reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopline.config import Settings
from loopline.data import DataClient
from loopline.registry import RegistryClient, log_model
from loopline.serving.deployments import set_deployment
from loopline.tracking import Client

PG_MISSING = "postgresql://postgres@127.0.0.1:5432/loopline_no_such_db"
PG_DOWN = "postgresql://postgres@127.0.0.1:1/loopline"  # nothing listens on port 1

FEATURE_DEFS = """
from datetime import timedelta
from loopline.features import Entity, FeatureView, Field, FileSource, Float64
driver = Entity(name="driver", join_keys=["driver_id"])
driver_stats = FeatureView(name="driver_stats", entities=[driver], source=FileSource(path={path!r}),
                           schema=[Field("conv_rate", Float64)], ttl=timedelta(days=3650))
"""


@dataclass
class Home:
    """A seeded store (experiment, run, model churn@champion, dataset d, deployment prod, a feature
    view keyed by an integer) and the bad files the cases read."""

    root: Path
    env: dict[str, str]
    run_id: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("bad-inputs")
    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{root / 'store' / 'loopline.db'}", artifacts_uri=str(root / "art")
    )
    client = Client(settings)
    exp = client.create_experiment("cli")
    run_id = client.create_run(exp, run_name="r").info.run_id
    client.log_metric(run_id, "acc", 0.9, synchronous=True)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 0, 1, 1]})
    log_model(
        LogisticRegression().fit(frame[["a"]], frame["y"]),
        registered_model_name="churn",
        run_id=run_id,
        client=client,
    )
    RegistryClient(client).set_alias("churn", "champion", 1)
    client.set_terminated(run_id)
    set_deployment("prod", [("models:/churn@champion", 100)], client=client)
    frame.to_csv(root / "good.csv", index=False)
    DataClient(context=client.context).add(root / "good.csv", "d")
    (root / "ragged.csv").write_text("a,y\n1,0\n2,1,7\n3\n")
    frame.to_parquet(root / "good.parquet")
    (root / "trunc.parquet").write_bytes((root / "good.parquet").read_bytes()[:100])
    (root / "bad-sql.yaml").write_text(
        "name: s\nexpectations:\n  - {expect: custom, name: bad, sql: 'a >>> 1'}\n"
    )
    (root / "empty.yaml").write_text("name: s\nexpectations: []\n")
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pd.DataFrame({"driver_id": [1001], "conv_rate": [0.5], "event_timestamp": [when]}).to_parquet(
        root / "stats.parquet"
    )
    (root / "defs.py").write_text(FEATURE_DEFS.format(path=str(root / "stats.parquet")))
    from loopline.features import FeatureStore

    FeatureStore(settings).apply(root / "defs.py")
    keep = ("PATH", "HOME", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        "LOOPLINE_TRACKING_URI": settings.tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": settings.artifacts_uri,
        "COLUMNS": "250",
        # no AWS credentials from anywhere, and no instance-metadata lookups that wait for a timeout
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(root / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
    }
    yield Home(root, env, run_id)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: str  # a fragment of the message that names the problem
    absent: str = ""  # a path (under the case's folder) that must not exist afterwards
    env: tuple[tuple[str, str], ...] = ()


def case(*args: str, code: int = 2, says: str, absent: str = "", **env: str) -> Case:
    return Case(args, code, says, absent, tuple(env.items()))


# {root}: the seeded home; {here}: the case's own empty folder (its cwd); {run}: the seeded run id.
CASES = {
    # stores that do not exist are named, never created (read commands), whatever the group
    "runs list, a typo'd folder": case(
        "runs", "list", "-t", "{here}/typo-folder", says="No Loopline store at", absent="typo-folder"
    ),
    "runs list, a sqlite path in missing folders": case(
        "runs",
        "list",
        "-t",
        "sqlite:///{here}/nonexistent/dir/x.db",
        says="No Loopline store",
        absent="nonexistent",
    ),
    "runs list, the closest store is suggested": case(
        "runs", "list", "-t", "{root}/stor", says="Did you mean {root}/store/loopline.db", absent="stor"
    ),
    "experiments list, no default store here": case(
        "experiments",
        "list",
        says="No Loopline store at .loopline",
        absent=".loopline",
        LOOPLINE_TRACKING_URI="",
    ),
    "models list": case("models", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "deploy list": case("deploy", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "data status": case("data", "status", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "data list": case("data", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "features list": case("features", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "monitor list": case("monitor", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "pipeline list": case("pipeline", "list", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "events": case("events", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "policies": case("policies", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "dora": case("dora", "-t", "{here}/typo", says="No Loopline store", absent="typo"),
    "gc": case(
        "gc",
        "--store-uri",
        "{here}/typo",
        "--artifacts-uri",
        "{here}/art",
        says="No Loopline store",
        absent="typo",
    ),
    "runs delete on a missing store": case(
        "runs", "delete", "abc", "-t", "{here}/typo", says="No Loopline store", absent="typo"
    ),
    # databases that do not exist or do not answer
    "db upgrade, a PostgreSQL database that does not exist": case(
        "db", "upgrade", PG_MISSING, says='database "loopline_no_such_db" does not exist'
    ),
    "runs list, a PostgreSQL database that does not exist": case(
        "runs", "list", "-t", PG_MISSING, says="does not exist"
    ),
    "server, a PostgreSQL database that does not exist": case(
        "server", "--store-uri", PG_MISSING, "--port", "{port}", says="does not exist"
    ),
    "runs list, PostgreSQL down": case("runs", "list", "-t", PG_DOWN, code=3, says="could not be reached"),
    "runs list, a server that is down": case(
        "runs", "list", "-t", "http://127.0.0.1:1", code=3, says="127.0.0.1:1"
    ),
    "experiments list, not a database URI": case(
        "experiments", "list", "-t", "mysql://x/y", says="Unsupported metadata store"
    ),
    # servers: a port in use, refused before anything is made
    "server, a port in use": case("server", "--port", "{busy}", says="already in use", absent=".loopline"),
    "serve, a port in use": case("serve", "{root}/no-model", "--port", "{busy}", says="already in use"),
    # unknown names
    "runs show, an unknown run": case("runs", "show", "0" * 32, says="not found"),
    "runs list, a bad filter": case("runs", "list", "-F", "metrics.acc >>", says="metrics.acc"),
    "experiments delete, an unknown experiment": case(
        "experiments", "delete", "nope", says="No experiment named 'nope'"
    ),
    "models show, an unknown model": case("models", "show", "nope", says="name=nope not found"),
    "deploy show, an unknown deployment": case("deploy", "show", "nope", says="No deployment named 'nope'"),
    "data show, an unknown dataset": case("data", "show", "datasets:/nope/1", says="No dataset named 'nope'"),
    "pipeline show, an unknown run": case("pipeline", "show", "nope", says="nope"),
    # references are checked when written or read
    "lineage, an unknown dataset version": case("lineage", "datasets:/x/999", says="No dataset named 'x'"),
    "lineage, an unknown model alias": case("lineage", "models:/nope@champion", says="name=nope not found"),
    "lineage, not a URI": case("lineage", "nonsense", says="'nonsense' is not an object URI"),
    "lineage, an unknown run": case("lineage", "runs:/abc", says="id=abc not found"),
    "deploy set, an unknown model": case(
        "deploy", "set", "bad", "-r", "models:/nope@x=10", says="models:/nope@x"
    ),
    "monitor create, an unknown deployment": case(
        "monitor", "create", "m", "--deployment", "nope", says="No deployment named 'nope'"
    ),
    "monitor create, an unknown model": case(
        "monitor", "create", "m", "--model", "models:/nope@champion", says="name=nope not found"
    ),
    "monitor create, a threshold typo": case(
        "monitor",
        "create",
        "m",
        "--deployment",
        "prod",
        "--threshold",
        "acuracy=0.8",
        says="Did you mean 'accuracy'",
    ),
    "monitor create, an unknown drift test": case(
        "monitor", "create", "m", "--deployment", "prod", "--test", "a=nope", says="Unknown drift test 'nope'"
    ),
    "features get, a word for an integer key": case(
        "features", "get", "driver_stats:conv_rate", "-e", "driver_id=abc", says="driver_id is a numeric key"
    ),
    "features get, not KEY=VALUE": case(
        "features", "get", "driver_stats:conv_rate", "-e", "driver_id", says="not KEY=VALUE"
    ),
    # files that cannot be read
    "models evaluate, a ragged CSV": case(
        "models",
        "evaluate",
        "models:/churn/1",
        "-d",
        "{root}/ragged.csv",
        "-y",
        "y",
        says="not a readable csv file",
    ),
    "models evaluate, a truncated Parquet file": case(
        "models",
        "evaluate",
        "models:/churn/1",
        "-d",
        "{root}/trunc.parquet",
        "-y",
        "y",
        says="not a readable parquet file",
    ),
    "data validate, an unparsable sql: expression": case(
        "data",
        "validate",
        "{root}/good.csv",
        "--suite",
        "{root}/bad-sql.yaml",
        says="'a >>> 1' is not a SQL expression",
    ),
    "data validate, an empty suite": case(
        "data", "validate", "{root}/good.csv", "--suite", "{root}/empty.yaml", says="has no expectations"
    ),
    "pipeline run, a missing file": case("pipeline", "run", "{here}/nope.py:flow", says="nope.py"),
    # object stores
    "data push, no credentials": case(
        "data", "push", "d", "--remote", "s3://loopline-test-bucket/x", says="No credentials"
    ),
    "data push, a dead endpoint": case(
        "data",
        "push",
        "d",
        "--remote",
        "s3://loopline-test-bucket/x",
        code=3,
        says="could not be reached",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_ENDPOINT_URL="http://127.0.0.1:1",
        AWS_MAX_ATTEMPTS="1",  # botocore retries a refused connection with backoff otherwise
    ),
}


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def run(
    home: Home, here: Path, args: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=here,
        env={k: v for k, v in env.items() if v},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_message_and_an_exit_code(
    name: str, home: Home, busy_port: int, tmp_path: Path
) -> None:
    from support import free_port

    c = CASES[name]
    fill = {"root": str(home.root), "here": str(tmp_path), "run": home.run_id}
    fill |= {"busy": str(busy_port), "port": str(free_port())}
    args = tuple(a.format(**fill) for a in c.args)
    done = run(home, tmp_path, args, {**home.env, **dict(c.env)})
    out = done.stdout + done.stderr
    assert done.returncode == c.code, out
    assert c.says.format(**fill) in " ".join(out.split()), out  # rich may wrap: compare words
    assert "Traceback" not in out, out
    if c.absent:
        assert not (tmp_path / c.absent).exists(), f"{c.absent} was created"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a failed command left files behind"


def test_nothing_half_written_after_refused_writes(home: Home, tmp_path: Path) -> None:
    """The refused `deploy set` and `monitor create` of the cases stored nothing."""
    done = run(home, tmp_path, ("deploy", "list", "-f", "json"), home.env)
    assert done.returncode == 0, done.stderr
    assert [d["name"] for d in json.loads(done.stdout)] == ["prod"]
    done = run(home, tmp_path, ("monitor", "list", "-f", "json"), home.env)
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout


def test_debug_shows_the_traceback_as_well(home: Home, tmp_path: Path) -> None:
    for how in (("--debug",), ()):
        env = home.env if how else {**home.env, "LOOPLINE_DEBUG": "1"}
        done = run(home, tmp_path, (*how, "runs", "show", "0" * 32), env)
        assert done.returncode == 2
        assert "Traceback" in done.stderr and "Error: Run with id=" in done.stderr
