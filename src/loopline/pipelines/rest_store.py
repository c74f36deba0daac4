"""``PipelineStore`` over ``loopline server``'s ``/api/2.0/loopline/pipelines`` routes.

The routes and their JSON are listed in ``loopline.server.pipelines_api``. Bodies are encoded here
(not by ``RestClient.call``) with ``str`` for what JSON cannot hold, as the SQL store stores it.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from loopline.pipelines.types import Finished, RunRecord, ScheduleRecord, StepRecord, record_to_json
from loopline.protocol.http import RestClient

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_API = "/api/2.0/loopline/pipelines"
R = TypeVar("R", bound="DataclassInstance")  # a dataclass type


def _from_json(cls: type[R], data: Mapping[str, Any]) -> R:
    """A record the server sent (extra fields such as ``uri`` ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class RestPipelineStore:
    """Pipeline runs, steps, schedules and sweeps kept by a server (see the module docstring)."""

    def __init__(self, client: RestClient) -> None:
        self.client = client  # the context's: one connection pool for every domain

    def _get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.client.call("GET", _API + path, query)

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        content = orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS)
        resp = self.client.request(
            "POST", _API + path, content=content, headers={"Content-Type": "application/json"}
        )
        return dict(orjson.loads(resp.content)) if resp.content else {}

    # ---- runs --------------------------------------------------------------------------------

    def create_run(self, run: RunRecord, steps: Sequence[tuple[str, str]]) -> None:
        self._post("/runs/create", {"run": record_to_json(run), "steps": [list(s) for s in steps]})

    def restart_run(self, run_id: str, *, host: str, pid: int, executor: str) -> None:
        self._post(f"/runs/{_q(run_id)}/restart", {"host": host, "pid": pid, "executor": executor})

    def add_inputs(self, run_id: str, name: str, dataset_uris: Sequence[str]) -> None:
        self._post(f"/runs/{_q(run_id)}/inputs", {"name": name, "dataset_uris": list(dataset_uris)})

    def finish_run(self, run_id: str, status: str, outputs: Any, error: str = "") -> None:
        self._post(f"/runs/{_q(run_id)}/finish", {"status": status, "outputs": outputs, "error": error})

    def get_run(self, run_id: str) -> RunRecord:
        body = self._get(f"/runs/{_q(run_id)}", {"include_packages": "true"})
        return _from_json(RunRecord, body["run"])

    def list_runs(
        self, name: str | None = None, status: str | None = None, sweep_id: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        query = {"name": name, "status": status, "sweep_id": sweep_id, "max_results": limit}
        query["include_packages"] = "true"
        return [_from_json(RunRecord, r) for r in self._get("/runs", query)["runs"]]

    # ---- steps -------------------------------------------------------------------------------

    def progress(
        self,
        run_id: str,
        *,
        finished: Sequence[Finished] = (),
        started: Sequence[str] = (),
        start_time: int | None = None,
    ) -> None:
        if not finished and not started:
            return  # as the SQL store: nothing to write, no request
        body = {
            "finished": [record_to_json(f) for f in finished],
            "started": list(started),
            "start_time": start_time,
        }
        self._post(f"/runs/{_q(run_id)}/progress", body)

    def steps(self, run_id: str) -> list[StepRecord]:
        return [_from_json(StepRecord, s) for s in self._get(f"/runs/{_q(run_id)}/steps")["steps"]]

    def known_keys(self, fingerprints: Sequence[str], limit: int = 100_000) -> set[str] | None:
        keys = self._post("/steps/known-keys", {"fingerprints": list(fingerprints), "limit": limit})["keys"]
        return None if keys is None else set(keys)

    def find_cached(self, cache_key: str) -> StepRecord | None:
        hit = self._get("/steps/cached", {"cache_key": cache_key})["step"]
        return None if hit is None else _from_json(StepRecord, hit)

    def last_steps(self, pipeline: str, before_run: str) -> dict[str, StepRecord]:
        steps = self._get("/steps/last", {"pipeline": pipeline, "before_run": before_run})["steps"]
        return {n: _from_json(StepRecord, s) for n, s in steps.items()}

    # ---- schedules ---------------------------------------------------------------------------

    def add_schedule(self, s: ScheduleRecord) -> None:
        self._post("/schedules/create", {"schedule": record_to_json(s)})

    def list_schedules(self, enabled_only: bool = False) -> list[ScheduleRecord]:
        body = self._get("/schedules", {"enabled_only": "true" if enabled_only else "false"})
        return [_from_json(ScheduleRecord, s) for s in body["schedules"]]

    def set_schedule_enabled(self, name: str, enabled: bool) -> None:
        self._post("/schedules/enable", {"name": name, "enabled": enabled})

    def remove_schedule(self, name: str) -> None:
        self._post("/schedules/delete", {"name": name})

    def claim_slot(self, schedule: str, slot_ms: int, claimed_by: str) -> bool:
        body = {"name": schedule, "slot_ms": slot_ms, "claimed_by": claimed_by}
        return bool(self._post("/schedules/claim", body)["claimed"])

    def set_slot_result(self, schedule: str, slot_ms: int, *, run_id: str = "", error: str = "") -> None:
        body = {"name": schedule, "slot_ms": slot_ms, "run_id": run_id, "error": error}
        self._post("/schedules/slot-result", body)

    def slots(self, schedule: str) -> list[tuple[int, str, str, str]]:
        rows = self._get("/schedules/slots", {"name": schedule})["slots"]
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    # ---- sweeps ------------------------------------------------------------------------------

    def create_sweep(
        self, sweep_id: str, name: str, target: str, method: str, metric: str, direction: str, space: Any
    ) -> None:
        body = {
            "sweep_id": sweep_id,
            "name": name,
            "target": target,
            "method": method,
            "metric": metric,
            "direction": direction,
            "space": space,
        }
        self._post("/sweeps/create", body)

    def finish_sweep(self, sweep_id: str, status: str, best_run_id: str, best_value: float | None) -> None:
        body = {"status": status, "best_run_id": best_run_id, "best_value": best_value}
        self._post(f"/sweeps/{_q(sweep_id)}/finish", body)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        return dict(self._get(f"/sweeps/{_q(sweep_id)}")["sweep"])


__all__ = ["RestPipelineStore"]
