"""X-Road headers kept with the decision for auditors; X-Road-UserId only as its pseudonym."""

from __future__ import annotations

import json

import httpx

from app.access.identity import pseudonymise
from tests.conftest import TEST_PSEUDONYM_KEY, KeyMaker, chain_verifies, count_rows
from tests.web.api.test_events import IDENTITY_CODE, oeo_start

X_ROAD = {
    "X-Road-Client": "FI/GOV/0245437-2/ura",
    "X-Road-Id": "msg-7f3a",
    "X-Road-Request-Id": "req-0001",
    "X-Road-Issue": "JIRA-123",
}


def test_the_headers_are_kept_in_the_chained_event_and_the_user_only_as_a_pseudonym(
    api: httpx.Client, make_key: KeyMaker, database_url: str
) -> None:
    key = make_key()
    headers = {**key, **X_ROAD, "X-Road-UserId": f"FI{IDENTITY_CODE}"}
    response = api.post("/v1/events", json=oeo_start("x-road"), headers=headers)
    assert response.status_code == 201, response.text
    link = api.get(f"/v1/decisions/{response.json()['decision_id']}/link", headers=make_key("auditor", "auditor"))
    document = json.loads(link.json()["document"])
    assert document["record"]["event"]["x_road"] == {
        "client": "FI/GOV/0245437-2/ura",
        "id": "msg-7f3a",
        "request_id": "req-0001",
        "issue": "JIRA-123",
        "user_pseudonym": pseudonymise(TEST_PSEUDONYM_KEY.encode(), f"FI{IDENTITY_CODE}"),
    }
    assert IDENTITY_CODE not in link.text
    assert chain_verifies(database_url)[0]


def test_without_x_road_the_event_is_stored_as_before(api: httpx.Client, make_key: KeyMaker) -> None:
    response = api.post("/v1/events", json=oeo_start("no-x-road"), headers=make_key())
    link = api.get(f"/v1/decisions/{response.json()['decision_id']}/link", headers=make_key("auditor", "auditor"))
    assert "x_road" not in json.loads(link.json()["document"])["record"]["event"]


def test_an_identity_code_in_another_x_road_header_is_refused_at_that_header(
    api: httpx.Client, make_key: KeyMaker, database_url: str
) -> None:
    headers = {**make_key(), "X-Road-Issue": f"asiakas {IDENTITY_CODE}"}
    response = api.post("/v1/events", json=oeo_start("x-road-code"), headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "X-Road-Issue"]
    assert IDENTITY_CODE not in response.text
    assert count_rows(database_url) == 0
