"""Every error Loopline raises on purpose.

    LooplineError                 base: message + hint, an HTTP status and an MLflow error code
     ├── NotFound                 404  RESOURCE_DOES_NOT_EXIST
     ├── AlreadyExists            400  RESOURCE_ALREADY_EXISTS
     ├── InvalidInput             400  INVALID_PARAMETER_VALUE
     │    └── BadRequest          400  BAD_REQUEST  (a body that is not the JSON/format expected)
     ├── Unauthenticated          401  UNAUTHENTICATED  (no credentials, or ones that are not valid)
     ├── PermissionDenied         403  PERMISSION_DENIED (a role that does not allow the operation)
     ├── Conflict                 409  INVALID_STATE
     │    └── IncompatibleVersion 409  INCOMPATIBLE_VERSION  (a client and server that can't talk)
     ├── BackendUnavailable       503  TEMPORARILY_UNAVAILABLE
     └── MissingExtra             500  INTERNAL_ERROR   (an optional dependency is not installed)

The CLI prints ``message`` and ``hint`` without a traceback and exits with the class's
``exit_code`` (2 bad input or configuration, 1 a refused or failed operation, 3 a service that
cannot be reached); the server maps each class to its status code and the JSON body
``{"error_code", "message"}`` in one handler. ``translate`` turns the exceptions of Loopline's
dependencies (SQLAlchemy, botocore, pandas, pyarrow, polars, httpx, the OS) into these types for
both boundaries; code that knows what a failure means raises the right type itself, ``from`` the
original.
"""

from __future__ import annotations


class LooplineError(Exception):
    """Base class: a headline ``message`` and a ``hint`` that says what to do about it."""

    status_code: int = 500
    error_code: str = "INTERNAL_ERROR"
    exit_code: int = 1  # the CLI's: 1 refused or failed, 2 bad input or configuration, 3 unreachable

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
    exit_code = 2


class AlreadyExists(LooplineError):
    """An object with that name or key exists already."""

    status_code = 400
    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidInput(LooplineError):
    """The caller sent something malformed, out of range or not allowed."""

    status_code = 400
    error_code = "INVALID_PARAMETER_VALUE"
    exit_code = 2


class BadRequest(InvalidInput):
    """A request body that is not what the route accepts (malformed JSON, wrong format keys)."""

    error_code = "BAD_REQUEST"


class Unauthenticated(LooplineError):
    """The request carries no credentials, or credentials the server does not accept."""

    status_code = 401
    error_code = "UNAUTHENTICATED"
    exit_code = 2  # a configuration to fix: a token or password


class PermissionDenied(LooplineError):
    """The caller is known, and their role does not allow this operation."""

    status_code = 403
    error_code = "PERMISSION_DENIED"


class Conflict(LooplineError):
    """The object is in a state that does not allow the operation (e.g. a deleted run)."""

    status_code = 409
    error_code = "INVALID_STATE"


class IncompatibleVersion(Conflict):
    """A Loopline client and server whose REST APIs are too far apart: the message names both."""

    error_code = "INCOMPATIBLE_VERSION"
    exit_code = 2  # a configuration to fix: upgrade one side


class BackendUnavailable(LooplineError):
    """A database, object store or server could not be reached."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    exit_code = 3


class MissingExtra(LooplineError):
    """An optional dependency is needed for this feature and is not installed."""

    exit_code = 2  # a configuration to fix: install the extra

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


# ---- dependencies' exceptions, translated ----------------------------------------------------------
# Matched by class name along the exception's MRO, so this base module imports none of them.


def translate(exc: BaseException) -> LooplineError | None:
    """The Loopline error a dependency's exception means, or None when it is not one we know.

    For the boundaries (the CLI, the servers) and for ``raise translate(e) from e`` where code
    catches a dependency's error without knowing more than its kind.
    """
    if isinstance(exc, LooplineError):
        return exc
    names = {f"{c.__module__.split('.')[0]}.{c.__name__}" for c in type(exc).__mro__}
    text = first_line(exc)
    for translator in _TRANSLATORS:
        found = translator(exc, names, text)
        if found is not None:
            return found
    return None


def first_line(exc: BaseException) -> str:
    """What a dependency's error says, in one line: a driver's message without the statement it
    quotes (``LINE 1: INSERT …``), libpq's without its connection preamble."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error: its text is the useful one
    text = str(orig if orig is not None else exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0].strip()
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  database …'
    return (
        line.rpartition("FATAL:")[2].strip() if "FATAL:" in line else line.removeprefix("connection failed: ")
    )


def _database(exc: BaseException, names: set[str], text: str) -> LooplineError | None:
    if "sqlalchemy.ArgumentError" in names:
        return InvalidInput(
            f"Not a database URI: {text}",
            hint="Use sqlite:///path/to/loopline.db, a folder, or postgresql://user@host/db.",
        )
    if not names & {"sqlalchemy.OperationalError", "sqlalchemy.DatabaseError", "sqlalchemy.InterfaceError"}:
        return None
    low = text.lower()
    if "does not exist" in low and "database" in low:
        return NotFound(
            f"The PostgreSQL {text}.",
            hint="Create it first (createdb NAME, or CREATE DATABASE NAME), or fix the name in the URI.",
        )
    if "password authentication failed" in low or ("role" in low and "does not exist" in low):
        return InvalidInput(
            f"The database refused the login: {text}", hint="Check the user and password in the URI."
        )
    if "unable to open database file" in low:
        return NotFound(
            f"The SQLite database file cannot be opened: {text}",
            hint="Check that its folder exists and is writable.",
        )
    if "file is not a database" in low or "malformed" in low:
        return InvalidInput(
            f"Not a SQLite database: {text}", hint="Point the tracking URI at a Loopline database file."
        )
    if "no such table" in low or "no such column" in low or "undefinedtable" in low:
        return InvalidInput(
            f"The database has no Loopline schema: {text}",
            hint="Run `loopline db upgrade URI` against it, or point the URI at a Loopline store.",
        )
    return BackendUnavailable(
        f"The metadata database could not be reached: {text}",
        hint="Check that it is running and that the host and port in the URI are right.",
    )


def _object_store(exc: BaseException, names: set[str], text: str) -> LooplineError | None:
    if names & {"botocore.NoCredentialsError", "botocore.PartialCredentialsError"}:
        return InvalidInput(
            f"No credentials for the object store: {text}",
            hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
            "and AWS_ENDPOINT_URL for a non-AWS store such as MinIO.",
        )
    if names & {
        "botocore.EndpointConnectionError",
        "botocore.ConnectTimeoutError",
        "botocore.ReadTimeoutError",
        "botocore.ConnectionClosedError",
        "aiohttp.ClientConnectorError",
    }:
        return BackendUnavailable(
            f"The object store could not be reached: {text}",
            hint="Check AWS_ENDPOINT_URL (or the endpoint in your AWS config) and that the store is up.",
        )
    if "botocore.ClientError" in names:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            return NotFound(f"Not in the object store: {text}", hint="Check the bucket and prefix.")
        return InvalidInput(
            f"The object store refused the request: {text}",
            hint="Check the credentials, their permissions on the bucket, and the region.",
        )
    return None


def _tables(exc: BaseException, names: set[str], text: str) -> LooplineError | None:
    parse = {
        "pandas.ParserError",
        "pandas.EmptyDataError",
        "pyarrow.ArrowInvalid",
        "pyarrow.ArrowTypeError",
        "pyarrow.ArrowNotImplementedError",
        "pyarrow.ArrowException",
        "polars.PolarsError",
        "yaml.YAMLError",
        "json.JSONDecodeError",
    }
    if names & parse:
        return InvalidInput(
            f"Cannot read the input: {text}",
            hint="Check that the file is complete and in the format its extension names "
            "(CSV rows need the same number of fields; Parquet files must not be truncated).",
        )
    return None


def _network(exc: BaseException, names: set[str], text: str) -> LooplineError | None:
    if names & {"httpx.TransportError", "requests.ConnectionError", "urllib3.HTTPError"}:
        return BackendUnavailable(
            f"The server could not be reached: {text}",
            hint="Check the URL and that the server is running.",
        )
    if names & {"httpx.InvalidURL", "httpx.UnsupportedProtocol"}:
        return InvalidInput(f"Not a valid URL: {text}", hint="Use http://host:port.")
    return None


def _os(exc: BaseException, names: set[str], text: str) -> LooplineError | None:
    import errno

    if not isinstance(exc, OSError):
        return None
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.EADDRINUSE:
        return InvalidInput(
            f"The address is already in use: {exc.strerror or text}",
            hint="Another process listens on that port: stop it or pick another with --port.",
        )
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"No such file or folder:{where or ' ' + text}", hint="Check the path.")
    if isinstance(exc, PermissionError):
        return InvalidInput(f"Permission denied:{where or ' ' + text}", hint="Check the file's permissions.")
    if isinstance(exc, IsADirectoryError | NotADirectoryError | FileExistsError):
        return InvalidInput(f"{exc.strerror or text}:{where}", hint="Check the path.")
    if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT):
        return BackendUnavailable(f"Could not connect: {text}", hint="Check the address and the service.")
    if exc.errno == errno.ENOSPC:
        return BackendUnavailable(f"No space left on the device:{where}", hint="Free some disk space.")
    return None


_TRANSLATORS = (_database, _object_store, _tables, _network, _os)
