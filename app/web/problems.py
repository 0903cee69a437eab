"""Errors as RFC 9457 problem JSON for the API.

A validation error names the field but never echoes the submitted value: a value may be a
personal identity code.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.errors import DatabaseUnavailable, ReittiError
from app.input_checks import loc_part
from app.web.request_log import loggable_path

log = logging.getLogger("reitti")
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:reitti:problem:"


def problem_response(
    status: int, problem: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": PROBLEM_BASE + problem, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic's errors carry `input` (the submitted value) and `ctx`: keep neither; and a
    # location may hold a submitted key (an extra field, a dict's key): keep only plain names.
    return [{"loc": [loc_part(part) for part in e["loc"]], "msg": e["msg"]} for e in error.errors()]


def reitti_problem(error: ReittiError, method: str, path: str) -> JSONResponse:
    """The problem a domain error is answered with; one of the server's own is logged, by path only."""
    if error.status >= 500:
        log.error("%s %s: %s", method, loggable_path(path), error.detail)
    return problem_response(
        error.status, error.problem, error.title, error.detail, headers=error.headers(), **error.extra()
    )


def error_problem(error: Exception, method: str, path: str) -> JSONResponse:
    """The problem any error of an API call is answered with, as the handlers below answer it.

    For code that answers outside FastAPI's exception handlers (POST /v1/events' fast path).
    """
    if isinstance(error, ReittiError):
        return reitti_problem(error, method, path)
    if isinstance(error, OperationalError):
        return _unavailable(method, path, error)
    log.error("%s %s: unexpected error", method, loggable_path(path), exc_info=error)
    return _internal()


async def _reitti_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ReittiError)
    return reitti_problem(error, request.method, request.url.path)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = _field_errors(error)
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(422, "invalid-request", "The request is not valid", detail, errors=errors)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this request's path, for a 405's Allow header.

    Starlette names only the methods of the first route whose path matched: GET and POST
    of one path are two routes, so a 405 there said `Allow: POST` of a path that GET reads.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return problem_response(
        error.status_code,
        f"http-{error.status_code}",
        str(error.detail),
        str(error.detail),
        headers=headers,
    )


def _unavailable(method: str, path: str, error: Exception) -> JSONResponse:
    log.error("%s %s: database unavailable: %s", method, loggable_path(path), type(error).__name__)
    unavailable = DatabaseUnavailable("The database cannot be reached now; nothing was written. Retry later.")
    return reitti_problem(unavailable, method, path)


def _internal() -> JSONResponse:
    # A 500 never shows internals: the log has the traceback, the client a plain problem.
    return problem_response(500, "internal", "Internal error", "An unexpected error occurred; it has been logged.")


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    return _unavailable(request.method, request.url.path, error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("%s %s: unexpected error", request.method, loggable_path(request.url.path))
    return _internal()


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem JSON."""
    app.add_exception_handler(ReittiError, _reitti_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


def document_problem_media_type(app: FastAPI) -> None:
    """Document error bodies as application/problem+json, the type they are sent with."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if "application/problem+json" in content and "application/json" in content:
                            content["application/problem+json"] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
