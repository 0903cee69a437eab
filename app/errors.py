"""Domain errors, each carrying its HTTP status and problem type; the web layer renders them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where it is and what is wrong, without its value."""

    loc: tuple[str | int, ...]
    msg: str


class ReittiError(Exception):
    """An error with an HTTP status and a problem type."""

    status = 500
    problem = "internal"
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        """More members for the problem document."""
        return {}

    def headers(self) -> dict[str, str]:
        """More response headers."""
        return {}


class EventInvalid(ReittiError):
    """The event cannot be routed as it is (422)."""

    status = 422
    problem = "invalid-event"
    title = "The event is not valid"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(detail or "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))

    def extra(self) -> dict[str, Any]:
        """List every field error."""
        return {"errors": [{"loc": list(e.loc), "msg": e.msg} for e in self.errors]}


class InvalidQuery(EventInvalid):
    """A query parameter is not valid (422)."""

    problem = "invalid-query"
    title = "The query is not valid"


class InvalidBody(EventInvalid):
    """A request body is well formed but names something that does not exist or fit (422)."""

    problem = "invalid-request"
    title = "The request is not valid"


class Unauthenticated(ReittiError):
    """No valid credentials (401)."""

    status = 401
    problem = "unauthenticated"
    title = "Authentication required"

    def headers(self) -> dict[str, str]:
        """Tell the client how to authenticate."""
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ReittiError):
    """The credentials lack the right (403)."""

    status = 403
    problem = "forbidden"
    title = "Not allowed"


class NotFound(ReittiError):
    """No such resource, or none this principal may see (404)."""

    status = 404
    problem = "not-found"
    title = "Not found"


class EventIdConflict(ReittiError):
    """The client reused an event id with a different body (409)."""

    status = 409
    problem = "event-id-conflict"
    title = "Event id already used with a different body"


class AlreadyAnswered(ReittiError):
    """The unit answered this item otherwise before: taken and returned exclude each other (409)."""

    status = 409
    problem = "already-answered"
    title = "The item was already answered otherwise"


class BodyTooLarge(ReittiError):
    """The request body is over the limit (413)."""

    status = 413
    problem = "body-too-large"
    title = "Request body too large"


class RoutingDefect(ReittiError):
    """No rule, or more than one, matched a valid event: a defect of the rules (500)."""

    status = 500
    problem = "routing-defect"
    title = "No single rule decides this event"

    def __init__(self, event_type: str, matched: Sequence[str]) -> None:
        self.event_type = event_type
        self.matched = list(matched)
        what = f"rules {', '.join(matched)} all match" if matched else "no rule matches"
        super().__init__(f"Event type {event_type}: {what}. This is a defect of the rules; nothing was stored.")

    def extra(self) -> dict[str, Any]:
        """Name the event type and the rules, never the customer."""
        return {"event_type": self.event_type, "matched_rules": self.matched}


class DatabaseUnavailable(ReittiError):
    """The database cannot be reached (503); nothing was written."""

    status = 503
    problem = "database-unavailable"
    title = "Database unavailable"

    def headers(self) -> dict[str, str]:
        """Ask the client to retry shortly."""
        return {"Retry-After": "5"}
