"""The dashboard's figures equal what the log itself holds, on both databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.models import Role
from app.reports.dashboard import BUSIEST, Figures, figures
from app.rules.model import Rules
from tests.reports.log import Logged, line_of

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
