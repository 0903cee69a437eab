"""GET /v1/interpretations: every reading of the plan, by the decisions it made, checked against the log itself."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.db import make_engine
from app.models import Decision
from app.time import today_in_finland
from tests.conftest import KeyMaker
from tests.web.api.test_events import oeo_start

CENTRAL_INTEGRATION = {
    "integration_plan_entitled": True,
    "integration_period_exceeded": False,
    "needs_integration_services": True,
}


def post_mix(api: httpx.Client, key: dict[str, str]) -> None:
    """Decisions of three kinds: an Oulu walk-in (a rule's reading), a central integration
    customer's employment plan (C's reading) and OEO studies starting (no reading)."""
    bodies: list[dict[str, Any]] = []
    for i in range(2):
        body = oeo_start(f"walk-in-{i}", event_type="information_advice")
        body["customer"]["home_municipality"] = "564"
        body["attributes"] = {"channel": "walk_in", "topic": "training"}
        bodies.append(body)
    for i in range(3):
        bodies.append(oeo_start(f"plan-{i}", event_type="employment_plan", attributes=CENTRAL_INTEGRATION))
    bodies.append(oeo_start("plan-local", event_type="employment_plan"))
    bodies.append(oeo_start("oeo"))
    for body in bodies:
        response = api.post("/v1/events", json=body, headers=key)
        assert response.status_code == 201, response.text


def counted_from_the_log(database_url: str, item: dict[str, Any]) -> int:
    """The decisions an item made, counted from the decisions themselves rather than the counts:
    a rule's by its id, C's by the decisions that carry C's interpretation note."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(Decision.ruleset_version, Decision.rule_id, Decision.decision)).all()
    engine.dispose()
    mine = [row for row in rows if row.ruleset_version == item["version"]]
    if item["kind"] == "rule":
        return sum(1 for row in mine if row.rule_id == item["id"])
    notes = {note["en"] for note in item["notes"]}
    return sum(1 for row in mine if notes & {note["en"] for note in row.decision["notes"]})


class TestInterpretationsRegister:
    def test_each_reading_counts_the_decisions_it_made_most_first(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        post_mix(api, make_key())
        response = api.get("/v1/interpretations", headers=make_key(role="auditor", name="auditor"))
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        for item in items:
            assert item["decisions"] == counted_from_the_log(database_url, item), item["id"]
            assert [note["kind"] for note in item["notes"]] == ["interpretation"] * len(item["notes"])
        by_id = {item["id"]: item for item in items}
        assert by_id["C"]["decisions"] == 3  # the local customer's plan is no reading: C was Kempele
        assert by_id["information_advice.walk_in.oulu"]["decisions"] == 2
        assert "oeo.start" not in by_id  # a literal rule is not in the register
        assert [item["decisions"] for item in items] == sorted((item["decisions"] for item in items), reverse=True)
        assert items[0]["id"] == "C"

    def test_the_catalogues_open_questions_stand_beside_their_readings(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        items = api.get("/v1/interpretations", headers=make_key(role="admin", name="admin")).json()["items"]
        asked = {item["id"]: item["open_question"] for item in items if item["open_question"]}
        assert set(asked) == {"C", "employer.advice.e_services", "information_advice.walk_in.oulu"}
        assert "BusinessAsema" in asked["information_advice.walk_in.oulu"]["en"]

    def test_a_period_counts_only_its_days(self, api: httpx.Client, make_key: KeyMaker) -> None:
        post_mix(api, make_key())
        auditor = make_key(role="auditor", name="auditor")
        today = today_in_finland()
        tomorrow = (today + timedelta(days=1)).isoformat()
        later = api.get("/v1/interpretations", params={"since": tomorrow}, headers=auditor).json()
        assert {item["decisions"] for item in later["items"]} == {0}
        now = api.get(
            "/v1/interpretations", params={"since": today.isoformat(), "until": today.isoformat()}, headers=auditor
        )
        assert Counter({item["id"]: item["decisions"] for item in now.json()["items"]})["C"] == 3

    def test_csv_holds_the_same_rows(self, api: httpx.Client, make_key: KeyMaker) -> None:
        post_mix(api, make_key())
        auditor = make_key(role="auditor", name="auditor")
        as_json = api.get("/v1/interpretations", headers=auditor).json()["items"]
        response = api.get("/v1/interpretations", headers={**auditor, "Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [(r["id"], int(r["decisions"])) for r in rows] == [(i["id"], i["decisions"]) for i in as_json]
        assert rows[0]["open_question_en"].startswith("Should C be")

    def test_an_unknown_version_is_404(self, api: httpx.Client, make_key: KeyMaker) -> None:
        auditor = make_key(role="auditor", name="auditor")
        assert api.get("/v1/interpretations", params={"ruleset": "1999-01-01"}, headers=auditor).status_code == 404

    def test_a_coach_may_not_read_it(self, api: httpx.Client, make_key: KeyMaker) -> None:
        coach = make_key(role="coach", name="coach", municipality="244")
        assert api.get("/v1/interpretations", headers=coach).status_code == 403


def test_the_ends_of_the_calendar_are_no_error(api: httpx.Client, make_key: KeyMaker) -> None:
    auditor = make_key(role="auditor", name="auditor")
    ends = {"since": "0001-01-01", "until": "9999-12-31"}
    assert api.get("/v1/interpretations", params=ends, headers=auditor).status_code == 200
