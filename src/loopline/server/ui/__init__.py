"""The web UI of ``loopline server``, under ``/ui/``: server-rendered Jinja2 pages with htmx and uPlot.

Pages read the same per-request stores as the REST routes (``server/state.py``), read-only. Every
script and stylesheet is served from ``static/`` in the installed package (``static/vendor/VENDOR.json``
records where each vendored file came from), so the UI works with no network. See docs/ui.md.

``routes.router`` holds the pages; ``root.router`` the browser redirect of ``/`` to ``/ui/``.
"""
