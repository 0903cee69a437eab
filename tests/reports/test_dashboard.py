"""The dashboard's figures equal what the log itself holds, on both databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.models import Acknowledgement, Role
from app.reports.dashboard import BUSIEST, Figures, figures
from app.rules.model import Rules
from app.time import today_in_finland
from tests.reports.log import Logged, line_of, read_answers

MANAGEMENT = Principal(key_id=1, name="johto", role=Role.management, municipality=None)
CENTRAL = {"shared_central", "purchased", "support_payments"}


def dashboard(database: Engine, rules: Rules, first: date, last: date) -> Figures:
    with Session(database) as session:
        return figures(session, rules, MANAGEMENT, first=first, last=last, made_at=datetime.now(UTC))


@pytest.mark.parametrize(
    ("first", "last"), [(date(2025, 1, 1), date(2025, 12, 31)), (date(2025, 3, 20), date(2025, 8, 5))]
)
def test_volumes_are_the_logs_decisions_by_finnish_month(
    database: Engine, rules: Rules, log: list[Logged], first: date, last: date
) -> None:
    found = dashboard(database, rules, first, last)
    expected = Counter(row.day.replace(day=1) for row in log if first <= row.day <= last)
    assert {v.month: v.decisions for v in found.volumes if v.decisions} == dict(expected)
    assert [v.month for v in found.volumes][0] == first.replace(day=1)
    assert found.total == sum(expected.values())


def test_local_and_central_per_municipality_are_the_logs(database: Engine, rules: Rules, log: list[Logged]) -> None:
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    area = rules.rulesets[0].area_municipalities
    expected: Counter[tuple[str, str]] = Counter()
    for row in log:
        kind = "local" if row.cost_group == "local" else "central" if row.cost_group in CENTRAL else "external"
        expected[(line_of(row.home, area), kind)] += 1
    found = dashboard(database, rules, first, last)
    got = {}
    for shares in found.shares:
        got.update({(shares.municipality, "local"): shares.local, (shares.municipality, "central"): shares.central})
        got[(shares.municipality, "external")] = shares.external
    assert {key: n for key, n in got.items() if n} == dict(expected)


def test_override_rates_are_the_logs(database: Engine, rules: Rules, log: list[Logged]) -> None:
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    decisions = Counter(row.rule_id for row in log)
    overridden = Counter(row.rule_id for row in log if row.overridden)
    assert overridden, "the log has overrides"
    found = dashboard(database, rules, first, last)
    assert len(found.overrides) == min(BUSIEST, len(decisions))
    for rule in found.overrides:
        assert (rule.decisions, rule.overridden) == (decisions[rule.rule_id], overridden[rule.rule_id])
    rates = sorted((overridden[rule] / decisions[rule] for rule in decisions), reverse=True)
    assert [rule.rate for rule in found.overrides] == pytest.approx(rates[:BUSIEST])


def test_the_busiest_routes_are_the_logs(database: Engine, rules: Rules, log: list[Logged]) -> None:
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    routes = Counter((row.event_type, row.handler) for row in log)
    found = dashboard(database, rules, first, last)
    assert [route.decisions for route in found.routes] == sorted(routes.values(), reverse=True)[:BUSIEST]
    for route in found.routes:
        assert route.decisions == routes[(route.event_type, route.handler_unit)]


def test_handovers_and_waiting_times_per_unit_are_the_tables(database: Engine, rules: Rules, log: list[Logged]) -> None:
    # The log's decisions are of 2025 and its items were taken today: a period from 2025 to today has both.
    first, last = date(2025, 1, 1), today_in_finland()
    expected = read_answers(database, first, last)
    assert any(unit.handovers_in for unit in expected.values()), "the log has handovers"
    assert any(unit.waits for unit in expected.values()), "the log has items taken"
    found = dashboard(database, rules, first, last)
    assert [row.unit for row in found.waiting] == sorted(expected)
    for row in found.waiting:
        unit = expected[row.unit]
        assert (row.handovers_in, row.handovers_out, row.taken) == (
            unit.handovers_in,
            unit.handovers_out,
            len(unit.waits),
        )
        assert row.median_seconds == pytest.approx(unit.median)
        assert row.p90_seconds == pytest.approx(unit.p90)
    # A returned item is no waiting time: the taken are the acknowledgements that are not returns.
    with database.connect() as connection:
        outcomes = Counter(connection.scalars(select(Acknowledgement.outcome)))
    assert outcomes["returned"], "some items were returned"
    assert sum(row.taken for row in found.waiting) == outcomes["taken"]


def test_waiting_times_count_the_days_items_were_taken_and_handovers_the_days_of_decisions(
    database: Engine, rules: Rules, log: list[Logged]
) -> None:
    # 2025 alone: its handovers, and none of the items taken today.
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    expected = read_answers(database, first, last)
    found = dashboard(database, rules, first, last)
    assert {row.unit: (row.handovers_in, row.handovers_out) for row in found.waiting} == {
        unit: (answers.handovers_in, answers.handovers_out) for unit, answers in expected.items()
    }
    assert all((row.taken, row.median_seconds, row.p90_seconds) == (0, None, None) for row in found.waiting)
    # Today alone: the items taken today, and no handovers (the log has no decision of today).
    today = today_in_finland()
    expected = read_answers(database, today, today)
    found = dashboard(database, rules, today, today)
    assert {row.unit: row.taken for row in found.waiting} == {unit: len(a.waits) for unit, a in expected.items()}
    assert all(row.handovers_in == row.handovers_out == 0 for row in found.waiting)
