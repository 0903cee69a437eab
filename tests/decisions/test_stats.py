"""Stats from the decision counts are the stats of a scan of the log, on both databases.

store() and record_override() keep the counts; a seeded random generator writes logs through
them (decisions around Finnish and UTC midnights, the starts and ends of summer time, month
and year ends; repeats; overrides, some of one decision in one transaction, some in another)
and asks both paths the same questions as random principals with random filters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.db import make_sessions
from app.decisions.counts import rebuild_counts
from app.decisions.overrides import record_override
from app.decisions.stats import decision_stats, stats_by_scan, stats_from_counts
from app.decisions.store import Submission, store
from app.models import COUNT_GROUP, DecisionCount, DecisionMonthCount, OverrideReason, Role
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide, new_decision_id
from app.schemas import DecisionFilters, DecisionOut, EventIn, OverrideIn
from app.time import FINNISH_TIME
from tests.conftest import TEST_CHAIN_INFO

CLIENTS = ("client-a", "client-b", "ui:kaisa")
EVENT_TYPES = ("oeo.start", "job_placement", "work_trial")
MUNICIPALITIES = ("244", "139", "564")
HANDLERS = ("central-oeo", "local-244", "local-139", "central-eu")
PROVIDERS = ("central-oeo", "purchased", "local-564")
CUSTOMERSHIPS = (None, "central-oeo", "local-244", "local-139")
RULES = (("oeo.start", "2025-01-01"), ("job_placement.default", "2025-01-01"), ("oeo.start", "2026-01-01"))
CUSTOMERS = tuple(f"{number:064x}" for number in range(4))
# Where a decision is easily put on the wrong day: summer time begins (30 March, 01:00 UTC)
# and March ends; summer time ends (26 October, 01:00 UTC); October ends; the year ends.
WINDOWS = (
    (datetime(2025, 3, 29, 12, tzinfo=UTC), timedelta(days=3)),
    (datetime(2025, 10, 25, 12, tzinfo=UTC), timedelta(days=2)),
    (datetime(2025, 10, 31, 18, tzinfo=UTC), timedelta(hours=12)),
    (datetime(2025, 12, 31, 18, tzinfo=UTC), timedelta(hours=12)),
)
# Days around the windows, and the first days of months: a range of whole months is read by month.
DAYS = sorted(
    {(start + timedelta(hours=hours)).date() for start, length in WINDOWS for hours in range(-48, 72, 6)}
    | {date(2025, month, 1) for month in (1, 3, 4, 5, 10, 11, 12)}
    | {date(2024, 12, 31), date(2025, 2, 14), date(2026, 1, 1), date(2026, 6, 1)}
)
ZONES = (FINNISH_TIME, UTC, timezone(timedelta(hours=-5)))
ADMIN = Principal(key_id=0, name="test-admin", role=Role.admin, municipality=None)

Writer = Callable[[], AbstractContextManager[Session]]


def finnish_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), FINNISH_TIME)


def moment(rng: random.Random) -> datetime:
    """A time in one of the windows; one time in five on a midnight (Finnish or UTC) or a microsecond off it."""
    if rng.random() < 0.2:
        day = rng.choice(DAYS)
        edge = rng.choice((finnish_midnight(day), datetime.combine(day, time(), UTC)))
        return (edge + timedelta(microseconds=rng.choice((-1, 0, 1)))).astimezone(UTC)
    start, length = rng.choice(WINDOWS)
    return start + timedelta(microseconds=rng.randrange(length // timedelta(microseconds=1)))


def random_submissions(rules: Rules, engine: RuleEngine, rng: random.Random, count: int) -> list[Submission]:
    """`count` new events and decisions that differ in every dimension the counts keep."""
    body = EventIn.model_validate(
        {
            "event_id": "base",
            "event_type": "oeo.start",
            "occurred_at": "2025-03-03T09:15:00+02:00",
            "customer": {"type": "jobseeker", "id": "opaque-1", "home_municipality": "244"},
        }
    )
    event = read_event(body, rules, pseudonym_key=b"k")
    document = decide(event, engine=engine, registry=rules.registry).model_dump(mode="json")
    made = []
    for number in range(count):
        decided = moment(rng)
        customership = rng.choice(CUSTOMERSHIPS)
        rule_id, ruleset = rng.choice(RULES)
        varied = replace(
            event,
            event_id=f"s{number}",
            event_type=rules.registry.event_types[rng.choice(EVENT_TYPES)],
            home_municipality=rng.choice(MUNICIPALITIES),
            customer_pseudonym=rng.choice(CUSTOMERS),
            occurred_at=decided - timedelta(minutes=rng.randrange(1, 4000)),
        )
        made.append(
            Submission(
                rng.choice(CLIENTS),
                varied,
                f"fingerprint-{number}",
                DecisionOut.model_validate(
                    {
                        **document,
                        "decision_id": new_decision_id(),
                        "event_id": varied.event_id,
                        "decided_at": decided.isoformat(),
                        "handler": {**document["handler"], "unit": rng.choice(HANDLERS)},
                        "provider": {**document["provider"], "unit": rng.choice(PROVIDERS)},
                        "customership": customership and {**document["customership"], "unit": customership},
                        "rule": {**document["rule"], "id": rule_id, "ruleset": ruleset},
                    }
                ),
            )
        )
    return made


def random_log(write: Writer, rules: Rules, engine: RuleEngine, rng: random.Random, count: int) -> None:
    """Store `count` decisions through store(), in batches with repeats, and override some of them."""
    submissions = random_submissions(rules, engine, rng, count)
    start = 0
    while start < count:
        batch = submissions[start : start + rng.randint(1, 64)]
        start += len(batch)
        with write() as session:
            # A repeat in the batch, and one of an earlier batch: neither is a new decision.
            store(session, [*batch, rng.choice(batch), rng.choice(submissions[:start])])
    for _ in range(2):  # two rounds: a decision overridden in the first may be again in the second
        for overridden in rng.sample(submissions, count // 6):
            with write() as session:
                for _ in range(rng.choice((1, 1, 2))):
                    handler = rng.choice([unit for unit in HANDLERS if unit != overridden.decision.handler.unit])
                    body = OverrideIn(handler=handler, reason=OverrideReason.other)
                    decision_id = overridden.decision.decision_id
                    record_override(session, ADMIN, decision_id=decision_id, body=body, registry=rules.registry)


def random_principal(rng: random.Random) -> Principal:
    role = rng.choice(list(Role))
    if role is Role.integration:
        return Principal(key_id=1, name=rng.choice((*CLIENTS, "client-z")), role=role, municipality=None)
    if role is Role.coach:
        return Principal(key_id=1, name="coach", role=role, municipality=rng.choice((*MUNICIPALITIES, "425")))
    if role is Role.unit:
        unit = rng.choice((*HANDLERS, *PROVIDERS, "central-eu"))
        return Principal(key_id=1, name="unit", role=role, municipality=None, unit=unit)
    return Principal(key_id=1, name=role.value, role=role, municipality=None)


def random_filters(rng: random.Random) -> tuple[DecisionFilters, bool]:
    """Filters, and whether the counts can answer them (no customer, no occurred_*, whole Finnish days)."""
    pools: dict[str, tuple[str, ...]] = {
        "event_type": (*EVENT_TYPES, "nope"),
        "handler": HANDLERS,
        "provider": PROVIDERS,
        "customership": ("central-oeo", "local-244", "local-139", ""),
        "municipality": (*MUNICIPALITIES, "425"),
        "rule_id": ("oeo.start", "job_placement.default"),
        "ruleset": ("2025-01-01", "2026-01-01"),
    }
    given: dict[str, Any] = {name: rng.choice(pool) for name, pool in pools.items() if rng.random() < 0.15}
    answerable = given.get("customership") != ""  # the counts' own word for none: never a filter's match
    for name in ("decided_after", "decided_before"):
        draw, midnight = rng.random(), finnish_midnight(rng.choice(DAYS))
        if draw < 0.4:
            given[name] = midnight.astimezone(rng.choice(ZONES))
        elif draw < 0.5:
            given[name] = rng.choice((midnight.astimezone(UTC).replace(hour=0), midnight + timedelta(microseconds=1)))
            answerable = False
    if rng.random() < 0.08:
        given["customer_pseudonym"] = rng.choice(CUSTOMERS)
        answerable = False
    if rng.random() < 0.08:
        given[rng.choice(("occurred_after", "occurred_before"))] = moment(rng)
        answerable = False
    return DecisionFilters(**given), answerable


def kept_counts(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the decision counts, by day and by month."""
    kept = {}
    with engine.connect() as connection:
        for table, period in ((DecisionCount, DecisionCount.day), (DecisionMonthCount, DecisionMonthCount.month)):
            query = select(table.__table__).order_by(period, *(getattr(table, name) for name in COUNT_GROUP))
            kept[table.__tablename__] = [tuple(row) for row in connection.execute(query)]
    return kept


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stats_from_the_counts_are_the_stats_of_a_scan(
    database: Engine, rules: Rules, rule_engine: RuleEngine, seed: int
) -> None:
    rng = random.Random(seed)
    read, write = make_sessions(database, info=TEST_CHAIN_INFO)
    random_log(write, rules, rule_engine, rng, count=300)
    answered = overridden = 0
    with read() as session:
        for _ in range(250):
            principal, (filters, answerable) = random_principal(rng), random_filters(rng)
            scanned = stats_by_scan(session, principal, filters)
            counted = stats_from_counts(session, principal, filters)
            if answerable:
                assert counted is not None, filters
                assert counted.model_dump() == scanned.model_dump(), (principal, filters)
                answered += scanned.total > 0
                overridden += scanned.overridden > 0
            else:
                assert counted is None, filters
            assert decision_stats(session, principal, filters) == scanned
    # Not only empty answers: the questions reach the data, overrides included.
    assert answered >= 60
    assert overridden >= 30


def test_the_counts_kept_are_the_counts_rebuilt_from_the_log(
    database: Engine, rules: Rules, rule_engine: RuleEngine
) -> None:
    read, write = make_sessions(database, info=TEST_CHAIN_INFO)
    random_log(write, rules, rule_engine, random.Random(4), count=300)
    kept = kept_counts(database)
    with write() as session:
        groups, decisions = rebuild_counts(session)
    assert (groups, decisions) == (len(kept["decision_counts"]), 300)
    assert sum(row[-2] for row in kept["decision_month_counts"]) == 300
    assert kept_counts(database) == kept
    with read() as session:
        stats = stats_from_counts(session, ADMIN, DecisionFilters())
    assert stats is not None
    assert stats.total == 300


def test_a_range_that_cuts_a_finnish_day_is_counted_from_the_log(
    database: Engine, rules: Rules, rule_engine: RuleEngine
) -> None:
    read, write = make_sessions(database, info=TEST_CHAIN_INFO)
    random_log(write, rules, rule_engine, random.Random(6), count=100)
    midnight = finnish_midnight(date(2025, 3, 31))  # 21:00 UTC, in summer time
    end_of_time = datetime(9999, 12, 31, 23, tzinfo=UTC)  # in Finland already a year no date can hold
    ranges = [
        ({"decided_after": midnight}, True),
        ({"decided_after": midnight.astimezone(UTC)}, True),
        ({"decided_after": midnight.replace(hour=1)}, False),
        ({"decided_before": end_of_time}, False),
        ({"decided_after": finnish_midnight(date(9999, 12, 2))}, True),  # no month after it
        ({"decided_before": finnish_midnight(date(1, 1, 2))}, True),
    ]
    with read() as session:
        for given, answered in ranges:
            filters = DecisionFilters(**given)
            assert (stats_from_counts(session, ADMIN, filters) is not None) is answered
            assert decision_stats(session, ADMIN, filters) == stats_by_scan(session, ADMIN, filters)
