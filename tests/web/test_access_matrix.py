"""Who may call what: every operation of the app against a matrix of roles, over real HTTP.

The operations come from the app's own OpenAPI document, and the UI's pages from its routes
outside that document, so an endpoint or page added without a row here fails these tests: no
endpoint ships without someone deciding who may call it.
The decision in the matrix was posted by `client-a` for a customer of Kempele (244) and is
handled centrally, so a coach of Kempele sees it and a coach of Ii (139) does not: for
them, as for another client, it does not exist (404, never 403, so existence does not leak).
It hands the customer over from Kempele's local unit to the OEO experts: their staff (`unit`)
see it, the EU services' staff (`other_unit`) do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.main import create_app
from app.web.deps import CUSTOMER_HEADER
from tests.conftest import KeyMaker, Server, UserMaker
from tests.web.api.test_decisions import post
from tests.web.api.test_events import IDENTITY_CODE, oeo_start
from tests.web.ui.test_pages import CSRF, Visitor

CALLERS = (
    "nobody",
    "client",
    "other_client",
    "coach",
    "other_coach",
    "unit",
    "other_unit",
    "auditor",
    "admin",
    "management",
)
EVERYONE = dict.fromkeys(CALLERS, 200)
ANY_KEY = {**EVERYONE, "nobody": 401}
PEOPLE_WHO_AUDIT = {**dict.fromkeys(CALLERS, 403), "nobody": 401, "auditor": 200, "admin": 200}
# Management reads aggregates only: no decision, no page of the log, whatever its scope.
DECISION_READERS = {**ANY_KEY, "management": 403}
IN_SCOPE = {**DECISION_READERS, "other_client": 404, "other_coach": 404, "other_unit": 404}
NOT_CLIENTS = {"nobody": 401, "client": 403, "other_client": 403}
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
    # The rule book: the area's law, readable by every key (README: the rule book).
    ("get", "/v1/rulesets/{version}"): ANY_KEY,
    # The interpretations register: auditors, admins and management (roles.READ_INTERPRETATIONS).
    ("get", "/v1/interpretations"): {**PEOPLE_WHO_AUDIT, "management": 200},
    ("post", "/v1/events"): {
        **dict.fromkeys(CALLERS, 403),
        "nobody": 401,
        "client": 201,
        "other_client": 201,
    },
    # Lists and counts are scoped: 200 for everyone, with only what each may see.
    ("get", "/v1/decisions"): DECISION_READERS,
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
    # The OEO experts' worklist: their own staff, auditors and admins; to other staff no such worklist.
    ("get", "/v1/units/{unit}/worklist"): {
        **NOT_CLIENTS,
        "coach": 404,
        "other_coach": 404,
        "unit": 200,
        "other_unit": 404,
        "auditor": 200,
        "admin": 200,
        "management": 403,
    },  # fmt: skip
    # Only a unit's staff answer for it: the coach sees the decision but answers for central-oeo (422).
    ("post", "/v1/decisions/{decision_id}/acknowledgements"): {
        **NOT_CLIENTS,
        "coach": 422,
        "other_coach": 404,
        "unit": 201,
        "other_unit": 404,
        "auditor": 403,
        "admin": 403,
        "management": 403,
    },  # fmt: skip
    # The rows run in order: the OEO experts took the item just before, so they cannot return it.
    ("post", "/v1/decisions/{decision_id}/returns"): {
        **NOT_CLIENTS,
        "coach": 422,
        "other_coach": 404,
        "unit": 409,
        "other_unit": 404,
        "auditor": 403,
        "admin": 403,
        "management": 403,
    },  # fmt: skip
    ("get", "/v1/customership"): IN_SCOPE,
    # Waiting times are aggregates: management reads them too.
    ("get", "/v1/waiting-times"): {**PEOPLE_WHO_AUDIT, "management": 200},
    ("get", "/v1/audit/verify"): PEOPLE_WHO_AUDIT,
    ("get", "/v1/audit/checkpoints"): PEOPLE_WHO_AUDIT,
    ("get", "/v1/audit/access"): PEOPLE_WHO_AUDIT,
    ("post", "/v1/simulate"): ANY_KEY,
    # Versions that do not exist, so that no one walks the whole domain here: past the
    # role check the answer is 404 (the diff itself has its own test).
    ("get", "/v1/rulesets/{before}/diff/{after}"): {**PEOPLE_WHO_AUDIT, "auditor": 404, "admin": 404},
    # Aggregates: management, auditors, admins; coaches get their municipality's line; integrations and
    # the central units' staff nothing.
    ("get", "/v1/reports/cost-sharing"): {
        **ANY_KEY,
        "client": 403,
        "other_client": 403,
        "unit": 403,
        "other_unit": 403,
    },  # fmt: skip
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
# The query an operation needs to get past its validation, so that only the role decides.
QUERIES = {"/v1/reports/cost-sharing": {"from": "2025-01-01", "to": "2025-12-31"}}


def _body(method: str, path: str, caller: str) -> dict[str, Any] | None:
    """A valid body for the operations that take one."""
    if (method, path) in {("post", "/v1/events"), ("post", "/v1/simulate")}:
        return oeo_start(f"matrix-{caller}")
    if (method, path) == ("post", "/v1/decisions/{decision_id}/overrides"):
        return {"customership": "local-244", "reason": "customer_request"}
    if (method, path) == ("post", "/v1/decisions/{decision_id}/acknowledgements"):
        return {"unit": "central-oeo"}
    if (method, path) == ("post", "/v1/decisions/{decision_id}/returns"):
        return {"unit": "central-oeo", "reason": "not_our_unit"}
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
        "unit": make_key(role="unit", name="oeo-experts", unit="central-oeo"),
        "other_unit": make_key(role="unit", name="eu-services", unit="central-eu"),
        "auditor": make_key(role="auditor", name="auditor"),
        "admin": make_key(role="admin", name="admin"),
        "management": make_key(role="management", name="management"),
    }
    decision = post(api, callers["client"], "matrix", "244")
    operations = {(method, path) for path, methods in create_app().openapi()["paths"].items() for method in methods}
    assert operations - MATRIX.keys() == set(), "operations with no row in the role matrix"
    assert MATRIX.keys() - operations == set(), "rows of the matrix for operations the app does not have"
    wrong = []
    for (method, path), expected in sorted(MATRIX.items()):
        url = path.replace("{decision_id}", decision["decision_id"]).replace("{unit}", "central-oeo")
        url = url.replace("{version}", "2025-01-01")
        # The register is asked of the decision's customer, who is named in a header, never in the URL.
        customer = {CUSTOMER_HEADER: IDENTITY_CODE} if path == "/v1/customership" else {}
        url = url.replace("{webhook_id}", NO_WEBHOOK).replace("{delivery_id}", NO_WEBHOOK)
        for caller in CALLERS:
            headers = {**callers[caller], **customer}
            body = _body(method, path, caller)
            response = api.request(method, url, json=body, headers=headers, params=QUERIES.get(path))
            if response.status_code != expected[caller]:
                wrong.append(f"{method.upper()} {path} as {caller}: {response.status_code}, not {expected[caller]}")
    assert wrong == []


# --- the web UI ------------------------------------------------------------------------------
# The same decision, seen by people logged in to the UI. A visitor (not logged in) is sent to
# the login page (303), and a form of theirs too; otherwise pages answer as the API does for the
# role: 403 for a page of another role, 404 for a decision out of scope. `/ui/logout` runs last.

UI_CALLERS = ("visitor", "coach", "other_coach", "unit", "auditor", "admin", "management")
LOGGED_IN = ("coach", "other_coach", "unit", "auditor", "admin", "management")
UI_EVERYONE_SEE_OTHER = dict.fromkeys(UI_CALLERS, 303)
UI_ANY_USER = {**dict.fromkeys(LOGGED_IN, 200), "visitor": 303}
# Everyone logged in reads decisions, but management, which reads aggregates only.
UI_DECISION_READERS = {**UI_ANY_USER, "management": 403}
UI_COACHES = {
    "visitor": 303, "coach": 200, "other_coach": 200, "unit": 403, "auditor": 403, "admin": 403, "management": 403,
}  # fmt: skip
UI_AUDIT = {
    "visitor": 303, "coach": 403, "other_coach": 403, "unit": 403, "auditor": 200, "admin": 200, "management": 403,
}  # fmt: skip
UI_DASHBOARD = {**UI_AUDIT, "management": 200}
# A unit's staff (coaches are their local unit's) have a worklist; auditors and admins read them over the API.
UI_STAFF = {**UI_COACHES, "unit": 200}
UI_PUBLIC = dict.fromkeys(UI_CALLERS, 200)

UI_MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("get", "/"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/lang/{language}"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/login"): {**UI_EVERYONE_SEE_OTHER, "visitor": 200},
    ("post", "/ui/login"): {**UI_EVERYONE_SEE_OTHER, "visitor": 401},  # each logs in again; a visitor has no account
    ("post", "/ui/logout"): UI_EVERYONE_SEE_OTHER,
    # Sign-in through an identity provider: this server has none, so there is nothing there for anyone
    # (tests/web/ui/test_sso.py signs in through a real one).
    ("get", "/ui/sso/start"): dict.fromkeys(UI_CALLERS, 404),
    ("get", "/ui/sso/callback"): dict.fromkeys(UI_CALLERS, 404),
    ("get", "/ui/route"): UI_COACHES,
    ("post", "/ui/route"): {**UI_COACHES, "coach": 303, "other_coach": 303},
    ("get", "/ui/decisions"): UI_DECISION_READERS,
    ("get", "/ui/decisions/{decision_id}"): {**UI_DECISION_READERS, "other_coach": 404},
    # As POST /v1/decisions/{id}/overrides: coaches and admins; out of scope, 404.
    ("post", "/ui/decisions/{decision_id}/overrides"): {
        "visitor": 303,
        "coach": 303,
        "other_coach": 404,
        "unit": 403,
        "auditor": 403,
        "admin": 303,
        "management": 403,
    },  # fmt: skip
    ("get", "/ui/admin"): {**UI_COACHES, "coach": 403, "other_coach": 403, "admin": 200},
    ("get", "/ui/worklist"): UI_STAFF,
    # The OEO experts take the item (303 back to the worklist); the Kempele coach has only the handover
    # out, which it may take as well; the Ii coach does not see the decision.
    ("post", "/ui/worklist/{decision_id}/acknowledgement"): {**UI_STAFF, "coach": 303, "other_coach": 404, "unit": 303},
    # Both took their items just before (the rows run in order): a taken item is not returned (409).
    ("post", "/ui/worklist/{decision_id}/return"): {**UI_STAFF, "coach": 409, "other_coach": 404, "unit": 409},
    # A customer's journey: everyone logged in but management, scoped; the Ii coach has routed the
    # same person as a customer of Ii above (POST /ui/route), so it sees that decision's row.
    ("get", "/ui/customer"): UI_DECISION_READERS,
    ("post", "/ui/customer"): UI_DECISION_READERS,
    # The rule book, as GET /v1/rulesets/{version}: every signed-in role (/ui/rules goes to the version in force).
    ("get", "/ui/rules"): UI_EVERYONE_SEE_OTHER,
    ("get", "/ui/rules/{version}"): UI_ANY_USER,
    # As GET /v1/rulesets/{a}/diff/{b}: auditors and admins; asked for versions that do not exist (404), so
    # that no one walks the whole domain here.
    ("get", "/ui/rules/diff"): {**UI_AUDIT, "auditor": 404, "admin": 404},
    # As GET /v1/interpretations: roles.READ_INTERPRETATIONS.
    ("get", "/ui/interpretations"): UI_DASHBOARD,
    ("get", "/ui/interpretations.csv"): UI_DASHBOARD,
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
    # The dashboard: management, auditors and admins (roles.DASHBOARD); cost sharing also for coaches,
    # who see their own municipality's line (roles.COST_SHARING).
    ("get", "/ui/reports"): UI_DASHBOARD,
    # A central unit's staff have no municipality's line to read.
    ("get", "/ui/reports/cost-sharing"): {**UI_ANY_USER, "unit": 403},
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
    if path == "/ui/worklist/{decision_id}/return":
        return {"reason": "not_our_unit"}
    if path in ("/ui/audit/decisions", "/ui/audit/export", "/ui/customer"):
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
        "unit": make_user("matrix-unit", role="unit", unit="central-oeo"),
        "auditor": make_user("matrix-auditor", role="auditor"),
        "admin": make_user("matrix-admin", role="admin"),
        "management": make_user("matrix-management", role="management"),
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
        url = path.replace("{decision_id}", decision_id).replace("{language}", "en").replace("{version}", "2025-01-01")
        url = url.replace("{webhook_id}", NO_WEBHOOK)
        if path == "/ui/rules/diff":
            url += "?before=1999-01-01&after=1999-02-01"
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
