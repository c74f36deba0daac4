"""The loop's event vocabulary: every step the controller takes is one of these events, appended in
the same transaction as the change (``metadata.lineage.append_event``), so the audit trail, DORA
metrics and ``loopline why`` are read from the events table alone.

Object URIs: a policy is ``policies:/<name>``, a rollout ``rollouts:/<id>``. Each rollout event's
payload carries ``policy``, ``deployment``, ``model`` (the registered model name) and, once known,
``candidate`` and ``champion`` (``models:/<name>/<version>``).
"""

from __future__ import annotations

APPLY = "loop.apply"  # loopline apply changed objects; payload: created / changed / deleted URIs
TRIGGER = "loop.trigger"  # on policies:/<name>; payload: kind, source_events, change_ms, debounced
RETRAIN_START = "loop.retrain_start"  # on rollouts:/<id>; payload: pipeline, params
RETRAIN_FINISH = "loop.retrain_finish"  # payload: pipeline_run, candidate
RETRAIN_FAIL = "loop.retrain_fail"  # payload: pipeline_run, error
GATE = "loop.gate"  # payload: passed, rules (each: kind, passed, numbers, why)
ROLLOUT_STEP = "loop.rollout_step"  # payload: step, stage, weight (traffic moved to the candidate)
APPROVAL_WAIT = "loop.approval_wait"
APPROVE = "loop.approve"  # payload: by, reason
PROMOTE = "loop.promote"  # the alias moved; payload: change_ms (when the change that led here happened)
ROLLBACK = "loop.rollback"  # payload: reason, detected_ms (when the regression was seen), health
RESTORED = "loop.restored"  # weights and alias are back; payload: detected_ms

# What DORA counts (see automation/dora.py): deployments = PROMOTE; failures = ROLLBACK among the
# rollouts that reached traffic (a ROLLOUT_STEP with stage "canary"); lead time = PROMOTE time -
# payload change_ms; time to restore = RESTORED time - payload detected_ms.
