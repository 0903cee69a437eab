"""The read service both surfaces call: every person's read is in the access log, a refused one too.

These reach app.decisions.reads and app.decisions.intake directly on both databases, without
HTTP: the API's and the UI's tests show the same behaviour through each surface.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.access.keys import Principal
from app.db import Transaction, make_sessions
from app.decisions import intake, reads, store
from app.errors import EventInvalid, NotFound
from app.models import AccessAction, AccessEntry, Role
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from app.schemas import DecisionQuery, EventIn
from tests.conftest import TEST_CHAIN_INFO

KEMPELE_COACH = Principal(key_id=7, name="ui:kaisa", role=Role.coach, municipality="244")
OULU_COACH = Principal(key_id=8, name="ui:olli", role=Role.coach, municipality="564")
AUDITOR = Principal(key_id=9, name="ui:aino", role=Role.auditor, municipality=None)
INTEGRATION = Principal(key_id=10, name="client-a", role=Role.integration, municipality=None)


def event(event_id: str, municipality: str = "244") -> EventIn:
    return EventIn.model_validate(
        {
            "event_id": event_id,
            "event_type": "oeo.start",
            "occurred_at": "2025-03-03T09:15:00+02:00",
            "customer": {"type": "jobseeker", "id": f"opaque-{event_id}", "home_municipality": municipality},
        }
    )


@pytest.fixture
def sessions(database: Engine) -> tuple[object, Transaction]:
    return make_sessions(database, info=TEST_CHAIN_INFO)


def stored(write: Transaction, rules: Rules, engine: RuleEngine, body: EventIn) -> str:
    submission = intake.prepare(body, client="client-a", rules=rules, engine=engine, pseudonym_key=b"k")
    with write() as session:
        decision, created = store.submit(session, submission)
    assert created
    return decision.decision_id


def access_entries(read: Any) -> list[AccessEntry]:
    """The access log as a new session sees it: the reader's own session keeps its snapshot."""
    with read() as session:
        return list(session.scalars(select(AccessEntry).order_by(AccessEntry.seq)))


class TestReads:
    def test_a_coach_reading_a_decision_is_logged_with_one_row(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        decision_id = stored(write, rules, rule_engine, event("r1"))
        with read() as session:  # type: ignore[operator]
            decision = reads.read_decision(reads.Reader(KEMPELE_COACH, session, write), decision_id)
            assert decision.decision_id == decision_id
            (entry,) = access_entries(read)
        assert (entry.key_name, entry.action, entry.decision_id, entry.rows) == (
            "ui:kaisa", AccessAction.decision.value, decision_id, 1,
        )  # fmt: skip

    def test_a_refused_read_is_a_404_and_is_logged_with_no_rows(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        decision_id = stored(write, rules, rule_engine, event("r2", municipality="244"))
        with read() as session:  # type: ignore[operator]
            with pytest.raises(NotFound):
                reads.read_decision(reads.Reader(OULU_COACH, session, write), decision_id)
            (entry,) = access_entries(read)
        assert (entry.key_name, entry.rows) == ("ui:olli", 0)

    def test_an_integration_reading_what_it_posted_is_not_logged(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        decision_id = stored(write, rules, rule_engine, event("r3"))
        with read() as session:  # type: ignore[operator]
            reads.read_decision(reads.Reader(INTEGRATION, session, write), decision_id)
        assert access_entries(read) == []

    def test_an_integration_reading_coaches_override_texts_is_logged(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        decision_id = stored(write, rules, rule_engine, event("r4"))
        with read() as session:  # type: ignore[operator]
            assert reads.read_overrides(reads.Reader(INTEGRATION, session, write), decision_id) == []
        (entry,) = access_entries(read)
        assert (entry.key_name, entry.role, entry.action, entry.decision_id, entry.rows) == (
            "client-a", "integration", AccessAction.overrides.value, decision_id, 0,
        )  # fmt: skip

    def test_a_page_is_logged_with_its_filter_and_row_count(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        for number in range(3):
            stored(write, rules, rule_engine, event(f"p{number}"))
        with read() as session:  # type: ignore[operator]
            items, _ = reads.read_page(reads.Reader(AUDITOR, session, write), DecisionQuery(event_type="oeo.start"))
            (entry,) = access_entries(read)
        assert len(items) == 3
        assert (entry.action, entry.rows, entry.filters) == (
            AccessAction.list.value,
            3,
            {"event_type": "oeo.start", "limit": 50},
        )

    def test_an_export_logs_its_row_count_before_the_first_line(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        read, write = sessions
        for number in range(2):
            stored(write, rules, rule_engine, event(f"e{number}"))
        with read() as session:  # type: ignore[operator]
            lines = reads.export(reads.Reader(AUDITOR, session, write), DecisionQuery(), sessions=write)
            (entry,) = access_entries(read)  # logged before a line is made
            assert (entry.action, entry.rows) == (AccessAction.export.value, 2)
        text = "".join(lines)
        assert len(text.strip().splitlines()) == 1 + 2


class TestIntake:
    def test_an_invalid_event_is_refused_before_anything_is_stored(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        body = event("bad").model_copy(update={"attributes": {"no_such_attribute": True}})
        with pytest.raises(EventInvalid) as refused:
            intake.prepare(body, client="client-a", rules=rules, engine=rule_engine, pseudonym_key=b"k")
        assert any("no_such_attribute" in map(str, error.loc) for error in refused.value.errors)

    def test_the_same_event_again_is_the_first_decision(
        self, sessions: tuple[object, Transaction], rules: Rules, rule_engine: RuleEngine
    ) -> None:
        _, write = sessions
        first = intake.prepare(event("twice"), client="client-a", rules=rules, engine=rule_engine, pseudonym_key=b"k")
        again = intake.prepare(event("twice"), client="client-a", rules=rules, engine=rule_engine, pseudonym_key=b"k")
        with write() as session:
            decision, created = store.submit(session, first)
        with write() as session:
            repeated, created_again = store.submit(session, again)
        assert (created, created_again) == (True, False)
        assert repeated.decision_id == decision.decision_id
