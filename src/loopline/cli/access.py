"""``loopline users``, ``loopline tokens``, ``loopline roles`` and ``loopline whoami``.

On the server's own database (``-t sqlite:///…`` or ``postgresql://…``) they need no sign-in: that is
how the first admin is made. Through a server (``-t http://…``) they act as the signed-in caller.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import Format, FormatOption, TrackingUri, fmt_time, print_json, settings

if TYPE_CHECKING:
    from loopline.auth.store import AuthStore

users = typer.Typer(help="Create, list and change users (a server admin's work).", no_args_is_help=True)
tokens = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
roles = typer.Typer(help="Grant and revoke roles in a workspace.", no_args_is_help=True)

Workspace = Annotated[
    str | None,
    typer.Option("--workspace", "-w", envvar="LOOPLINE_WORKSPACE", help="The workspace (default: default)."),
]


def _store(tracking_uri: str | None, workspace: str | None = None, *, create: bool = False) -> AuthStore:
    from loopline.auth.store import open_auth_store
    from loopline.context import Context

    return open_auth_store(Context(settings(tracking_uri, create=create, workspace=workspace)))


def _password(stdin: bool, prompt: str = "Password") -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


@users.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="A server admin: every role everywhere.")] = False,
    service: Annotated[
        bool, typer.Option("--service-account", help="No password: it signs in with tokens only.")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Create a user (asks for a password unless --service-account)."""
    password = None if service else _password(password_stdin)
    user = _store(tracking_uri, create=True).create_user(name, password=password, is_admin=admin)
    kind = "service account" if service else ("admin" if user.is_admin else "user")
    typer.echo(f"Created {kind} {user.name}")


@users.command("list")
def list_users(tracking_uri: TrackingUri = None, fmt: FormatOption = Format.table) -> None:
    """List users."""
    from loopline.auth.types import user_to_json

    found = _store(tracking_uri).list_users()
    if fmt is Format.json:
        print_json([user_to_json(u) for u in found])
        return
    table = Table("Name", "Admin", "Kind", "Disabled", "Created")
    for u in found:
        kind = "user" if u.has_password else "service account"
        table.add_row(
            u.name, "yes" if u.is_admin else "", kind, "yes" if u.disabled else "", fmt_time(u.created_at)
        )
    Console().print(table)


@users.command("update")
def update_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    admin: Annotated[
        bool | None, typer.Option("--admin/--no-admin", help="Make or unmake a server admin.")
    ] = None,
    disable: Annotated[
        bool | None,
        typer.Option("--disable/--enable", help="A disabled user's tokens and sessions stop working."),
    ] = None,
    password: Annotated[bool, typer.Option("--password", help="Set a new password (asked for).")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read it from stdin.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Change a user's password, admin flag or whether they may sign in."""
    new = _password(password_stdin, "New password") if password or password_stdin else None
    user = _store(tracking_uri).update_user(name, password=new, is_admin=admin, disabled=disable)
    typer.echo(f"Updated {user.name}")


@tokens.command("create")
def create_token(
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for (e.g. ci).")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="Whose token (default: yours).")] = None,
    scope: Annotated[str, typer.Option("--scope", help="The highest role it may use.")] = "admin",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime: 90d, 12h, 30m (default: never).")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Create an API token. The secret is printed once, on stdout: keep it (e.g. LOOPLINE_TOKEN)."""
    from loopline.auth.types import Role
    from loopline.clock import now_ms

    store = _store(tracking_uri, create=True)
    owner = user or str(store.whoami()["user"])
    expires_at = None if expires is None else now_ms() + _duration_ms(expires)
    info, secret = store.create_token(owner, name=name, scope=Role.parse(scope), expires_at=expires_at)
    typer.echo(f"Token {info.id} of {info.user} (scope {info.scope}): shown once, keep it now.", err=True)
    typer.echo(secret)


@tokens.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    tracking_uri: TrackingUri = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List tokens (yours; an admin sees everyone's)."""
    from loopline.auth.types import token_to_json

    found = _store(tracking_uri).list_tokens(user)
    if fmt is Format.json:
        print_json([token_to_json(t) for t in found])
        return
    table = Table("ID", "User", "Name", "Scope", "Created", "Expires", "Revoked")
    for t in found:
        table.add_row(
            str(t.id), t.user, t.name, str(t.scope), fmt_time(t.created_at),
            fmt_time(t.expires_at) if t.expires_at else "never",
            fmt_time(t.revoked_at) if t.revoked_at else "",
        )  # fmt: skip
    Console().print(table)


@tokens.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="The token's ID (`loopline tokens list`).")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Revoke a token: it stops working at once on this server (within 10 s on its other replicas)."""
    info = _store(tracking_uri).revoke_token(token_id)
    typer.echo(f"Revoked token {info.id} of {info.user}")


@roles.command("grant")
def grant(
    user: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Argument(help="viewer, editor, maintainer or admin.")],
    model: Annotated[
        str, typer.Option("--model", help="Only on this registered model (overrides the workspace role).")
    ] = "",
    workspace: Workspace = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Give a user a role in a workspace (replacing the one they had)."""
    from loopline.auth.types import Role

    ws = workspace or "default"
    binding = _store(tracking_uri, ws, create=True).grant(user, ws, Role.parse(role), model=model)
    on = f" on model {binding.model}" if binding.model else ""
    typer.echo(f"{binding.user} is {binding.role} in workspace {binding.workspace}{on}")


@roles.command("revoke")
def revoke(
    user: Annotated[str, typer.Argument(help="The user.")],
    model: Annotated[str, typer.Option("--model", help="The model-level role to remove.")] = "",
    workspace: Workspace = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Take a user's role in a workspace (or on one model of it) away."""
    ws = workspace or "default"
    _store(tracking_uri, ws).revoke(user, ws, model=model)
    typer.echo(f"Revoked the role of {user} in workspace {ws}" + (f" on model {model}" if model else ""))


@roles.command("list")
def list_roles(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    workspace: Workspace = None,
    tracking_uri: TrackingUri = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List the roles in a workspace."""
    from loopline.auth.types import binding_to_json

    ws = workspace or "default"
    found = _store(tracking_uri, ws).bindings(user=user, workspace=ws)
    if fmt is Format.json:
        print_json([binding_to_json(b) for b in found])
        return
    table = Table("User", "Workspace", "Role", "Model")
    for b in found:
        table.add_row(b.user, b.workspace, str(b.role), b.model or "(all)")
    Console().print(table)


def whoami(
    workspace: Workspace = None, tracking_uri: TrackingUri = None, fmt: FormatOption = Format.table
) -> None:
    """Who the server takes you for, and your role in the workspace."""
    found = _store(tracking_uri, workspace).whoami()
    if fmt is Format.json:
        print_json(found)
        return
    if not found.get("auth"):
        typer.echo(f"{found['user']} (no sign-in: this store does not require authentication)")
        return
    admin = ", server admin" if found.get("is_admin") else ""
    role = found.get("role") or "no role"
    typer.echo(f"{found['user']} ({found.get('via')}{admin}): {role} in {found['workspace']}")


def _duration_ms(text: str) -> int:
    from loopline.errors import InvalidInput

    units = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise InvalidInput(
            f"Invalid lifetime {text!r}.", hint="Use a number and d, h, m or s: 90d, 12h, 30m."
        )
    return int(number) * units[unit]
