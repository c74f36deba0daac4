"""What the OpenAPI document (``/openapi.json``, ``/docs``) says about routes that validate by hand.

Most routes take the ``Request`` and check its arguments themselves (``http.py``), so FastAPI sees no
inputs and no answer. ``@documented(...)`` names the pydantic models of an endpoint's arguments and
answer; ``DocumentedRoute``, the route class of every router, writes them into the operation as
FastAPI's own ``openapi_extra`` (request body, query and path parameters) and ``responses``. Neither
gives FastAPI work to do per request, so a documented plain route stays in the one-lookup index
(``routing.py``) and still answers with orjson. Each router is built as
``APIRouter(route_class=DocumentedRoute)``; every operation it holds also documents the error body.

Request schemas are inlined (``$defs`` resolved in place): FastAPI's components hold only the models
it sees itself, the answers among them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from loopline.names import NAME

E = TypeVar("E", bound=Callable[..., Any])
_DOC_ATTR = "__loopline_openapi__"
_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_QUERY_METHODS = frozenset({"GET", "HEAD"})


class ErrorBody(BaseModel):
    """MLflow's error body, which every route answers a refusal with."""

    error_code: str = Field(description="MLflow's code: INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, …")
    message: str = Field(
        description="What was wrong, and what to do about it (a string with NUL is refused)."
    )
    hint: str | None = Field(None, description="For some refusals (405, version mismatch): what to do.")


class Answer(BaseModel):
    """An answer's shape: fields nobody documented are an error in the contract test."""

    model_config = ConfigDict(extra="forbid")


class Empty(Answer):
    """``{}``: the call did what it was asked."""


# No string may hold NUL (PostgreSQL's text cannot): one rule for every route, said here once
# rather than as a pattern on each field.
NonEmpty = Annotated[str, Field(min_length=1)]


def whole_number(value: Any) -> Any:
    """A ``BeforeValidator`` for integers, placed after their constraints (so the schema keeps them):
    JSON has one number type, so 5.0 is 5; strict models still refuse "5" and true."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# loopline/names.py: the one rule for Loopline's own objects (monitors, deployments, schedules, …).
# Documented here, checked by the domain (check_name), whose refusal names the kind and the fix; a
# pydantic pattern error would answer first, with only the regular expression.
Name = Annotated[
    str, Field(description=NAME.hint, json_schema_extra={"pattern": f"^{NAME.pattern.pattern}$"})
]


@dataclass(frozen=True)
class Doc:
    """An endpoint's arguments and answer, as ``@documented`` was told them."""

    body: type[BaseModel] | None
    query: type[BaseModel] | None
    answer: type[BaseModel] | None
    errors: tuple[int, ...]
    path: Mapping[str, str]
    request_media_type: str | None
    answer_media_type: str | None


_ERROR_TEXT = {
    400: "Bad input: the message names the argument that was wrong.",
    404: "Not found: the message names what is missing.",
    409: "Conflict with the current state (a stale revision, a taken ID).",
}


def documented(
    body: type[BaseModel] | None = None,
    *,
    query: type[BaseModel] | None = None,
    answer: type[BaseModel] | None = None,
    errors: Sequence[int] = (404,),
    path: Mapping[str, str] | None = None,
    request_media_type: str | None = None,
    answer_media_type: str | None = None,
) -> Callable[[E], E]:
    """Document a hand-validated endpoint: ``body`` is its JSON body (on a GET route: its query
    string, as MLflow's GET routes take the same fields there), ``query`` its query string besides a
    body, ``answer`` its 200 body, ``errors`` the statuses besides 400 it may refuse with, ``path``
    descriptions of its path parameters; ``request_media_type`` and ``answer_media_type`` name bodies
    that are bytes, not JSON (an upload, a download, an Arrow stream).

    Put it below the route decorator, so the route is registered with it::

        @route("POST", "/runs/log-metric")
        @documented(LogMetric, answer=Empty)
        async def log_metric(request: Request) -> Response: ...
    """

    def wrap(fn: E) -> E:
        doc = Doc(body, query, answer, tuple(errors), dict(path or {}), request_media_type, answer_media_type)
        setattr(fn, _DOC_ATTR, doc)
        return fn

    return wrap


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with every ``$ref`` replaced by the definition it names."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**resolve(defs[ref.removeprefix("#/$defs/")]), **resolve(rest)}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    out: dict[str, Any] = resolve(schema)
    return out


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``model``'s fields as query parameters (a list field is the parameter repeated)."""
    schema = inline_schema(model)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` as plain ``X``: a query string cannot carry null, only leave the parameter out."""
    branches = [b for b in schema.get("anyOf", ()) if b.get("type") != "null"]
    if len(branches) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}


def _bytes(media_type: str) -> dict[str, Any]:
    return {media_type: {"schema": {"type": "string", "format": "binary"}}}


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = inline_schema(model)
    needed = bool(schema.get("required") or schema.get("oneOf") or schema.get("anyOf"))
    return {"required": needed, "content": {"application/json": {"schema": schema}}}


class DocumentedRoute(APIRoute):
    """An APIRoute whose OpenAPI entry also says what its hand-validated endpoint takes and answers
    (from ``@documented``), declares every path parameter, and documents the error body."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        doc: Doc | None = getattr(endpoint, _DOC_ATTR, None)
        methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
        extra: dict[str, Any] = dict(kwargs.get("openapi_extra") or {})
        responses: dict[int | str, dict[str, Any]] = {
            400: {"model": ErrorBody, "description": _ERROR_TEXT[400]},
            # FastAPI would document its own 422 for routes with typed arguments; this app answers 400.
            "4XX": {"model": ErrorBody, "description": "Any other refusal, in the same shape."},
        }
        parameters: list[dict[str, Any]] = []
        declared = set(inspect.signature(endpoint).parameters)
        for name in _PATH_PARAM.findall(path):
            if name not in declared:  # read from request.path_params by hand
                description = doc.path.get(name, "") if doc else ""
                parameters.append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    | ({"description": description} if description else {})
                )
        if doc is not None:
            for status in doc.errors:
                responses[status] = {"model": ErrorBody, "description": _ERROR_TEXT.get(status, "Refused.")}
            if doc.answer is not None:
                responses[200] = {"model": doc.answer, "description": "Done."}
            if doc.answer_media_type is not None:
                kwargs["response_class"] = Response  # not JSON: no application/json answer to document
                responses[200] = {"description": "The bytes.", "content": _bytes(doc.answer_media_type)}
            if doc.request_media_type is not None:
                extra["requestBody"] = {"required": True, "content": _bytes(doc.request_media_type)}
            elif doc.body is not None and methods <= _QUERY_METHODS:
                parameters.extend(query_parameters(doc.body))
            elif doc.body is not None:
                extra["requestBody"] = _request_body(doc.body)
            if doc.query is not None:
                parameters.extend(query_parameters(doc.query))
        if parameters:
            extra["parameters"] = [*extra.get("parameters", ()), *parameters]
        kwargs["responses"] = {**responses, **(kwargs.get("responses") or {})}
        kwargs["openapi_extra"] = extra or None
        super().__init__(path, endpoint, **kwargs)


__all__ = [
    "Answer",
    "DocumentedRoute",
    "Empty",
    "ErrorBody",
    "Name",
    "NonEmpty",
    "documented",
    "inline_schema",
    "query_parameters",
    "whole_number",
]
