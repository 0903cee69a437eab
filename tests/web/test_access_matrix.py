"""Who may call what: every operation of the app against a matrix of roles, over real HTTP.

The operations come from the app's own OpenAPI document, and the UI's pages from its routes
outside that document, so an endpoint or page added without a row here fails these tests: no
endpoint ships without someone deciding who may call it.
The decision in the matrix was posted by `client-a` for a customer of Kempele (244) and is
handled centrally, so a coach of Kempele sees it and a coach of Ii (139) does not: for
them, as for another client, it does not exist (404, never 403, so existence does not leak).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.main import create_app
from tests.conftest import KeyMaker, Server, UserMaker
from tests.web.api.test_decisions import post
from tests.web.api.test_events import IDENTITY_CODE, oeo_start
from tests.web.ui.test_pages import CSRF, Visitor

CALLERS = ("nobody", "client", "other_client", "coach", "other_coach", "auditor", "admin")
EVERYONE = dict.fromkeys(CALLERS, 200)
ANY_KEY = {**EVERYONE, "nobody": 401}
PEOPLE_WHO_AUDIT = {**dict.fromkeys(CALLERS, 403), "nobody": 401, "auditor": 200, "admin": 200}
IN_SCOPE = {**ANY_KEY, "other_client": 404, "other_coach": 404}
ADMINS = {**dict.fromkeys(CALLERS, 403), "nobody": 401, "admin": 200}
# A subscription that does not exist and one refused at its URL: past the role check, 404 and 422,
# and no subscription is left behind to send the rest of the suite's decisions anywhere.
ADMINS_NOT_FOUND = {**ADMINS, "admin": 404}
NO_WEBHOOK = "999999999"

MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("get", "/healthz"): EVERYONE,
    ("get", "/readyz"): EVERYONE,
    ("get", "/v1/event-types"): ANY_KEY,
    ("get", "/v1/units"): ANY_KEY,
    ("get", "/v1/rulesets"): ANY_KEY,
    ("post", "/v1/events"): {
        **dict.fromkeys(CALLERS, 403),
        "nobody": 401,
        "client": 201,
        "other_client": 201,
    },
    # Lists and counts are scoped: 200 for everyone, with only what each may see.
    ("get", "/v1/decisions"): ANY_KEY,
    ("get", "/v1/decisions/stats"): ANY_KEY,
    ("get", "/v1/decisions/{decision_id}"): IN_SCOPE,
    ("get", "/v1/decisions/{decision_id}/overrides"): IN_SCOPE,
    ("post", "/v1/decisions/{decision_id}/overrides"): {
        **dict.fromkeys(CALLERS, 403),
        "nobody": 401,
        "coach": 201,
        "other_coach": 404,
        "admin": 201,
    },
    ("get", "/v1/decisions/{decision_id}/link"): PEOPLE_WHO_AUDIT,
    ("get", "/v1/audit/verify"): PEOPLE_WHO_AUDIT,
    ("get", "/v1/audit/checkpoints"): PEOPLE_WHO_AUDIT,
    ("get", "/v1/audit/access"): PEOPLE_WHO_AUDIT,
    ("post", "/v1/simulate"): ANY_KEY,
    # Versions that do not exist, so that no one walks the whole domain here: past the
    # role check the answer is 404 (the diff itself has its own test).
    ("get", "/v1/rulesets/{before}/diff/{after}"): {**PEOPLE_WHO_AUDIT, "auditor": 404, "admin": 404},
    ("get", "/metrics"): ADMINS,
    ("get", "/v1/webhooks"): ADMINS,
    ("post", "/v1/webhooks"): {**ADMINS, "admin": 422},
    ("get", "/v1/webhooks/{webhook_id}"): ADMINS_NOT_FOUND,
    ("delete", "/v1/webhooks/{webhook_id}"): ADMINS_NOT_FOUND,
    ("post", "/v1/webhooks/{webhook_id}/disable"): ADMINS_NOT_FOUND,
    ("post", "/v1/webhooks/{webhook_id}/enable"): ADMINS_NOT_FOUND,
    ("post", "/v1/webhooks/{webhook_id}/rotate"): ADMINS_NOT_FOUND,
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): ADMINS_NOT_FOUND,
    ("post", "/v1/webhooks/{webhook_id}/redeliver"): ADMINS_NOT_FOUND,
    ("post", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): ADMINS_NOT_FOUND,
}


def _body(method: str, path: str, caller: str) -> dict[str, Any] | None:
    """A valid body for the operations that take one."""
    if (method, path) in {("post", "/v1/events"), ("post", "/v1/simulate")}:
        return oeo_start(f"matrix-{caller}")
    if (method, path) == ("post", "/v1/decisions/{decision_id}/overrides"):
        return {"customership": "local-244", "reason": "customer_request"}
    if (method, path) == ("post", "/v1/webhooks"):
        return {"url": "https://10.0.0.1/hook"}
    return None


def test_every_operation_answers_each_role_as_the_matrix_says(api: httpx.Client, make_key: KeyMaker) -> None:
    callers: dict[str, dict[str, str]] = {
        "nobody": {},
        "client": make_key(name="client-a"),
        "other_client": make_key(name="client-b"),
        "coach": make_key(role="coach", name="coach-244", municipality="244"),
        "other_coach": make_key(role="coach", name="coach-139", municipality="139"),
        "auditor": make_key(role="auditor", name="auditor"),
        "admin": make_key(role="admin", name="admin"),
    }
    decision = post(api, callers["client"], "matrix", "244")
    operations = {(method, path) for path, methods in create_app().openapi()["paths"].items() for method in methods}
    assert operations - MATRIX.keys() == set(), "operations with no row in the role matrix"
    assert MATRIX.keys() - operations == set(), "rows of the matrix for operations the app does not have"
    wrong = []
    for (method, path), expected in sorted(MATRIX.items()):
        url = path.replace("{decision_id}", decision["decision_id"])
        url = url.replace("{webhook_id}", NO_WEBHOOK).replace("{delivery_id}", NO_WEBHOOK)
        for caller in CALLERS:
            response = api.request(method, url, json=_body(method, path, caller), headers=callers[caller])
            if response.status_code != expected[caller]:
                wrong.append(f"{method.upper()} {path} as {caller}: {response.status_code}, not {expected[caller]}")
    assert wrong == []


# --- the web UI ------------------------------------------------------------------------------
# The same decision, seen by people logged in to the UI. A visitor (not logged in) is sent to
# the login page (303), and a form of theirs too; otherwise pages answer as the API does for the
# role: 403 for a page of another role, 404 for a decision out of scope. `/ui/logout` runs last.

UI_CALLERS = ("visitor", "coach", "other_coach", "auditor", "admin")
LOGGED_IN = ("coach", "other_coach", "auditor", "admin")
UI_EVERYONE_SEE_OTHER = dict.fromkeys(UI_CALLERS, 303)
UI_ANY_USER = {**dict.fromkeys(LOGGED_IN, 200), "visitor": 303}
UI_COACHES = {"visitor": 303, "coach": 200, "other_coach": 200, "auditor": 403, "admin": 403}
UI_AUDIT = {"visitor": 303, "coach": 403, "other_coach": 403, "auditor": 200, "admin": 200}
UI_PUBLIC = dict.fromkeys(UI_CALLERS, 200)

UI_MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("get", "/"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/lang/{language}"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/login"): {**UI_EVERYONE_SEE_OTHER, "visitor": 200},
    ("post", "/ui/login"): {**UI_EVERYONE_SEE_OTHER, "visitor": 401},  # each logs in again; a visitor has no account
    ("post", "/ui/logout"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/route"): UI_COACHES,
    ("post", "/ui/route"): {**UI_COACHES, "coach": 303, "other_coach": 303},
    ("get", "/ui/decisions"): UI_ANY_USER,
    ("get", "/ui/decisions/{decision_id}"): {**UI_ANY_USER, "other_coach": 404},
    # As POST /v1/decisions/{id}/overrides: coaches and admins; out of scope, 404.
    ("post", "/ui/decisions/{decision_id}/overrides"): {
        "visitor": 303,
        "coach": 303,
        "other_coach": 404,
        "auditor": 403,
        "admin": 303,
    },  # fmt: skip
    ("get", "/ui/admin"): {**UI_COACHES, "coach": 403, "other_coach": 403, "admin": 200},
    ("get", "/ui/admin/webhooks"): {**UI_COACHES, "coach": 403, "other_coach": 403, "admin": 200},
    # Refused at its URL (no subscription is left behind), and an action on one that does not exist.
    ("post", "/ui/admin/webhooks"): {**UI_COACHES, "coach": 403, "other_coach": 403, "admin": 422},
    ("post", "/ui/admin/webhooks/{webhook_id}"): {**UI_COACHES, "coach": 403, "other_coach": 403, "admin": 404},
    # As GET /v1/decisions/{id}/link, /v1/audit/verify, /checkpoints and /access: auditors and admins.
    # GET /v1/decisions lets everyone search within scope; the UI's log search and export are the
    # auditor's pages (coaches have /ui/decisions).
    ("get", "/ui/audit/decisions"): UI_AUDIT,
    ("post", "/ui/audit/decisions"): UI_AUDIT,
    ("get", "/ui/audit/export"): UI_AUDIT,
    ("post", "/ui/audit/export"): UI_AUDIT,
    ("get", "/ui/audit/chain"): UI_AUDIT,
    ("post", "/ui/audit/chain"): UI_AUDIT,
    ("get", "/ui/audit/checkpoint"): UI_AUDIT,
    ("get", "/ui/audit/access"): UI_AUDIT,
    # The API's documentation (as FastAPI's own /docs was) and the favicon: anyone, no login.
    ("get", "/docs"): UI_PUBLIC,
    ("head", "/docs"): UI_PUBLIC,
    ("get", "/favicon.ico"): UI_PUBLIC,
    ("head", "/favicon.ico"): UI_PUBLIC,
}


def _routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint, also those of included routers (FastAPI keeps them as a router of their own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        if (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(included.routes)


def _ui_operations() -> set[tuple[str, str]]:
    """Every (method, path) the app serves outside its OpenAPI document: the UI's pages and forms."""
    return {
        (method.lower(), route.path)
        for route in _routes(create_app().routes)
        if not route.include_in_schema
        for method in route.methods
    }


def _ui_form(method: str, path: str, caller: str, users: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A valid form for each POST, so that only the role decides the answer."""
    if path == "/ui/login":
        username, password = users.get(caller, ("nobody", "not a password"))
        return {"username": username, "password": password}
    if path == "/ui/route":
        # Each coach routes a customer of their own municipality: one of another is refused at its field.
        home = "139" if caller == "other_coach" else "244"
        return {
            "event_type": "oeo.start", "event_id": f"matrix-{caller}", "occurred_at": "2025-03-03T09:15",
            "customer_type": "jobseeker", "customer_id": IDENTITY_CODE, "home_municipality": home,
        }  # fmt: skip
    if path == "/ui/decisions/{decision_id}/overrides":
        return {"customership": "local-244", "reason": "customer_request"}
    if path in ("/ui/audit/decisions", "/ui/audit/export"):
        return {"customer_id": IDENTITY_CODE}
    if path == "/ui/admin/webhooks":
        return {"url": "https://10.0.0.1/hook"}
    if path == "/ui/admin/webhooks/{webhook_id}":
        return {"action": "disable"}
    return {}


def test_every_ui_page_answers_each_role_as_the_matrix_says(
    server: Server, api: httpx.Client, make_key: KeyMaker, make_user: UserMaker
) -> None:
    users = {
        "coach": make_user("matrix-coach", municipality="244"),
        "other_coach": make_user("matrix-other", municipality="139"),
        "auditor": make_user("matrix-auditor", role="auditor"),
        "admin": make_user("matrix-admin", role="admin"),
    }
    callers = {caller: Visitor(server) for caller in UI_CALLERS}
    try:
        wrong = _ui_answers(callers, users, post(api, make_key(name="client-a"), "matrix", "244")["decision_id"])
    finally:
        for visitor in callers.values():
            visitor.client.close()
    assert wrong == []


def _ui_answers(callers: dict[str, Visitor], users: dict[str, tuple[str, str]], decision_id: str) -> list[str]:
    """The answers that differ from the matrix."""
    for caller, visitor in callers.items():
        if caller in users:
            assert visitor.login(*users[caller]).status_code == 303
        else:
            visitor.get("/ui/login")  # an anonymous session, so that its forms pass CSRF and meet the login check
    operations = _ui_operations()
    assert operations - UI_MATRIX.keys() == set(), "UI routes with no row in the role matrix"
    assert UI_MATRIX.keys() - operations == set(), "rows of the matrix for UI routes the app does not have"
    wrong = []
    for method, path in sorted(UI_MATRIX, key=lambda operation: operation[1] == "/ui/logout"):
        url = path.replace("{decision_id}", decision_id).replace("{language}", "en").replace("{webhook_id}", NO_WEBHOOK)
        for caller, visitor in callers.items():
            form = None
            if method == "post":
                token = CSRF.search(visitor.get("/ui/decisions" if caller in users else "/ui/login").text)
                assert token, caller
                form = {"csrf_token": token.group(1), **_ui_form(method, path, caller, users)}
            response = visitor.request(method.upper(), url, data=form)
            expected = UI_MATRIX[(method, path)][caller]
            if response.status_code != expected:
                wrong.append(f"{method.upper()} {path} as {caller}: {response.status_code}, not {expected}")
            elif caller == "visitor" and expected == 303 and path not in ("/", "/ui/lang/{language}"):
                # A visitor's 303 is to the login page, never past it.
                if not response.headers["location"].startswith("/ui/login"):
                    wrong.append(f"{method.upper()} {path} as a visitor went to {response.headers['location']}")
    return wrong
