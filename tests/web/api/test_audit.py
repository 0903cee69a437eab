"""The auditor's reads over real HTTP: customer search, CSV export, stats, overrides, and the
access log that records every read by a person."""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.access.identity import pseudonymise
from app.access.keys import Principal
from app.db import make_engine, make_sessions
from app.decisions.queries import CSV_COLUMNS, export_csv, export_start
from app.decisions.stats import _finnish_months
from app.models import Role
from app.schemas import DecisionQuery, encode_cursor
from app.time import FINNISH_TIME
from tests.conftest import TEST_CHAIN_INFO, TEST_PSEUDONYM_KEY, KeyMaker, count_rows
from tests.web.api.test_decisions import post
from tests.web.api.test_events import IDENTITY_CODE

OTHER_CODE = "010594Y9032"


def access(api: httpx.Client, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/audit/access", params=params, headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def override(api: httpx.Client, key: dict[str, str], decision_id: str, **body: Any) -> httpx.Response:
    return api.post(f"/v1/decisions/{decision_id}/overrides", json=body, headers=key)


def coach(make_key: KeyMaker, municipality: str) -> dict[str, str]:
    return make_key(role="coach", name=f"coach-{municipality}", municipality=municipality)


class TestCustomerSearch:
    def test_the_header_selects_one_customers_decisions_and_the_code_is_never_echoed_or_logged(
        self, api: httpx.Client, make_key: KeyMaker, caplog: pytest.LogCaptureFixture
    ) -> None:
        key = make_key()
        mine = post(api, key, "e1", "244")
        other = post(
            api, key, "e2", "244", customer={"type": "jobseeker", "id": OTHER_CODE, "home_municipality": "244"}
        )
        auditor = make_key(role="auditor", name="auditor")
        caplog.set_level(logging.DEBUG)
        page = api.get("/v1/decisions", headers={**auditor, "Reitti-Customer-Id": IDENTITY_CODE})
        assert [d["decision_id"] for d in page.json()["items"]] == [mine["decision_id"]]
        again = api.get("/v1/decisions", headers={**auditor, "Reitti-Customer-Id": OTHER_CODE})
        assert [d["decision_id"] for d in again.json()["items"]] == [other["decision_id"]]
        logged = api.get("/v1/audit/access", params={"who": "auditor"}, headers=auditor)
        pseudonym = pseudonymise(TEST_PSEUDONYM_KEY.encode(), IDENTITY_CODE)
        assert pseudonym in [entry["filters"].get("customer_pseudonym") for entry in logged.json()["items"]]
        for text in (page.text, logged.text, caplog.text):
            assert IDENTITY_CODE not in text

    def test_an_invalid_code_is_422_naming_the_header_without_echoing_it(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        wrong = "131052-308X"  # wrong check character
        response = api.get("/v1/decisions", headers={**make_key(role="auditor"), "Reitti-Customer-Id": wrong})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["header", "Reitti-Customer-Id"]
        assert "131052" not in response.text

    def test_two_different_customers_given_select_nothing(self, api: httpx.Client, make_key: KeyMaker) -> None:
        # Every filter given must hold (a 422 here was a rejection the OpenAPI document could not state).
        post(api, make_key(), "e1", "244")
        headers = {**make_key(role="auditor"), "Reitti-Customer-Id": IDENTITY_CODE}
        response = api.get("/v1/decisions", params={"customer_pseudonym": "a" * 64}, headers=headers)
        assert response.status_code == 200
        assert response.json()["items"] == []

    def test_a_coach_searching_a_customer_sees_only_its_municipality(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        post(api, make_key(), "e1", "244")
        headers = {**coach(make_key, "139"), "Reitti-Customer-Id": IDENTITY_CODE}
        assert api.get("/v1/decisions", headers=headers).json()["items"] == []


class TestCsvExport:
    def test_the_export_is_the_selection_of_the_pages_with_pseudonyms_only(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        posted = [post(api, key, f"e{i}", "244" if i % 2 else "139") for i in range(7)]
        auditor = make_key(role="auditor", name="auditor")
        params = {"municipality": "244", "limit": 2}
        page = api.get("/v1/decisions", params=params, headers=auditor).json()
        exported = api.get("/v1/decisions", params=params, headers={**auditor, "Accept": "text/csv"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert list(rows[0]) == list(CSV_COLUMNS)
        expected = [d["decision_id"] for d in reversed(posted) if d["event_id"] in {"e1", "e3", "e5"}]
        assert [row["decision_id"] for row in rows] == expected  # every row, not one page of `limit`
        assert [row["decision_id"] for row in rows[:2]] == [d["decision_id"] for d in page["items"]]
        assert {row["handler_unit"] for row in rows} == {"central-oeo"}
        assert IDENTITY_CODE not in exported.text
        assert rows[0]["customer_pseudonym"] == pseudonymise(TEST_PSEUDONYM_KEY.encode(), IDENTITY_CODE)

    def test_batches_join_without_losing_or_repeating_a_row(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        posted = [post(api, key, f"e{i}", "244") for i in range(5)]
        auditor = Principal(key_id=0, name="auditor", role=Role.auditor, municipality=None)
        engine = make_engine(database_url)
        read, _ = make_sessions(engine, info=TEST_CHAIN_INFO)
        try:
            with read() as session:
                start, count = export_start(session, auditor, DecisionQuery())
            text = "".join(export_csv(read, auditor, DecisionQuery(), start=start, batch=2))
        finally:
            engine.dispose()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert count == 5
        assert [row["decision_id"] for row in rows] == [d["decision_id"] for d in reversed(posted)]

    def test_a_coach_export_is_scoped_and_logged_with_its_row_count(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        for i in range(4):
            post(api, key, f"e{i}", "244" if i < 3 else "139")
        exported = api.get("/v1/decisions", headers={**coach(make_key, "244"), "Accept": "text/csv"})
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 3
        entries = access(api, make_key(role="admin", name="admin"), who="coach-244")
        assert [(e["action"], e["rows"], e["municipality"]) for e in entries] == [("export", 3, "244")]


class TestStats:
    def test_counts_by_rule_unit_municipality_and_month_with_each_rules_override_rate(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        oeo = [post(api, key, f"e{i}", home) for i, home in enumerate(["244", "244", "139"])]
        eu = post(api, key, "e3", "564", event_type="eu_job_search")
        assert (
            override(
                api, coach(make_key, "244"), oeo[0]["decision_id"], customership="local-244", reason="other"
            ).status_code
            == 201
        )
        stats = api.get("/v1/decisions/stats", headers=make_key(role="auditor", name="auditor")).json()
        assert (stats["total"], stats["overridden"]) == (4, 1)
        by_rule = {r["rule_id"]: r for r in stats["by_rule"]}
        assert by_rule["oeo.start"] == {
            "rule_id": "oeo.start",
            "decisions": 3,
            "overridden": 1,
            "override_rate": 0.3333,
        }
        assert by_rule[eu["rule"]["id"]]["override_rate"] == 0
        assert {c["key"]: c["decisions"] for c in stats["by_municipality"]} == {"244": 2, "139": 1, "564": 1}
        assert {c["key"]: c["decisions"] for c in stats["by_handler"]}["central-oeo"] == 3
        assert sum(c["decisions"] for c in stats["by_customership"]) == 4
        this_month = datetime.now(FINNISH_TIME).strftime("%Y-%m")
        assert stats["by_month"] == [{"key": this_month, "decisions": 4}]

    def test_a_coach_counts_only_its_municipality_and_filters_apply(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        for i, home in enumerate(["244", "244", "139"]):
            post(api, key, f"e{i}", home)
        assert api.get("/v1/decisions/stats", headers=coach(make_key, "139")).json()["total"] == 1
        auditor = make_key(role="auditor", name="auditor")
        assert api.get("/v1/decisions/stats", params={"municipality": "244"}, headers=auditor).json()["total"] == 2

    def test_a_month_is_the_month_in_finland(self) -> None:
        # UTC hours: Finland is UTC+3 on 31 March 2025 (summer time) and UTC+2 on 31 December.
        hours = [("2025-03-31 20", 1), ("2025-03-31 21", 2), ("2025-12-31 21", 4), ("2025-12-31 22", 8)]
        months = {c.key: c.decisions for c in _finnish_months(hours)}
        assert months == {"2025-03": 1, "2025-04": 2, "2025-12": 4, "2026-01": 8}


class TestOverrides:
    def test_an_override_is_a_new_chained_record_and_the_decision_stays_as_it_was(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        decision = post(api, make_key(), "e1", "244")
        kempele = coach(make_key, "244")
        body = {"customership": "local-244", "reason": "customer_request", "text": "Asiakas pyysi."}
        created = override(api, kempele, decision["decision_id"], **body)
        assert created.status_code == 201, created.text
        recorded = created.json()
        assert (recorded["customership"], recorded["handler"], recorded["seq"]) == ("local-244", None, 2)
        assert (recorded["recorded_by"], recorded["recorded_role"]) == ("coach-244", "coach")
        assert api.get(f"/v1/decisions/{decision['decision_id']}/overrides", headers=kempele).json() == [recorded]
        assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=kempele).json() == decision
        auditor = make_key(role="auditor", name="auditor")
        result = api.get("/v1/audit/verify", headers=auditor).json()
        assert (result["intact"], result["links"]) == (True, 2)

    def test_a_coach_of_another_municipality_gets_404_and_nothing_is_recorded(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        decision = post(api, make_key(), "e1", "244")
        refused = override(api, coach(make_key, "139"), decision["decision_id"], handler="local-139", reason="other")
        assert refused.status_code == 404
        assert count_rows(database_url, "overrides") == 0
        assert count_rows(database_url, "audit_chain") == 1

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"handler": "nowhere", "reason": "other"}, ["body", "handler"]),
            ({"customership": "central-oeo", "reason": "other"}, ["body", "customership"]),
            ({"handler": "local-244", "reason": "bored"}, ["body", "reason"]),
            ({"reason": "other"}, ["body"]),
            ({"handler": "local-244", "reason": "other", "text": "x" * 2001}, ["body", "text"]),
        ],
    )
    def test_an_unknown_or_unchanged_unit_or_reason_is_422(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str, body: dict[str, Any], loc: list[str]
    ) -> None:
        decision = post(api, make_key(), "e1", "244")
        response = override(api, make_key(role="admin", name="admin"), decision["decision_id"], **body)
        assert response.status_code == 422
        assert loc in [error["loc"] for error in response.json()["errors"]]
        assert count_rows(database_url, "overrides") == 0


class TestAccessLog:
    def test_the_auditor_sees_that_a_kempele_coach_opened_three_kempele_decisions(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        kempele = [post(api, key, f"e{i}", "244") for i in range(3)]
        kempele_coach, ii_coach = coach(make_key, "244"), coach(make_key, "139")
        for decision in kempele:
            assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=kempele_coach).status_code == 200
        assert api.get(f"/v1/decisions/{kempele[0]['decision_id']}", headers=ii_coach).status_code == 404
        assert api.get(f"/v1/decisions/{kempele[0]['decision_id']}", headers=key).status_code == 200
        auditor = make_key(role="auditor", name="auditor")
        opened = access(api, auditor, who="coach-244", action="decision")
        assert sorted(e["decision_id"] for e in opened) == sorted(d["decision_id"] for d in kempele)
        assert {(e["role"], e["municipality"], e["rows"]) for e in opened} == {("coach", "244", 1)}
        probed = access(api, auditor, municipality="139")
        assert [(e["decision_id"], e["rows"]) for e in probed] == [(kempele[0]["decision_id"], 0)]
        assert access(api, auditor, role="integration") == []  # a client reading what it posted

    def test_a_list_read_records_the_filter_and_the_row_count_and_pages(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        for i in range(3):
            post(api, key, f"e{i}", "244")
        auditor = make_key(role="auditor", name="auditor")
        for limit in (1, 2, 3):
            api.get("/v1/decisions", params={"municipality": "244", "limit": limit}, headers=auditor)
        first = api.get("/v1/audit/access", params={"action": "list", "limit": 2}, headers=auditor).json()
        assert [e["rows"] for e in first["items"]] == [3, 2]
        assert first["items"][0]["filters"] == {"municipality": "244", "limit": 3}
        rest = api.get("/v1/audit/access", params={"cursor": first["next_cursor"], "limit": 2}, headers=auditor)
        assert [e["rows"] for e in rest.json()["items"]] == [1]
        assert rest.json()["next_cursor"] is None

    def test_a_cursor_beyond_any_seq_is_422_not_a_crash(self, api: httpx.Client, make_key: KeyMaker) -> None:
        auditor = make_key(role="auditor", name="auditor")
        for path in ("/v1/audit/access", "/v1/decisions"):
            response = api.get(path, params={"cursor": encode_cursor(2**63)}, headers=auditor)
            assert response.status_code == 422, path
            assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


def test_key_5_and_user_5_read_apart_in_the_access_log(
    api: httpx.Client, make_key: KeyMaker, database_url: str
) -> None:
    from app.audit.access_log import record_access
    from app.models import AccessAction

    engine = make_engine(database_url)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
    with write() as session:
        for name in ("coach-244", "ui:kaisa"):  # an API key and a UI account, both number 5
            reader = Principal(key_id=5, name=name, role=Role.coach, municipality="244")
            record_access(session, reader, action=AccessAction.list, rows=0, filters={})
    engine.dispose()
    entries = access(api, make_key(role="admin", name="admin"))
    assert sorted((e["principal"], e["key_id"], e["key_name"]) for e in entries) == [
        ("key:5", 5, "coach-244"),
        ("user:5", 5, "ui:kaisa"),
    ]
    assert Principal(key_id=5, name="ui:kaisa", role=Role.coach, municipality="244").ref == "user:5"
