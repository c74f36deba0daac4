"""Who may do what: users, API tokens, roles per workspace (and per registered model), web sessions.

``types`` holds the values, ``credentials`` makes and checks secrets, ``store`` keeps them in the
metadata database, ``policy`` says which role each route needs; the server's ``server/auth.py`` puts
them together on every request. See docs/security.md.
"""
