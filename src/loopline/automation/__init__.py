"""The closed loop: policies declared as code decide when to retrain, gates judge the candidate
against the serving champion, rollouts move it through shadow and canary steps to champion and roll
back by themselves, and every step is an event (the audit trail that DORA metrics are read from).

The loop sits above the domains: it uses their public clients (pipelines, registry, deployments,
monitoring) and owns only its own tables (policies, rollouts, triggers, leases).
"""
