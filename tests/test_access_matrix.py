"""Who may call what: every operation of the app against a matrix of roles, over real HTTP.

The operations come from the app's own OpenAPI document, so an endpoint added without a
row here fails this test: no endpoint ships without someone deciding who may call it.
The decision in the matrix was posted by `client-a` for a customer of Kempele (244) and is
handled centrally, so a coach of Kempele sees it and a coach of Ii (139) does not: for
them, as for another client, it does not exist (404, never 403, so existence does not leak).
"""

from __future__ import annotations

from typing import Any

import httpx

from app.main import create_app
from tests.conftest import KeyMaker
from tests.test_api_events import oeo_start
from tests.test_api_reads import post

CALLERS = ("nobody", "client", "other_client", "coach", "other_coach", "auditor", "admin")
EVERYONE = dict.fromkeys(CALLERS, 200)
ANY_KEY = {**EVERYONE, "nobody": 401}
PEOPLE_WHO_AUDIT = {**dict.fromkeys(CALLERS, 403), "nobody": 401, "auditor": 200, "admin": 200}
IN_SCOPE = {**ANY_KEY, "other_client": 404, "other_coach": 404}

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
}


def _body(method: str, path: str, caller: str) -> dict[str, Any] | None:
    """A valid body for the operations that take one."""
    if (method, path) in {("post", "/v1/events"), ("post", "/v1/simulate")}:
        return oeo_start(f"matrix-{caller}")
    if (method, path) == ("post", "/v1/decisions/{decision_id}/overrides"):
        return {"customership": "local-244", "reason": "customer_request"}
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
        for caller in CALLERS:
            response = api.request(method, url, json=_body(method, path, caller), headers=callers[caller])
            if response.status_code != expected[caller]:
                wrong.append(f"{method.upper()} {path} as {caller}: {response.status_code}, not {expected[caller]}")
    assert wrong == []
