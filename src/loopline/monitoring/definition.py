"""What a stored monitor definition must satisfy, checked where it is stored (database or server)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidInput
from loopline.monitoring.logwindow import Window
from loopline.monitoring.schedule import next_run
from loopline.names import check_name

_CONFIG: dict[str, type | tuple[type, ...]] = {
    "webhooks": list,
    "thresholds": dict,
    "tests": dict,
    "target": (str, type(None)),
    "categorical": list,
    "labels": dict,  # str -> str, e.g. managed-by: apply (what `loopline apply --prune` may delete)
}


def check_definition(
    name: str, target: str, reference: str, window: str, schedule: str, config: Mapping[str, Any]
) -> None:
    """Raise ``InvalidInput`` naming the first thing wrong with a monitor's definition.

    A file reference must exist here: the process that stores the monitor is the one that runs it.
    """
    check_name("monitor", name)
    if not isinstance(target, str) or not target.startswith(("deployments:/", "models:/")):
        raise InvalidInput(
            f"Invalid target {target!r:.200}: a monitor watches a deployment or a model.",
            hint="Use deployments:/name, models:/name@alias or models:/name/3.",
        )
    if not isinstance(window, str):
        raise InvalidInput(f"Invalid window {window!r:.100}.")
    Window.parse(window)
    if not isinstance(schedule, str):
        raise InvalidInput(f"Invalid schedule {schedule!r:.100}.")
    next_run(schedule, 0)
    if not isinstance(reference, str):
        raise InvalidInput(f"Invalid reference {reference!r:.100}.")
    if reference and not reference.startswith("datasets:/") and not os.path.isfile(reference):
        raise InvalidInput(f"No such reference file: {reference}.", hint="Pass a datasets:/ URI or a file.")
    for key, value in config.items():
        kind = _CONFIG.get(key)
        if kind is None:
            raise InvalidInput(f"Unknown monitor option {key!r:.100}.", hint=f"Use any of {sorted(_CONFIG)}.")
        if not isinstance(value, kind):
            raise InvalidInput(f"Invalid value {value!r:.100} for monitor option {key!r}.")
    for key, value in (config.get("labels") or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(f"Invalid label {key!r:.100}: {value!r:.100}.", hint="Labels are text: text.")
    for url in config.get("webhooks") or []:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput(f"Invalid webhook {url!r:.200}.", hint="Use an http:// or https:// URL.")
