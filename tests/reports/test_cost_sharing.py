"""The cost-sharing report equals what the log itself holds, on both databases.

The report reads the decision counts; each test counts the decisions table's own rows in
Python (tests/reports/log.py) and compares, for periods of whole months, of days that cut
months, of one day, and of days with no decisions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.errors import InvalidQuery
from app.models import Role
from app.reports.cost_sharing import COST_GROUPS, CostSharingReport, GroupBy, cost_sharing
from app.rules.model import Rules
from tests.reports.log import Logged, counted

MANAGEMENT = Principal(key_id=1, name="johto", role=Role.management, municipality=None)
COACH_OF_II = Principal(key_id=2, name="coach-139", role=Role.coach, municipality="139")
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PERIODS = (
    (date(2025, 1, 1), date(2025, 12, 31)),  # the year: whole months
    (date(2025, 3, 15), date(2025, 10, 26)),  # cuts two months, and ends as summer time does
    (date(2025, 3, 30), date(2025, 3, 30)),  # one day: summer time begins
    (date(2024, 6, 1), date(2024, 6, 30)),  # before any rule set: nothing
)


def report(
    database: Engine, rules: Rules, first: date, last: date, *, principal: Principal = MANAGEMENT, **more: object
) -> CostSharingReport:
    with Session(database) as session:
        return cost_sharing(session, rules, principal, first=first, last=last, made_at=NOW, **more)  # type: ignore[arg-type]


def area(rules: Rules) -> frozenset[str]:
    return rules.rulesets[0].area_municipalities


@pytest.mark.parametrize(("first", "last"), PERIODS)
def test_each_line_and_group_is_the_logs_count(
    database: Engine, rules: Rules, log: list[Logged], first: date, last: date
) -> None:
    found = report(database, rules, first, last)
    expected = counted(log, first, last, area(rules))
    got = {(line.municipality, g.cost_group): g.decisions for line in found.lines for g in line.groups}
    assert {key: count for key, count in got.items() if count} == dict(expected)
    assert {line.municipality for line in found.lines} >= (
        {*area(rules), "outside_area"} if first.year == 2025 else set()
    )
    for total in found.area_totals:
        assert total.decisions == sum(count for (_, group), count in expected.items() if group == total.cost_group)
    assert found.area_total == sum(expected.values()) == sum(line.total for line in found.lines)


def test_shares_divide_by_the_areas_decisions_in_the_group(database: Engine, rules: Rules, log: list[Logged]) -> None:
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    expected = counted(log, first, last, area(rules))
    in_group = {group: sum(n for (_, g), n in expected.items() if g == group) for group in COST_GROUPS}
    found = report(database, rules, first, last)
    assert any(in_group[group] for group in COST_GROUPS), "the log has decisions in some group"
    for line in found.lines:
        for share in line.groups:
            total = in_group[share.cost_group]
            assert share.share == (round(expected[(line.municipality, share.cost_group)] / total, 4) if total else None)
    for group in COST_GROUPS:
        if in_group[group]:
            assert sum(line.groups[COST_GROUPS.index(group)].share or 0 for line in found.lines) == pytest.approx(
                1, abs=0.001
            )


@pytest.mark.parametrize("by", list(GroupBy))
def test_breakdowns_are_the_logs_counts(database: Engine, rules: Rules, log: list[Logged], by: GroupBy) -> None:
    first, last = date(2025, 2, 10), date(2025, 11, 20)
    expected = counted(log, first, last, area(rules), by=by.value)
    found = report(database, rules, first, last, group_by=by)
    got = {
        (line.municipality, row.key, group): count
        for line in found.lines
        for row in line.breakdown or []
        for group, count in row.by_group.items()
        if count
    }
    assert got == dict(expected)
    for line in found.lines:
        assert sum(row.total for row in line.breakdown or []) == line.total


def test_a_coach_sees_their_own_municipalitys_line_with_the_areas_shares(
    database: Engine, rules: Rules, log: list[Logged]
) -> None:
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    whole = report(database, rules, first, last)
    own = report(database, rules, first, last, principal=COACH_OF_II)
    assert own.scope == "139"
    assert [line.municipality for line in own.lines] == ["139"]
    assert own.lines == [line for line in whole.lines if line.municipality == "139"]
    assert own.lines[0].total == sum(
        n for (line, _), n in counted(log, first, last, area(rules)).items() if line == "139"
    )


def test_a_period_that_ends_before_it_begins_is_refused_naming_to(database: Engine, rules: Rules) -> None:
    with pytest.raises(InvalidQuery) as refused:
        report(database, rules, date(2025, 5, 2), date(2025, 5, 1))
    assert [error.loc for error in refused.value.errors] == [("query", "to")]


def test_the_rule_sets_in_force_in_the_period_are_named(database: Engine, rules: Rules) -> None:
    shipped = rules.rulesets[0]
    found = report(database, rules, date(2025, 1, 1), date(2025, 1, 31))
    assert [(r.version, r.sha256) for r in found.rulesets] == [(shipped.version, shipped.sha256)]
    assert report(database, rules, date(2024, 1, 1), date(2024, 12, 31)).rulesets == []
