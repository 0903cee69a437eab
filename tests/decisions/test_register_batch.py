"""The register and the worklists as the writer's batch fills them: many events of one customer, some late."""

from __future__ import annotations

from sqlalchemy import Engine, select

from app.db import make_sessions
from app.decisions.intake import prepare
from app.decisions.store import Submission, store
from app.models import Customership, WorklistItem
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from app.schemas import EventIn
from tests.conftest import TEST_CHAIN_INFO


def event(rules: Rules, engine: RuleEngine, event_id: str, event_type: str, occurred_at: str) -> Submission:
    body = EventIn.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "customer": {"type": "jobseeker", "id": "opaque-1", "home_municipality": "244"},
        }
    )
    return prepare(body, client="batch", rules=rules, engine=engine, pseudonym_key=b"k")


def test_one_batch_orders_a_customers_events_by_their_own_times_and_a_late_one_sees_its_predecessor(
    database: Engine, rules: Rules, rule_engine: RuleEngine
) -> None:
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    with write() as session:  # first batch: the studies end in June
        store(session, [event(rules, rule_engine, "end", "oeo.end", "2025-06-02T09:00:00+03:00")])
    # One batch, in arrival order: a start in March (late), then a follow-up in April (late too, after it).
    batch = [
        event(rules, rule_engine, "start", "oeo.start", "2025-03-03T09:00:00+02:00"),
        event(rules, rule_engine, "follow", "oeo.follow_up", "2025-04-01T09:00:00+03:00"),
    ]
    with write() as session:
        store(session, batch)
    with database.connect() as connection:
        rows = connection.execute(
            select(
                Customership.event_type, Customership.unit, Customership.previous_unit, Customership.anomaly
            ).order_by(Customership.occurred_at)
        ).all()
        items = set(connection.execute(select(WorklistItem.event_type, WorklistItem.unit, WorklistItem.kind)).all())
    assert [tuple(row) for row in rows] == [
        ("oeo.start", "central-oeo", None, None),
        ("oeo.follow_up", "central-oeo", "central-oeo", None),  # its predecessor is the start of the same batch
        ("oeo.end", "local-244", None, "oeo_end_without_start"),  # it was the first: no start then
    ]
    assert ("oeo.start", "central-oeo", "handover_in") in items
    assert ("oeo.start", "local-244", "handover_out") in items
    assert ("oeo.end", "central-oeo", "new") in items  # the anomaly is shown to the OEO experts too


def test_the_p90_is_a_waiting_time_some_item_had() -> None:
    from app.worklists.waiting import _p90

    assert _p90([1.0]) == 1.0
    assert _p90([float(n) for n in range(1, 11)]) == 9.0
    assert _p90([float(n) for n in range(1, 12)]) == 10.0
