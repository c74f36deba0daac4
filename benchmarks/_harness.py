"""What every benchmark module shares: result rows, server subprocesses, worker subprocesses.

Each measured phase runs in a fresh worker process (``python -m benchmarks.<module> --worker …``) with
an environment that names exactly one system, so the peers never share an interpreter, an import
cache or a background thread. Servers run in their own session (process group) and are always
stopped, with every descendant they spawned, when the benchmark ends or fails.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MiB = 1 << 20
RESULT_PREFIX = "BENCH-RESULT "

# Variables that would point a client or a server somewhere else than where a phase says.
_SCRUB_PREFIXES = ("MLFLOW_", "LOOPLINE_")
# The peer's usage telemetry is switched off: the machine may be offline and a reporting thread
# that retries in the background is noise, not part of the workload.
_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Options:
    quick: bool = False
    only: frozenset[str] = frozenset()  # empty: every workload

    def wants(self, workload: str) -> bool:
        return not self.only or workload in self.only


@dataclass
class Row:
    """One line of a ratio table. ``ratio`` is always "how many times better Loopline is"."""

    workload: str
    title: str
    unit: str
    peer: float | None  # the peer's figure
    loopline: float | None
    higher_is_better: bool
    goal_ratio: float | None = None
    goal_abs: tuple[Literal["<", ">"], float] | None = None  # on Loopline's figure
    note: str = ""
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if not self.peer or not self.loopline:
            return None
        return self.loopline / self.peer if self.higher_is_better else self.peer / self.loopline

    @property
    def goal(self) -> str:
        parts = []
        if self.goal_ratio is not None:
            parts.append(f">={self.goal_ratio:g}x")
        if self.goal_abs is not None:
            op, value = self.goal_abs
            parts.append(f"{op}{value:g} {self.unit}")
        return ", ".join(parts) or "—"

    @property
    def met(self) -> bool | None:
        if self.goal_ratio is None and self.goal_abs is None:
            return None
        ok = self.error is None
        if self.goal_ratio is not None:
            ok = ok and self.ratio is not None and self.ratio >= self.goal_ratio
        if self.goal_abs is not None:
            op, value = self.goal_abs
            ok = (
                ok
                and self.loopline is not None
                and (self.loopline < value if op == "<" else self.loopline > value)
            )
        return ok

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "goal": self.goal, "met": self.met}


@dataclass
class Report:
    name: str
    title: str
    peer_name: str = "mlflow"  # the column header of the peer's figures
    rows: list[Row] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env.update(_QUIET)
    env.update(extra or {})
    return env


def executable(name: str) -> str:
    """A console script of the benchmark's own environment (``.venv-bench/bin/<name>``)."""
    path = BIN / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make bench` (it installs benchmarks/requirements.txt).")
    return str(path)


# ---- servers ---------------------------------------------------------------------------------


def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


class Server:
    """A server subprocess in its own session; ``stop`` ends it and everything it spawned."""

    def __init__(self, name: str, cmd: Sequence[str], port: int, env: Mapping[str, str], log_path: Path):
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._known: dict[int, psutil.Process] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, health: str = "/health", timeout: float = 180.0) -> float:
        """Spawn, then wait for the first 200 on ``health``; returns the seconds that took."""
        with open(self.log_path, "ab") as out:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        while True:
            if http_status(self.port, health, timeout=1.0) == 200:
                return time.perf_counter() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(
                    f"{self.name} server not healthy after {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self) -> list[psutil.Process]:
        """The server and all its live descendants (remembered, so that orphans are stopped too)."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            self._known.setdefault(p.pid, p)
        return procs

    def rss(self) -> tuple[int, int]:
        """Summed resident memory (bytes) of the process tree, and how many processes it has."""
        total = n = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
                n += 1
        return total, n

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def settle(self, window: float = 0.5, quiet_windows: int = 4, limit: float = 60.0) -> float:
        """Wait until the tree is idle: same processes, under 5% of a core, for ``quiet_windows``.

        Servers go on working after their first 200 (MLflow spawns a job runner and its consumers,
        which import for seconds); workloads and the idle RSS are measured only once that is over.
        Returns the seconds waited.
        """
        t0 = time.monotonic()
        last_n, last_cpu, quiet = len(self.processes()), self.cpu_seconds(), 0
        while time.monotonic() - t0 < limit and quiet < quiet_windows:
            time.sleep(window)
            n, cpu = len(self.processes()), self.cpu_seconds()
            quiet = quiet + 1 if n == last_n and cpu - last_cpu < 0.05 * window else 0
            last_n, last_cpu = n, cpu
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is None:
            return
        self.processes()  # remember the current descendants before the parent goes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the session we created for it
        for p in self._known.values():
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(list(self._known.values()), timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None


class RssSampler:
    """Samples a server's tree RSS in a thread; ``peak`` is the largest sum seen."""

    def __init__(self, server: Server, interval: float = 0.05) -> None:
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss()[0])
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss()[0])


def _own_cpu_seconds() -> float:
    """CPU time of this process and every descendant, live or already waited for."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
    return total


def _busy_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine; ``steal`` (the hypervisor's other guests) counts as busy."""
    t = psutil.cpu_times()._asdict()
    return float(sum(v for k, v in t.items() if k not in ("idle", "iowait", "guest", "guest_nice")))


class ForeignLoad:
    """How many cores *other* processes kept busy while a phase ran: the machine's noise.

    On a shared machine the figures mean little without it; it is reported beside them.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.cores = 0.0
        self._foreign = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        busy, own = _busy_cpu_seconds(), _own_cpu_seconds()
        while not self._stop.wait(self.interval):
            b, o = _busy_cpu_seconds(), _own_cpu_seconds()
            self._foreign += max(0.0, (b - busy) - (o - own))
            busy, own = b, o

    def __enter__(self) -> ForeignLoad:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cores = self._foreign / max(time.monotonic() - self._t0, 1e-9)


@contextlib.contextmanager
def terminating_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that ``finally`` blocks stop the servers."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- workers ---------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


def run_worker(
    module: str,
    worker: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    timeout: float = 1200.0,
    python: str | None = None,
) -> dict[str, Any]:
    """Run ``worker`` of ``benchmarks.<module>`` in a fresh interpreter; return the dict it printed.

    ``python`` picks another interpreter, e.g. ``peer_python("data")`` for a peer whose pins clash
    with the others'.
    """
    cmd = [python or sys.executable, "-m", f"benchmarks.{module}", "--worker", worker]
    cmd.append(json.dumps(dict(params)))
    try:
        done = subprocess.run(
            cmd, env=dict(env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise WorkerError(f"{worker} timed out after {timeout:.0f} s") from e
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    raise WorkerError(f"{worker} failed (exit {done.returncode}):\n{tail}")


def peer_python(module: str) -> str:
    """The interpreter of ``.venv-bench-<module>``, for a peer with pins of its own.

    ``make bench`` builds one such venv per ``benchmarks/requirements-<module>.txt``; each also has
    Loopline's benchmark harness on its path (run from the repository root) but not Loopline itself.
    """
    path = REPO_ROOT / f".venv-bench-{module}" / "bin" / "python"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make bench` (it installs requirements-{module}.txt).")
    return str(path)


def worker_main(workers: Mapping[str, Any], argv: Sequence[str]) -> None:
    """Entry point of a worker process: ``--worker NAME JSON`` → prints ``BENCH-RESULT {json}``."""
    if len(argv) != 3 or argv[0] != "--worker" or argv[1] not in workers:
        raise SystemExit(f"usage: python -m benchmarks.<module> --worker {{{','.join(workers)}}} PARAMS_JSON")
    result = workers[argv[1]](json.loads(argv[2]))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def peak_rss_bytes() -> int:
    """This process's own peak RSS: VmHWM, the high-water mark of its address space since exec.

    Not ``ru_maxrss``: Linux carries that over from the parent at fork/exec, so each worker would
    report at least the harness's own peak (hundreds of MiB after it wrote a benchmark's data).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def bytecode_as_installed() -> None:
    """Give Loopline's modules their ``.pyc`` files, as pip gives the peers' at install time.

    Loopline is installed editable, so its bytecode is written on first import, unless
    ``PYTHONDONTWRITEBYTECODE`` is set (it is on some machines): then every fresh process of a
    cold-start figure compiled ~150 modules from source, a cost no installed package pays.
    """
    import compileall

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # inherited by every worker and command
    sys.dont_write_bytecode = False
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src" / "loopline"), quiet=1)


def module_main(run: Any, workers: Mapping[str, Any], argv: Sequence[str]) -> None:
    """``python -m benchmarks.<module> [--quick]`` prints its table; ``--worker NAME JSON`` runs a worker."""
    if argv[:1] == ["--worker"]:
        worker_main(workers, argv)
        return
    if argv[:1] in (["--help"], ["-h"]):
        print("usage: python -m benchmarks.<module> [--quick]   (python -m benchmarks --help: all options)")
        return
    bytecode_as_installed()
    from rich.console import Console

    from benchmarks.__main__ import footer, table

    quick = "--quick" in argv
    report: Report = run(Options(quick=quick))
    console = Console(width=160)
    console.print(table(report))
    console.print(footer(report.meta, quick), style="dim")


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def tracking_server(
    system: str,
    home: Path,
    *,
    store_uri: str | None = None,
    workers: int = 1,
    artifacts: str | None = None,
) -> Server:
    """``mlflow server`` or ``loopline server`` on ``store_uri`` (default: a SQLite database under
    ``home``) with ``workers`` worker processes, artifacts under ``home`` (or ``artifacts``, e.g. a
    bucket)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db, art = store_uri or f"sqlite:///{home / 'store.db'}", artifacts or str(home / "artifacts")
    if system == "mlflow":
        cmd = [
            executable("mlflow"), "server",
            "--backend-store-uri", db,
            "--artifacts-destination", art,
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
        ]  # fmt: skip
    else:
        cmd = [
            executable("loopline"), "server",
            "--store-uri", db,
            "--artifacts-uri", art,
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
        ]  # fmt: skip
    return Server(system, cmd, port, clean_env(), home / "server.log")
