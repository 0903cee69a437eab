"""The UI added to the app: its pages, static files, security headers and HTML errors."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (
    ReittiError,
)
from app.web.deps import services
from app.web.middleware import SecurityHeaders
from app.web.problems import allowed_methods
from app.web.request_log import loggable_path
from app.web.ui import admin, audit, decisions, login, reports, route, rulebook, sso, webhooks, worklist
from app.web.ui.auth import CsrfRefused, LoginRequired, current_user
from app.web.ui.i18n import DEFAULT_LANGUAGE, catalogue
from app.web.ui.render import HERE, here, redirect, render

log = logging.getLogger("reitti")

FAVICON = HERE / "static" / "favicon.ico"


def _error_page(request: Request, error: Exception) -> Response:
    """An error as a page in the visitor's language; a missing login goes to the login page."""
    if isinstance(error, LoginRequired):
        back = f"?next={quote(here(request), safe='/')}" if request.method == "GET" else ""
        return redirect(f"/ui/login{back}")
    status, key = 500, "500"
    if isinstance(error, CsrfRefused):
        status, key = 403, "csrf"
    elif isinstance(error, ReittiError):
        status = error.status
        key = str(status) if f"error_page.{status}" in catalogue(DEFAULT_LANGUAGE) else "400"
    elif isinstance(error, StarletteHTTPException):
        status = error.status_code
        key = "404" if status == 404 else "400" if status < 500 else "500"
    elif isinstance(error, RequestValidationError):
        status, key = 400, "400"
    elif isinstance(error, OperationalError):
        status, key = 503, "503"
    if status >= 500:
        log.error(
            "%s %s: %s", request.method, loggable_path(request.url.path), type(error).__name__, exc_info=status == 500
        )
    user = None
    if status < 500:  # the menu stays, so that a coach who took a wrong turn can go on
        try:
            with services(request).read_sessions() as session:
                user = current_user(request, session)
        except OperationalError:
            user = None
    headers = {"Retry-After": "5"} if status == 503 else {}
    if status == 405:
        headers["Allow"] = allowed_methods(request)
    return render(request, "error.html", user=user, status=status, headers=headers, key=key)


def _favicon() -> FileResponse:
    return FileResponse(FAVICON, media_type="image/x-icon")


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _html_for_ui(api_handler: Handler) -> Handler:
    """Render an error as an HTML page under /ui, and as the API's problem JSON elsewhere."""

    async def handle(request: Request, error: Exception) -> Response:
        if request.url.path == "/" or request.url.path.startswith("/ui"):
            return await run_in_threadpool(_error_page, request, error)  # it may read the user
        response = api_handler(request, error)
        return await response if inspect.isawaitable(response) else response

    return handle


def install_ui(app: FastAPI, *, identity_provider: str | None = None) -> None:
    """Add the UI to the app: its pages, static files, headers and HTML errors; / goes to /ui.

    `identity_provider` is the issuer people sign in with, if any: logging out sends them on to it.
    """
    for pages in (login, sso, route, decisions, worklist, rulebook, admin, webhooks, audit, reports):
        app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_api_route("/", lambda: redirect("/ui"), include_in_schema=False)
    # Browsers ask for /favicon.ico whatever the page links; the pages link the same file.
    app.add_api_route("/favicon.ico", _favicon, methods=["GET", "HEAD"], include_in_schema=False)
    issuer = urlsplit(identity_provider) if identity_provider else None
    app.add_middleware(SecurityHeaders, form_targets=(f"{issuer.scheme}://{issuer.netloc}",) if issuer else ())
    for kind in (ReittiError, RequestValidationError, StarletteHTTPException, OperationalError, Exception):
        app.add_exception_handler(kind, _html_for_ui(app.exception_handlers[kind]))
