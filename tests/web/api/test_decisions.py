"""Reading decisions and the registries over real HTTP: scope, filters, paging, access."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import KeyMaker
from tests.web.api.test_events import oeo_start


def post(api: httpx.Client, key: dict[str, str], event_id: str, home: str, **changes: Any) -> dict[str, Any]:
    body = oeo_start(event_id)
    body["customer"]["home_municipality"] = home
    body.update(changes)
    response = api.post("/v1/events", json=body, headers=key)
    assert response.status_code == 201, response.text
    decision: dict[str, Any] = response.json()
    return decision


class TestGetDecision:
    def test_client_reads_its_own_decision(self, api: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key()
        decision = post(api, key, "e1", "244")
        response = api.get(f"/v1/decisions/{decision['decision_id']}", headers=key)
        assert response.status_code == 200
        assert response.json() == decision
        assert response.headers["reitti-ruleset-sha256"] == decision["rule"]["ruleset_sha256"]

    def test_other_client_gets_404(self, api: httpx.Client, make_key: KeyMaker) -> None:
        decision = post(api, make_key(name="a"), "e1", "244")
        other = api.get(f"/v1/decisions/{decision['decision_id']}", headers=make_key(name="b"))
        assert other.status_code == 404

    def test_coach_reads_own_municipality_and_gets_404_for_another(self, api: httpx.Client, make_key: KeyMaker) -> None:
        kempele = post(api, make_key(), "e1", "244")
        kempele_coach = make_key(role="coach", name="coach-244", municipality="244")
        ii_coach = make_key(role="coach", name="coach-139", municipality="139")
        assert api.get(f"/v1/decisions/{kempele['decision_id']}", headers=kempele_coach).status_code == 200
        assert api.get(f"/v1/decisions/{kempele['decision_id']}", headers=ii_coach).status_code == 404

    def test_auditor_and_admin_read_every_decision(self, api: httpx.Client, make_key: KeyMaker) -> None:
        decision = post(api, make_key(), "e1", "244")
        for role in ("auditor", "admin"):
            response = api.get(f"/v1/decisions/{decision['decision_id']}", headers=make_key(role=role, name=role))
            assert response.status_code == 200

    def test_unknown_decision_is_404_problem(self, api: httpx.Client, make_key: KeyMaker) -> None:
        response = api.get("/v1/decisions/nope", headers=make_key(role="auditor"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


class TestListDecisions:
    def test_filters_and_cursor_pages_cover_the_log_once_newest_first(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        key = make_key()
        posted = [post(api, key, f"e{i}", "244" if i % 2 else "139") for i in range(7)]
        auditor = make_key(role="auditor", name="auditor")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"municipality": "244", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/v1/decisions", params=params, headers=auditor).json()
            seen += [d["decision_id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = [d["decision_id"] for d in reversed(posted) if d["event_id"] in {"e1", "e3", "e5"}]
        assert seen == expected

    def test_filter_by_rule_handler_and_time(self, api: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key()
        post(api, key, "e1", "244")
        post(api, key, "e2", "244", occurred_at="2025-06-01T10:00:00+03:00")
        auditor = make_key(role="auditor", name="auditor")
        params = {"rule_id": "oeo.start", "handler": "central-oeo", "occurred_after": "2025-05-01T00:00:00+03:00"}
        page = api.get("/v1/decisions", params=params, headers=auditor).json()
        assert [d["event_id"] for d in page["items"]] == ["e2"]
        none = api.get("/v1/decisions", params={"handler": "local-244"}, headers=auditor).json()
        assert none["items"] == []

    def test_integration_lists_only_its_own(self, api: httpx.Client, make_key: KeyMaker) -> None:
        mine = make_key(name="a")
        post(api, mine, "e1", "244")
        post(api, make_key(name="b"), "e2", "244")
        page = api.get("/v1/decisions", headers=mine).json()
        assert [d["event_id"] for d in page["items"]] == ["e1"]

    def test_bad_cursor_and_bad_filter_name_the_field(self, api: httpx.Client, make_key: KeyMaker) -> None:
        auditor = make_key(role="auditor")
        bad_cursor = api.get("/v1/decisions", params={"cursor": "zzz"}, headers=auditor)
        assert bad_cursor.status_code == 422
        assert bad_cursor.json()["errors"][0]["loc"] == ["query", "cursor"]
        nul = api.get("/v1/decisions", params={"event_type": "oeo\x00start"}, headers=auditor)
        assert nul.status_code == 422
        assert nul.json()["errors"][0]["loc"] == ["query", "event_type"]
        naive = api.get("/v1/decisions", params={"decided_after": "2025-01-01T00:00:00"}, headers=auditor)
        assert naive.status_code == 422
        assert naive.json()["errors"][0]["loc"] == ["query", "decided_after"]


class TestRegistries:
    def test_event_types_list_every_type_with_its_attributes(self, api: httpx.Client, make_key: KeyMaker) -> None:
        types = {t["code"]: t for t in api.get("/v1/event-types", headers=make_key()).json()}
        assert len(types) == 61
        advice = {a["name"]: a for a in types["information_advice"]["attributes"]}
        assert advice["channel"]["required"] is True
        assert "walk_in" in advice["channel"]["values"]
        assert "channel = walk_in" in types["information_advice"]["customer_language_required_when"]

    def test_units_and_rulesets(self, api: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key(role="coach", municipality="564")
        units = {u["id"] for u in api.get("/v1/units", headers=key).json()}
        assert {"central-oeo", "local-072", "other-area", "purchased"} <= units
        rulesets = api.get("/v1/rulesets", headers=key).json()
        assert [r["version"] for r in rulesets] == ["2025-01-01"]
        assert rulesets[0]["in_force_now"] is True
        assert len(rulesets[0]["sha256"]) == 64

    def test_health_and_readiness_need_no_key(self, api: httpx.Client) -> None:
        assert api.get("/healthz").json()["status"] == "ok"
        ready = api.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"rules": "ok", "database": "ok"}

    def test_every_other_route_requires_a_key(self, api: httpx.Client) -> None:
        """Walks the app's own operations, so that a new endpoint cannot ship unprotected."""
        from app.main import create_app

        open_paths = {"/healthz", "/readyz"}
        checked = 0
        for path, operations in create_app().openapi()["paths"].items():
            if path in open_paths:
                continue
            for method in operations:
                response = api.request(method.upper(), path.replace("{decision_id}", "x"), json={})
                assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a key"
                checked += 1
        assert checked >= 6

    def test_openapi_documents_the_contract(self, api: httpx.Client) -> None:
        document = api.get("/openapi.json").json()
        assert {
            "/v1/events",
            "/v1/decisions",
            "/v1/decisions/{decision_id}",
            "/v1/event-types",
            "/v1/units",
            "/v1/rulesets",
            "/healthz",
            "/readyz",
        } <= set(document["paths"])
        decision = document["components"]["schemas"]["DecisionOut"]
        contract_fields = {
            "decision_id",
            "event_id",
            "event_type",
            "occurred_at",
            "decided_at",
            "handler",
            "provider",
            "customership",
            "tasks",
            "cost_group",
            "rule",
            "basis",
            "explanation",
            "notes",
        }
        assert contract_fields <= set(decision["required"])
        # CONTRACT (rev. 2026-11-30): each note an object, each language apart.
        assert decision["properties"]["notes"]["items"] == {"$ref": "#/components/schemas/NoteOut"}
        assert set(document["components"]["schemas"]["NoteOut"]["required"]) == {"kind", "fi", "en"}
