"""Nothing is lost: concurrent writers into one SQLite file, and a process killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loopline.config import Settings
from loopline.metadata.engine import create_store_engine
from loopline.tracking import Client

WRITER = """
import sys
from loopline.config import Settings
from loopline.tracking import Client
client = Client(Settings.from_env({{}}, tracking_uri={uri!r}, artifacts_uri={art!r}))
exp = client.set_experiment("concurrent").experiment_id
run = client.create_run(exp, run_name=f"writer-{{sys.argv[1]}}")
for i in range(10_000):
    client.log_metric(run.info.run_id, "m", float(i), step=i)
client.set_terminated(run.info.run_id)
"""


def test_four_processes_log_10k_metrics_each_into_one_sqlite_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    code = WRITER.format(uri=uri, art=str(tmp_path / "art"))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)], stderr=subprocess.PIPE) for n in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    client = Client(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "art")))
    runs = client.search_runs(filter_string="run_name LIKE 'writer-%'")
    assert len(runs) == 4
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "m")
        assert len(history) == 10_000 and {m.step for m in history} == set(range(10_000))


KILLED = """
import sys, time
import loopline
loopline.set_tracking_uri({uri!r}, {art!r})
run = loopline.start_run(experiment="killed")
for i in range(3000):
    loopline.log_metric("m", i, step=i)
loopline.flush()
print(run.run_id, flush=True)
for i in range(3000, 10**9):  # keep logging (unflushed) until killed
    loopline.log_metric("m", i, step=i)
    if i % 1000 == 0:
        time.sleep(0.001)
"""


def test_sigkill_after_flush_keeps_flushed_metrics_and_store_opens_cleanly(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'k.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED.format(uri=uri, art=str(tmp_path / "a"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(0.5)  # let background flushes run while the process is mid-write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    engine = create_store_engine(uri)  # opens (and checks the schema) without complaint
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    client = Client(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "a")))
    steps = [m.step for m in client.get_metric_history(run_id, "m")]
    assert set(range(3000)) <= set(steps)
    assert len(steps) == len(set(steps))  # no batch written twice
