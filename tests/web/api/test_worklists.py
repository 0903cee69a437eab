"""The units' worklists, their answers and the customership register over real HTTP, on both databases."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import KeyMaker
from tests.web.api.test_events import IDENTITY_CODE, oeo_start

CUSTOMER = {"Reitti-Customer-Id": IDENTITY_CODE}


def route(
    api: httpx.Client, client: dict[str, str], event_id: str, event_type: str, occurred_at: str
) -> dict[str, Any]:
    """Post one event of the Kempele customer; the decision."""
    body = oeo_start(event_id, event_type=event_type, occurred_at=occurred_at)
    response = api.post("/v1/events", json=body, headers=client)
    assert response.status_code == 201, response.text
    decision: dict[str, Any] = response.json()
    return decision


def worklist(api: httpx.Client, key: dict[str, str], unit: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/v1/units/{unit}/worklist", params=params, headers=key)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def staff(make_key: KeyMaker) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """An integration, the OEO experts' staff and a Kempele coach."""
    return (
        make_key(),
        make_key(role="unit", name="oeo-experts", unit="central-oeo"),
        make_key(role="coach", name="coach-244", municipality="244"),
    )


class TestWorklist:
    def test_oeo_start_is_an_incoming_handover_for_the_experts_and_outgoing_for_the_coach(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, oeo, coach = staff(make_key)
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        page = worklist(api, oeo, "central-oeo")
        (item,) = page["items"]
        assert (item["decision_id"], item["kind"], item["other_unit"]) == (
            decision["decision_id"],
            "handover_in",
            "local-244",
        )
        assert item["age_seconds"] >= 0
        assert page["open_items"] == 1
        (outgoing,) = worklist(api, coach, "local-244")["items"]
        assert (outgoing["kind"], outgoing["other_unit"]) == ("handover_out", "central-oeo")
        assert worklist(api, oeo, "central-oeo", kind="new")["items"] == []
        assert worklist(api, oeo, "central-oeo", event_type="oeo.end")["items"] == []

    def test_pages_oldest_first_with_a_cursor(self, api: httpx.Client, make_key: KeyMaker) -> None:
        client, oeo, _ = make_key(), make_key(role="unit", name="oeo", unit="central-oeo"), None
        first = route(api, client, "p1", "oeo.follow_up", "2025-03-03T09:15:00+02:00")
        second = route(api, client, "p2", "oeo.sanction", "2025-03-04T09:15:00+02:00")
        third = route(api, client, "p3", "oeo.statement", "2025-03-05T09:15:00+02:00")
        page = worklist(api, oeo, "central-oeo", limit="2")
        assert [i["decision_id"] for i in page["items"]][:2] == [first["decision_id"], second["decision_id"]]
        rest = worklist(api, oeo, "central-oeo", limit="2", cursor=page["next_cursor"])
        assert [i["decision_id"] for i in rest["items"]] == [third["decision_id"]]
        assert rest["next_cursor"] is None

    def test_another_units_staff_get_404_and_the_read_is_logged(self, api: httpx.Client, make_key: KeyMaker) -> None:
        client, oeo, _ = staff(make_key)
        eu = make_key(role="unit", name="eu", unit="central-eu")
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        assert api.get("/v1/units/central-oeo/worklist", headers=eu).status_code == 404
        assert api.get("/v1/units/no-such-unit/worklist", headers=oeo).status_code == 404
        assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=eu).status_code == 404
        assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=oeo).status_code == 200
        worklist(api, oeo, "central-oeo")
        auditor = make_key(role="auditor", name="auditor")
        entries = api.get("/v1/audit/access", params={"action": "worklist"}, headers=auditor).json()["items"]
        logged = {(e["key_name"], e["filters"]["unit"], e["rows"]) for e in entries}
        assert logged == {
            ("eu", "central-oeo", 0),
            ("oeo-experts", "no-such-unit", 0),
            ("oeo-experts", "central-oeo", 1),
        }


class TestAcknowledgements:
    def test_taken_once_201_then_200_with_the_first_answer_chained(self, api: httpx.Client, make_key: KeyMaker) -> None:
        client, oeo, _ = staff(make_key)
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        url = f"/v1/decisions/{decision['decision_id']}/acknowledgements"
        first = api.post(url, json={"unit": "central-oeo"}, headers=oeo)
        assert first.status_code == 201, first.text
        again = api.post(url, json={"unit": "central-oeo"}, headers=oeo)
        assert (again.status_code, again.json()) == (200, first.json())
        assert first.json()["outcome"] == "taken"
        assert first.json()["seq"] == 2
        assert worklist(api, oeo, "central-oeo")["items"] == []
        auditor = make_key(role="auditor", name="auditor")
        verified = api.get("/v1/audit/verify", headers=auditor).json()
        assert (verified["intact"], verified["links"]) == (True, 2)
        times = api.get("/v1/waiting-times", headers=auditor).json()["units"]
        assert [(t["unit"], t["count"]) for t in times] == [("central-oeo", 1)]
        assert times[0]["median_seconds"] == times[0]["p90_seconds"] >= 0
        before = api.get("/v1/waiting-times", params={"answered_before": "2025-01-01T00:00:00Z"}, headers=auditor)
        assert before.json()["units"] == []
        naive = api.get("/v1/waiting-times", params={"answered_after": "2025-01-01T00:00:00"}, headers=auditor)
        assert naive.status_code == 422
        assert naive.json()["errors"][0]["loc"] == ["query", "answered_after"]

    def test_another_unit_or_no_item_is_refused_at_the_field(self, api: httpx.Client, make_key: KeyMaker) -> None:
        client, oeo, coach = staff(make_key)
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        url = f"/v1/decisions/{decision['decision_id']}/acknowledgements"
        refused = api.post(url, json={"unit": "central-oeo"}, headers=coach)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"] == ["body", "unit"]
        kempele_staff = make_key(role="unit", name="kempele-staff", unit="local-244")
        assert api.post(url, json={"unit": "local-244"}, headers=kempele_staff).status_code == 201
        typo = api.post(url, json={"unit": "Central OEO"}, headers=oeo)
        assert typo.status_code == 422
        assert typo.json()["errors"][0]["loc"] == ["body", "unit"]


class TestReturns:
    def test_a_return_goes_back_to_the_sender_as_an_override_request_closed_by_an_override(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, oeo, coach = staff(make_key)
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        url = f"/v1/decisions/{decision['decision_id']}/returns"
        body = {"unit": "central-oeo", "reason": "wrong_event_data", "text": "no positive OEO decision yet"}
        returned = api.post(url, json=body, headers=oeo)
        assert returned.status_code == 201, returned.text
        assert (returned.json()["outcome"], returned.json()["returned_to"]) == ("returned", "local-244")
        assert api.post(url, json=body, headers=oeo).json() == returned.json()
        taken = api.post(
            f"/v1/decisions/{decision['decision_id']}/acknowledgements", json={"unit": "central-oeo"}, headers=oeo
        )
        assert taken.status_code == 409
        kinds = {i["kind"]: i for i in worklist(api, coach, "local-244")["items"]}
        assert kinds["returned"]["other_unit"] == "central-oeo"
        override = {"customership": "local-244", "reason": "wrong_event_data"}
        assert (
            api.post(f"/v1/decisions/{decision['decision_id']}/overrides", json=override, headers=coach).status_code
            == 201
        )
        assert "returned" not in {i["kind"] for i in worklist(api, coach, "local-244")["items"]}

    def test_an_identity_code_in_the_text_is_refused_and_nothing_is_recorded(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, oeo, _ = staff(make_key)
        decision = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        body = {"unit": "central-oeo", "reason": "other", "text": f"customer {IDENTITY_CODE}"}
        refused = api.post(f"/v1/decisions/{decision['decision_id']}/returns", json=body, headers=oeo)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"] == ["body", "text"]
        assert IDENTITY_CODE not in refused.text
        assert len(worklist(api, oeo, "central-oeo")["items"]) == 1


class TestCustomershipRegister:
    def test_start_then_end_moves_the_customer_and_back(self, api: httpx.Client, make_key: KeyMaker) -> None:
        client, oeo, coach = staff(make_key)
        start = route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        held = api.get("/v1/customership", headers={**coach, **CUSTOMER}).json()
        assert (held["current"]["unit"], held["current"]["decision_id"]) == ("central-oeo", start["decision_id"])
        end = route(api, client, "e1", "oeo.end", "2025-06-03T09:15:00+03:00")
        held = api.get("/v1/customership", headers={**coach, **CUSTOMER}).json()
        assert held["current"]["unit"] == "local-244"
        assert held["current"]["previous_unit"] == "central-oeo"
        assert [h["decision_id"] for h in held["history"]] == [end["decision_id"], start["decision_id"]]
        (back,) = worklist(api, coach, "local-244", kind="handover_in")["items"]
        assert (back["decision_id"], back["other_unit"]) == (end["decision_id"], "central-oeo")

    def test_a_late_event_does_not_overwrite_a_later_one_and_ties_go_by_arrival(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, _, coach = staff(make_key)
        end = route(api, client, "e1", "oeo.end", "2025-06-03T09:15:00+03:00")
        route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")  # arrives late
        held = api.get("/v1/customership", headers={**coach, **CUSTOMER}).json()
        assert (held["current"]["unit"], held["current"]["decision_id"]) == ("local-244", end["decision_id"])
        again = route(api, client, "s2", "oeo.start", "2025-06-03T09:15:00+03:00")  # the same moment: the later seq
        held = api.get("/v1/customership", headers={**coach, **CUSTOMER}).json()
        assert (held["current"]["unit"], held["current"]["decision_id"]) == ("central-oeo", again["decision_id"])

    def test_disagreements_with_the_rules_are_anomalies_shown_to_both_units(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, oeo, coach = staff(make_key)
        update = route(api, client, "u1", "oeo.plan_update", "2025-03-03T09:15:00+02:00")
        assert update["customership"]["unit"] == "central-oeo"  # the decision stays what the rules say
        held = api.get("/v1/customership", headers={**coach, **CUSTOMER}).json()
        assert held["current"]["anomaly"] == "plan_update_outside_oeo"
        for key, unit in ((oeo, "central-oeo"), (coach, "local-244")):
            anomalies = {i["anomaly"] for i in worklist(api, key, unit)["items"]}
            assert anomalies == {"plan_update_outside_oeo"}

    def test_scoped_like_the_decisions_and_the_code_only_in_a_header(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        client, _, _ = staff(make_key)
        route(api, client, "s1", "oeo.start", "2025-03-03T09:15:00+02:00")
        other = make_key(role="coach", name="coach-139", municipality="139")
        assert api.get("/v1/customership", headers={**other, **CUSTOMER}).status_code == 404
        missing = api.get("/v1/customership", headers=client)
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["loc"] == ["header", "Reitti-Customer-Id"]
        assert api.get("/v1/customership", headers={**client, **CUSTOMER}).status_code == 200
