"""No identity code is stored or shown outside `customer.id`: every other input that carries one is refused.

Each test sends a valid code where it does not belong, then looks for it in the answer, the
logs and everything the database holds (tests/test_personal_data.py's `stored_text`).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine
from tests.conftest import KeyMaker, Server, UserMaker
from tests.test_personal_data import event, stored_text
from tests.web.ui.test_pages import Visitor

CODE = "131052-308T"
# The same person's code inside other text, in lower case, and a business id inside text.
CARRIERS = [CODE, f"ura-{CODE}-1", CODE.lower(), "x0112038-9x"]


def assert_nowhere(database_url: str, *texts: str) -> None:
    """None of the carriers' codes is in the given texts nor anywhere in the database."""
    everything = "\n".join([*texts, stored_text(database_url)])
    for code in (CODE, CODE.lower(), "0112038-9"):
        assert code not in everything


def named(response: httpx.Response, *loc: str) -> None:
    """A 422 problem that names the field at `loc`."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert list(loc) in [e["loc"] for e in response.json()["errors"]]


@pytest.mark.parametrize("event_id", CARRIERS)
def test_an_event_id_holding_an_identity_code_is_refused(
    api: httpx.Client, make_key: KeyMaker, database_url: str, event_id: str
) -> None:
    response = api.post("/v1/events", json=event(event_id.replace("x", "-"), CODE), headers=make_key())
    named(response, "body", "event_id")
    assert_nowhere(database_url, response.text)


@pytest.mark.parametrize("where", ["attribute name", "extra field", "attribute value"])
def test_a_submitted_key_or_value_holding_a_code_is_never_sent_back(
    api: httpx.Client, make_key: KeyMaker, database_url: str, where: str
) -> None:
    body: dict[str, Any] = event("keys", CODE)
    if where == "attribute name":
        body["attributes"] = {f"x{CODE.lower()}": True}
    elif where == "extra field":
        body[CODE] = 1
    else:
        body["attributes"] = {"requires_special_expertise": CODE}
    response = api.post("/v1/events", json=body, headers=make_key())
    assert response.status_code == 422
    assert_nowhere(database_url, response.text)


@pytest.mark.parametrize("name", ["event_type", "handler", "rule_id", "ruleset", "cursor"])
def test_a_filter_holding_an_identity_code_is_refused_and_not_logged(
    api: httpx.Client, make_key: KeyMaker, database_url: str, name: str
) -> None:
    auditor = make_key(role="auditor", name="auditor")
    for path in ("/v1/decisions", "/v1/decisions/stats"):
        if name == "cursor" and path.endswith("stats"):
            continue
        response = api.get(path, params={name: f"x{CODE}"}, headers=auditor)
        named(response, "query", name)
    access = api.get("/v1/audit/access", headers=make_key(role="admin", name="admin")).text
    assert_nowhere(database_url, response.text, access)


def test_override_text_holding_an_identity_code_is_refused(
    api: httpx.Client, make_key: KeyMaker, database_url: str
) -> None:
    decision = api.post("/v1/events", json=event("ovr", CODE), headers=make_key()).json()
    coach = make_key(role="coach", name="coach-244", municipality="244")
    body = {"handler": "local-564", "reason": "customer_moved", "text": f"asiakas {CODE} soitti"}
    response = api.post(f"/v1/decisions/{decision['decision_id']}/overrides", json=body, headers=coach)
    named(response, "body", "text")
    assert_nowhere(database_url, response.text)


@pytest.mark.parametrize("tail", ["", "/link", "/overrides"])
def test_an_id_that_names_nothing_is_neither_repeated_nor_logged(
    api: httpx.Client, make_key: KeyMaker, database_url: str, tail: str
) -> None:
    auditor = make_key(role="auditor", name="auditor")
    response = api.get(f"/v1/decisions/{CODE}{tail}", headers=auditor)
    assert response.status_code == 404
    entries = api.get("/v1/audit/access", headers=make_key(role="admin", name="admin")).json()["items"]
    assert [e["decision_id"] for e in entries] == ["not-a-decision-id"]  # the probe is logged, not its text
    assert_nowhere(database_url, response.text, str(entries))


def test_a_failed_login_neither_logs_nor_shows_the_name_typed(
    server: Server, make_user: UserMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    make_user("kaisa")
    visitor = Visitor(server)
    try:
        typed = visitor.login(CODE, "wrong password")
        plain = visitor.login("kaisa", "wrong password")
    finally:
        visitor.client.close()
    assert typed.status_code == 401
    assert 'value="kaisa"' in plain.text  # a plain name is still given back to correct
    assert CODE not in typed.text + caplog.text


def test_a_database_error_never_logs_the_statement_parameters(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as raised:
            connection.execute(text("INSERT INTO no_such_table VALUES (:code)"), {"code": CODE})
    finally:
        engine.dispose()
    assert CODE not in str(raised.value)
