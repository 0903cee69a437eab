"""ASGI middleware around the whole app: body limits, the rule set in force, the UI's security headers."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTooLarge
from app.time import today_in_finland
from app.web.problems import problem_response

UI_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# /docs (Swagger UI) fetches /openapi.json and, on "Try it out", the API itself: of this server only.
DOCS_POLICY = UI_POLICY + b"; connect-src 'self'"

SECURITY_HEADERS = [
    (b"content-security-policy", UI_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

DOCS_HEADERS = [(b"content-security-policy", DOCS_POLICY), *SECURITY_HEADERS[1:]]


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind one that read the body: that body, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """Refuse request bodies over the limit with 413, with or without Content-Length.

    The body is read here, up to the limit, before the app sees it: bodies this small
    cost little to hold, and nothing downstream ever starts on a body it cannot finish.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(f"The request body is over {self.limit} bytes.")
        response = problem_response(error.status, error.problem, error.title, error.detail)
        await response(scope, receive, send)


class RulesetHeader:
    """Stamp every response with the rule set in force now, unless it names its own."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                # A decision names its own rule set (most answers under load): then nothing to add.
                if not any(k.lower() == b"reitti-ruleset" for k, _ in headers):
                    message = {**message, "headers": [*headers, *ruleset_in_force(self.fastapi_app)]}
            await send(message)

        await self.app(scope, receive, stamped)


def ruleset_in_force(fastapi_app: FastAPI) -> list[tuple[bytes, bytes]]:
    """The headers that name the rule set in force today; none outside the lifespan or with none in force."""
    services = fastapi_app.state.services  # None outside the lifespan
    ruleset = services.rules.in_force(today_in_finland()) if services else None
    if not ruleset:
        return []
    return [(b"reitti-ruleset", ruleset.version.encode()), (b"reitti-ruleset-sha256", ruleset.sha256.encode())]


class SecurityHeaders:
    """CSP without inline scripts, no framing, no sniffing, no caching of pages, for the UI and /docs."""

    def __init__(self, app: ASGIApp, form_targets: tuple[str, ...] = ()) -> None:
        self.app = app
        # Logging out of the identity provider is a form's redirect to it: form-action must allow its origin.
        self.ui_headers = SECURITY_HEADERS
        if form_targets:
            allowed = b" ".join([b"form-action 'self'", *(target.encode() for target in form_targets)])
            policy = UI_POLICY.replace(b"form-action 'self'", allowed)
            self.ui_headers = [(b"content-security-policy", policy), *SECURITY_HEADERS[1:]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else None
        docs = path is not None and (path == "/docs" or path.startswith("/docs/"))
        if path is None or not (path == "/" or path.startswith("/ui") or docs):
            await self.app(scope, receive, send)
            return
        added = DOCS_HEADERS if docs else self.ui_headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *added]
                if not path.startswith(("/ui/static/", "/docs/assets/")):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
