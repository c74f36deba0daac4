"""Every error Loopline raises on purpose.

    LooplineError                 base: message + hint, an HTTP status and an MLflow error code
     ├── NotFound                 404  RESOURCE_DOES_NOT_EXIST
     ├── AlreadyExists            400  RESOURCE_ALREADY_EXISTS
     ├── InvalidInput             400  INVALID_PARAMETER_VALUE
     │    └── BadRequest          400  BAD_REQUEST  (a body that is not the JSON/format expected)
     ├── Conflict                 409  INVALID_STATE
     │    └── IncompatibleVersion 409  INCOMPATIBLE_VERSION  (a client and server that can't talk)
     ├── BackendUnavailable       503  TEMPORARILY_UNAVAILABLE
     └── MissingExtra             500  INTERNAL_ERROR   (an optional dependency is not installed)

The CLI prints ``message`` and ``hint`` without a traceback; the server maps each class to its
status code and the JSON body ``{"error_code", "message"}`` in one handler.
"""

from __future__ import annotations


class LooplineError(Exception):
    """Base class: a headline ``message`` and a ``hint`` that says what to do about it."""

    status_code: int = 500
    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class NotFound(LooplineError):
    """The named object does not exist (or was permanently deleted)."""

    status_code = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(LooplineError):
    """An object with that name or key exists already."""

    status_code = 400
    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidInput(LooplineError):
    """The caller sent something malformed, out of range or not allowed."""

    status_code = 400
    error_code = "INVALID_PARAMETER_VALUE"


class BadRequest(InvalidInput):
    """A request body that is not what the route accepts (malformed JSON, wrong format keys)."""

    error_code = "BAD_REQUEST"


class Conflict(LooplineError):
    """The object is in a state that does not allow the operation (e.g. a deleted run)."""

    status_code = 409
    error_code = "INVALID_STATE"


class IncompatibleVersion(Conflict):
    """A Loopline client and server whose REST APIs are too far apart: the message names both."""

    error_code = "INCOMPATIBLE_VERSION"


class BackendUnavailable(LooplineError):
    """A database, object store or server could not be reached."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


class MissingExtra(LooplineError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"This feature needs the '{package}' package, which is not installed.",
            hint=f"pip install 'loopline[{extra}]'",
        )


def require(module: str, extra: str) -> None:
    """Raise :class:`MissingExtra` unless ``module`` can be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(module, extra)
