"""The rules for dataset names and aliases: the standard library only, so that the lean
``loopline data add`` (``data.sqlite_versions``) and ``SqlDataStore`` check one rule."""

from __future__ import annotations

from loopline.errors import InvalidInput

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 256 or not set(name) <= _NAME_CHARS:
        raise InvalidInput(
            f"Invalid dataset name {name!r}.",
            hint="Use up to 256 letters, digits, '_', '-' and '.', e.g. 'customers'.",
        )
    return name


def validate_alias(alias: object) -> str:
    if (
        not isinstance(alias, str)
        or not alias
        or len(alias) > 255
        or alias.isdigit()
        or alias == "latest"
        or not set(alias) <= _NAME_CHARS
    ):
        raise InvalidInput(
            f"Invalid alias {alias!r}.", hint="Use a name such as 'prod' (not a number, not 'latest')."
        )
    return alias
