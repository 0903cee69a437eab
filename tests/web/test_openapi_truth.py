"""Where /openapi.json and the behaviour disagreed: each now says what the other does.

Schemathesis' positive-data check (tests/web/test_hostile_input.py) walks all of it; these pin
the cases it found, so that a regression names itself.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import KeyMaker
from tests.test_personal_data import event

CODE = "131052-308T"


def _parameter(api: httpx.Client, path: str, name: str) -> dict[str, Any]:
    operation = api.get("/openapi.json").json()["paths"][path]["get"]
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"] == name)
    return found


def test_a_405_allows_every_method_of_the_path(api: httpx.Client, make_key: KeyMaker) -> None:
    response = api.put("/v1/decisions/x/overrides", headers=make_key())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_a_checkpoint_is_one_parameter_whose_four_fields_all_come(api: httpx.Client, make_key: KeyMaker) -> None:
    parameter = _parameter(api, "/v1/audit/verify", "checkpoint")
    assert parameter["schema"]["required"] == ["seq", "hash", "at", "signature"]
    assert (parameter["style"], parameter["explode"], parameter["required"]) == ("form", True, False)
    partial = api.get("/v1/audit/verify", params={"seq": 1}, headers=make_key(role="auditor", name="auditor"))
    assert partial.status_code == 422
    assert {tuple(e["loc"]) for e in partial.json()["errors"]} == {("query", n) for n in ("hash", "at", "signature")}
    # Any time the pattern admits is taken, even one whose digits spell a business id.
    whole = {"seq": 1, "hash": "0" * 64, "at": "2026-11-30T11:27:46.1000002-02:00", "signature": "0" * 64}
    checked = api.get("/v1/audit/verify", params=whole, headers=make_key(role="auditor", name="auditor-2"))
    assert checked.status_code == 200


def test_the_customer_header_is_never_empty_in_the_schema_nor_taken_empty(
    api: httpx.Client, make_key: KeyMaker
) -> None:
    assert _parameter(api, "/v1/decisions", "Reitti-Customer-Id")["schema"]["anyOf"][0]["minLength"] == 1
    auditor = make_key(role="auditor", name="auditor")
    response = api.get("/v1/decisions", headers={**auditor, "Reitti-Customer-Id": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Reitti-Customer-Id"]


def test_a_cursor_is_what_its_pattern_says(api: httpx.Client, make_key: KeyMaker) -> None:
    pattern = _parameter(api, "/v1/decisions", "cursor")["schema"]["anyOf"][0]["pattern"]
    assert pattern == "^[0-9]{1,18}$"
    auditor = make_key(role="auditor", name="auditor")
    assert api.get("/v1/decisions", params={"cursor": "1"}, headers=auditor).json()["items"] == []
    assert api.get("/v1/decisions", params={"cursor": "a"}, headers=auditor).status_code == 422


def test_the_customer_header_and_a_pseudonym_both_hold(api: httpx.Client, make_key: KeyMaker) -> None:
    decision = api.post("/v1/events", json=event("both", CODE), headers=make_key()).json()
    auditor = make_key(role="auditor", name="auditor")
    mine = api.get("/v1/decisions", headers={**auditor, "Reitti-Customer-Id": CODE}).json()["items"]
    assert [d["decision_id"] for d in mine] == [decision["decision_id"]]
    # A pseudonym is hex: this one holds something shaped like a valid code, and is still a pseudonym.
    other = "ee765ee252e02f617de9ea090968e054bc6cc0e251ca09d4a3126b401f5ff610"
    both = api.get(
        "/v1/decisions", params={"customer_pseudonym": other}, headers={**auditor, "Reitti-Customer-Id": CODE}
    )
    assert both.status_code == 200
    assert both.json()["items"] == []


def test_stats_is_not_a_decision_id_in_the_schema(api: httpx.Client) -> None:
    # GET /v1/decisions/stats answers stats, not a decision: the {decision_id} path says it takes no "stats".
    parameter = api.get("/openapi.json").json()["paths"]["/v1/decisions/{decision_id}"]["get"]["parameters"]
    assert next(p for p in parameter if p["name"] == "decision_id")["schema"]["not"] == {"const": "stats"}
