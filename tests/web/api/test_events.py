"""POST /v1/events over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.db import make_engine
from app.rules.cases import load_cases, mismatches
from tests.conftest import KeyMaker, count_rows

IDENTITY_CODE = "131052-308T"


def oeo_start(event_id: str = "ura-2025-000123", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "event_type": "oeo.start",
        "occurred_at": "2025-03-03T09:15:00+02:00",
        "customer": {"type": "jobseeker", "id": IDENTITY_CODE, "home_municipality": "244", "language": "fi"},
        "attributes": {},
    }
    body.update(changes)
    return body


class TestPostEvent:
    def test_new_event_is_decided_stored_and_located(self, api: httpx.Client, make_key: KeyMaker) -> None:
        response = api.post("/v1/events", json=oeo_start(), headers=make_key())
        assert response.status_code == 201
        decision = response.json()
        assert response.headers["location"] == f"/v1/decisions/{decision['decision_id']}"
        assert response.headers["reitti-ruleset"] == decision["rule"]["ruleset"] == "2025-01-01"
        assert decision["handler"]["unit"] == decision["customership"]["unit"] == "central-oeo"
        assert decision["customership"]["role"] == "central_expert"
        assert decision["tasks"] == [{"task": "notify_school_and_archive", "unit": "central-oeo"}]
        assert decision["basis"] == ["2.2.3 a"]
        assert decision["explanation"]["fi"]
        assert decision["explanation"]["en"]

    def test_notes_are_objects_with_a_kind_and_each_language_apart(self, api: httpx.Client, make_key: KeyMaker) -> None:
        """CONTRACT (rev. 2026-11-30): a note is {kind, fi, en}, not one string holding both languages."""
        key = make_key()
        body = oeo_start(event_type="job_search_coaching")
        body["customer"] = {"type": "jobseeker", "id": IDENTITY_CODE, "home_municipality": "091"}
        response = api.post("/v1/events", json=body, headers=key)
        assert response.status_code == 201, response.text
        notes = response.json()["notes"]
        assert [note["kind"] for note in notes] == ["interpretation"]
        assert set(notes[0]) == {"kind", "fi", "en"}
        assert notes[0]["fi"].startswith("Muun työllisyysalueen työnhakija voi osallistua")
        assert notes[0]["en"].startswith("A jobseeker of another area may take part")
        stored = api.get(f"/v1/decisions/{response.json()['decision_id']}", headers=key).json()
        assert stored["notes"] == notes
        assert response.json()["cost_group"] == "external"

    def test_same_event_again_answers_the_first_decision(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        first = api.post("/v1/events", json=oeo_start(), headers=key)
        # The same body with its keys in another order is the same request.
        body = oeo_start()
        again = api.post("/v1/events", json=dict(reversed(list(body.items()))), headers=key)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert count_rows(database_url) == 1

    def test_same_event_id_with_another_body_is_a_conflict(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        api.post("/v1/events", json=oeo_start(), headers=key)
        changed = oeo_start(occurred_at="2025-03-04T09:15:00+02:00")
        response = api.post("/v1/events", json=changed, headers=key)
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert count_rows(database_url) == 1

    def test_event_ids_are_per_client(self, api: httpx.Client, make_key: KeyMaker, database_url: str) -> None:
        first = api.post("/v1/events", json=oeo_start(), headers=make_key(name="client-a"))
        second = api.post("/v1/events", json=oeo_start(), headers=make_key(name="client-b"))
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["decision_id"] != second.json()["decision_id"]
        assert count_rows(database_url) == 2

    def test_twenty_threads_posting_one_event_make_one_decision(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        key = make_key()
        barrier = threading.Barrier(20)
        answers: list[tuple[int, str]] = []

        def post() -> None:
            with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
                barrier.wait()
                response = client.post("/v1/events", json=oeo_start("race-1"), headers=key)
                answers.append((response.status_code, response.json().get("decision_id", "")))

        threads = [threading.Thread(target=post) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(status for status, _ in answers) == [200] * 19 + [201]
        assert len({decision_id for _, decision_id in answers}) == 1
        assert count_rows(database_url) == 1

    def test_invalid_event_names_every_field_and_never_echoes_the_id(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        body = oeo_start(attributes={"channel": "phone"})
        body["customer"]["id"] = "131052-308X"  # wrong check character
        response = api.post("/v1/events", json=body, headers=make_key())
        assert response.status_code == 422
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert {tuple(e["loc"]) for e in problem["errors"]} == {
            ("body", "customer", "id"),
            ("body", "attributes", "channel"),
        }
        assert "131052" not in response.text
        assert count_rows(database_url) == 0

    def test_schema_errors_do_not_echo_input(self, api: httpx.Client, make_key: KeyMaker) -> None:
        body = oeo_start()
        body["customer"]["home_municipality"] = 244  # a number, not the contract's string
        body["customer"]["id"] = ["131052-308T"]
        response = api.post("/v1/events", json=body, headers=make_key())
        assert response.status_code == 422
        assert "input" not in response.text
        assert "131052" not in response.text
        assert ["body", "customer", "id"] in [e["loc"] for e in response.json()["errors"]]

    def test_event_before_any_rule_set_is_refused(self, api: httpx.Client, make_key: KeyMaker) -> None:
        # 21:30 UTC on 31.12.2024 is 23:30 in Finland, still 2024: the rule set starts
        # at midnight Finnish time, so the next case an hour later is decided.
        body = oeo_start(occurred_at="2024-12-31T21:30:00+00:00")
        response = api.post("/v1/events", json=body, headers=make_key())
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "occurred_at"]
        body = oeo_start(occurred_at="2024-12-31T22:30:00+00:00")  # 00:30 on 1.1.2025 in Finland
        assert api.post("/v1/events", json=body, headers=make_key(name="other")).status_code == 201

    def test_abolished_job_alternation_leave_is_refused(self, api: httpx.Client, make_key: KeyMaker) -> None:
        body = oeo_start(
            event_type="employer.job_alternation_leave",
            customer={"type": "employer", "id": "0112038-9", "home_municipality": "564"},
            attributes={"leave_start_date": "2024-08-01"},
        )
        response = api.post("/v1/events", json=body, headers=make_key())
        assert response.status_code == 422
        assert "abolished" in response.json()["errors"][0]["msg"]

    def test_without_a_key_is_401_and_with_a_wrong_role_403(self, api: httpx.Client, make_key: KeyMaker) -> None:
        assert api.post("/v1/events", json=oeo_start()).status_code == 401
        bad = api.post("/v1/events", json=oeo_start(), headers={"Authorization": "Bearer reitti_nope"})
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == "Bearer"
        auditor = api.post("/v1/events", json=oeo_start(), headers=make_key(role="auditor"))
        assert auditor.status_code == 403
        assert auditor.headers["content-type"] == "application/problem+json"

    def test_revoked_key_is_refused(self, api: httpx.Client, make_key: KeyMaker, database_url: str) -> None:
        key = make_key()
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
        engine.dispose()
        assert api.post("/v1/events", json=oeo_start(), headers=key).status_code == 401

    def test_a_key_revoked_after_use_stores_nothing_more(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        # The service remembers keys it has seen on this endpoint; revocation must still bite at once.
        key = make_key()
        assert api.post("/v1/events", json=oeo_start("before"), headers=key).status_code == 201
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
        engine.dispose()
        assert api.post("/v1/events", json=oeo_start("after"), headers=key).status_code == 401
        assert api.post("/v1/events", json={}, headers=key).status_code == 401
        assert count_rows(database_url) == 1

    def test_a_key_revoked_after_use_gets_401_not_a_validation_answer(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        # The key is remembered by this worker; its first calls after revocation send bodies
        # that would not validate: the revocation is what the answer must say.
        key, live = make_key(), make_key(name="client-b")
        for headers in (key, live):
            assert api.post("/v1/events", json=oeo_start(), headers=headers).status_code == 201
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE name = 'client-a'"))
        engine.dispose()
        invalid = [{}, oeo_start(event_type="no.such.event"), oeo_start(attributes={"unknown": True})]
        for body in invalid:
            refused = api.post("/v1/events", json=body, headers=key)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
            assert api.post("/v1/events", json=body, headers=live).status_code in (400, 422)
        assert count_rows(database_url) == 2

    def test_body_over_64_kib_is_413(self, api: httpx.Client, make_key: KeyMaker, database_url: str) -> None:
        body = oeo_start(attributes={"padding": "x" * 70_000})
        response = api.post("/v1/events", json=body, headers=make_key())
        assert response.status_code == 413

        def chunks() -> Any:  # no Content-Length: the body arrives chunked
            yield b'{"event_id": "big", "padding": "'
            for _ in range(70):
                yield b"x" * 1024
            yield b'"}'

        chunked = api.post(
            "/v1/events", content=chunks(), headers={**make_key(name="b"), "content-type": "application/json"}
        )
        assert chunked.status_code == 413
        assert count_rows(database_url) == 0

    def test_identity_code_is_stored_only_as_a_pseudonym(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        assert api.post("/v1/events", json=oeo_start(), headers=make_key()).status_code == 201
        engine = make_engine(database_url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM decisions")).all()
        engine.dispose()
        assert len(rows) == 1
        assert IDENTITY_CODE not in repr(rows)
        assert rows[0].customer_pseudonym
        assert len(rows[0].customer_pseudonym) == 64


@pytest.mark.slow
def test_every_golden_case_over_http(api: httpx.Client, make_key: KeyMaker) -> None:
    """Each case posted to the running service gets the decision or refusal it expects."""
    key = make_key()
    failures = {}
    for number, case in enumerate(load_cases()):
        response = api.post("/v1/events", json=case.body(f"golden-{number}"), headers=key)
        problems = mismatches(case, response.status_code, response.json())
        if problems:
            failures[case.name] = problems
    assert failures == {}


class TestRoutingDefect:
    def test_no_rule_or_two_rules_is_a_500_that_names_the_event_type_and_stores_nothing(
        self, tmp_path: Any, database_url: str, make_key: KeyMaker, caplog: pytest.LogCaptureFixture
    ) -> None:
        import shutil

        from app.config import REPOSITORY, Settings
        from tests.conftest import TEST_CHECKPOINT_KEY, TEST_PSEUDONYM_KEY, Server

        broken = tmp_path / "rules"
        shutil.copytree(REPOSITORY / "rules", broken)
        oeo = broken / "2025-01-01" / "4.5-oeo.yaml"
        # oeo.start now matches two rules, and oeo.follow_up none.
        oeo.write_text(
            oeo.read_text(encoding="utf-8").replace(
                "event_type: [oeo.follow_up, oeo.sanction, oeo.statement]",
                "event_type: [oeo.start, oeo.sanction, oeo.statement]",
            ),
            encoding="utf-8",
        )
        settings = Settings(
            database_url=database_url,
            rules_dir=broken,
            pseudonym_key=TEST_PSEUDONYM_KEY,
            checkpoint_key=TEST_CHECKPOINT_KEY,
        )
        key = make_key(name="defect")
        try:
            with Server(settings) as server, httpx.Client(base_url=server.base_url) as client:
                overlap = client.post("/v1/events", json=oeo_start("d1"), headers=key)
                gap = client.post("/v1/events", json=oeo_start("d2", event_type="oeo.follow_up"), headers=key)
        finally:
            engine = make_engine(database_url)
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM api_keys"))
            engine.dispose()
        assert overlap.status_code == gap.status_code == 500
        assert overlap.headers["content-type"] == gap.headers["content-type"] == "application/problem+json"
        assert overlap.json()["event_type"] == "oeo.start"
        assert sorted(overlap.json()["matched_rules"]) == ["oeo.during_studies", "oeo.start"]
        assert gap.json()["event_type"] == "oeo.follow_up"
        assert gap.json()["matched_rules"] == []
        assert IDENTITY_CODE not in overlap.text + gap.text
        assert count_rows(database_url) == 0
        logged = [r.getMessage() for r in caplog.records if r.name == "reitti"]
        assert any("oeo.start" in message and "defect" in message for message in logged)


class TestDatabaseUnavailable:
    def test_503_with_retry_after_while_healthz_stays_200(self) -> None:
        from app.config import Settings
        from tests.conftest import TEST_CHECKPOINT_KEY, TEST_PSEUDONYM_KEY, Server, free_port

        # A PostgreSQL address where nothing listens: every query fails to connect.
        nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/reitti"
        settings = Settings(database_url=nowhere, pseudonym_key=TEST_PSEUDONYM_KEY, checkpoint_key=TEST_CHECKPOINT_KEY)
        with Server(settings) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
            posted = client.post("/v1/events", json=oeo_start(), headers={"Authorization": "Bearer reitti_x"})
            ready = client.get("/readyz")
            health = client.get("/healthz")
        assert posted.status_code == 503
        assert posted.headers["retry-after"].isdigit()
        assert posted.headers["content-type"] == "application/problem+json"
        assert "127.0.0.1" not in posted.text  # no internals
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        assert health.status_code == 200
