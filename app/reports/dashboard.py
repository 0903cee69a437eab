"""The dashboard's figures (the plan's 2.6.5, tiedolla johtaminen), each one function over the decision counts
or, for the units' handovers and waiting times, over their worklists.

A panel of the dashboard is one function here, returning its rows, and one block of
app/web/ui/templates/reports.html that draws them as a table and (app/web/ui/reports.py)
a chart. `figures()` gathers every panel for a period; a panel added later is one more
function, one more field of `Figures`, one block. The handovers and waiting times per unit were
(`waiting_by_unit`): they read the worklists' items and the acknowledgements, not the counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.models import ItemKind, WorklistItem
from app.reports.cost_sharing import OUTSIDE_AREA, CostSharingReport, cost_sharing
from app.reports.counted import PERIOD, summed
from app.rules.model import CostGroup, Rules
from app.time import FINNISH_TIME
from app.worklists.waiting import waiting_times

# How many rows the panels of "most" keep: the table beside the chart has them all.
BUSIEST = 10


@dataclass(frozen=True)
class MonthVolume:
    """Decisions made in one Finnish month."""

    month: date  # its first day
    decisions: int


@dataclass(frozen=True)
class MunicipalityShares:
    """One municipality's decisions: its own local services, the area's shared ones, and the rest."""

    municipality: str  # a code, or OUTSIDE_AREA
    local: int
    central: int  # shared central, purchased and support payments: what the municipalities split
    external: int

    @property
    def total(self) -> int:
        return self.local + self.central + self.external

    @property
    def local_share(self) -> float | None:
        return self.local / self.total if self.total else None

    @property
    def central_share(self) -> float | None:
        return self.central / self.total if self.total else None


@dataclass(frozen=True)
class RuleOverrides:
    """A rule's decisions and how many of them were overridden in practice."""

    rule_id: str
    decisions: int
    overridden: int

    @property
    def rate(self) -> float:
        return self.overridden / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class Route:
    """A route of events: an event type and the unit that handles it."""

    event_type: str
    handler_unit: str
    decisions: int


@dataclass(frozen=True)
class UnitWaiting:
    """A unit's handovers of the period, and how long the items it took in the period waited.

    Handovers count by the decision's day (decided_at); waiting times by the day the unit took
    the item (the acknowledgement's recorded_at), as app.worklists.waiting measures them: from
    the decision to the unit taking it. A unit with no item taken has no waiting time (None).
    """

    unit: str
    handovers_in: int
    handovers_out: int
    taken: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class Figures:
    """Every panel of the dashboard for one period."""

    first: date
    last: date
    volumes: list[MonthVolume]
    shares: list[MunicipalityShares]
    overrides: list[RuleOverrides]
    routes: list[Route]
    waiting: list[UnitWaiting]

    @property
    def total(self) -> int:
        return sum(month.decisions for month in self.volumes)


def months_of(first: date, last: date) -> list[date]:
    """The first days of the months that [first, last] touches."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def volumes_by_month(session: Session, first: date, last: date) -> list[MonthVolume]:
    """Decisions by Finnish month, every month of the period (none: 0)."""
    found: Counter[date] = Counter()
    for period, decisions, _ in summed(session, first, last, (PERIOD,)):
        found[period.replace(day=1)] += decisions
    return [MonthVolume(month, found[month]) for month in months_of(first, last)]


# What the municipalities split between them, beside what each pays alone (7.3).
CENTRAL_GROUPS = frozenset({CostGroup.shared_central, CostGroup.purchased, CostGroup.support_payments})


def shares_by_municipality(report: CostSharingReport) -> list[MunicipalityShares]:
    """Each municipality's local and central decisions, from the cost-sharing report of the period."""
    made = []
    for line in report.lines:
        by_group = {share.cost_group: share.decisions for share in line.groups}
        made.append(
            MunicipalityShares(
                municipality=line.municipality,
                local=by_group[CostGroup.local],
                central=sum(by_group[group] for group in CENTRAL_GROUPS),
                external=by_group[CostGroup.external],
            )
        )
    # The area's municipalities first, those from outside it last.
    return sorted(made, key=lambda row: (row.municipality == OUTSIDE_AREA, row.municipality))


def override_rates(session: Session, first: date, last: date) -> list[RuleOverrides]:
    """The rules overridden most often in practice: the highest rate first (then most decisions)."""
    rows = summed(session, first, last, ("rule_id",))
    rules = [RuleOverrides(rule_id, decisions, overridden) for rule_id, decisions, overridden in rows]
    return sorted(rules, key=lambda rule: (-rule.rate, -rule.decisions, rule.rule_id))[:BUSIEST]


def busiest_routes(session: Session, first: date, last: date) -> list[Route]:
    """The event types and their handlers with the most decisions, most first."""
    rows = summed(session, first, last, ("event_type", "handler_unit"))
    routes = [Route(event_type, handler, decisions) for event_type, handler, decisions, _ in rows]
    return sorted(routes, key=lambda route: (-route.decisions, route.event_type, route.handler_unit))[:BUSIEST]


def finnish_midnights(first: date, last: date) -> tuple[datetime, datetime | None]:
    """[first, last] in Finnish days as moments: the start of `first` and of the day after `last` (None: no end)."""
    start = datetime.combine(first, time(), FINNISH_TIME)
    end = None if last == date.max else datetime.combine(last + timedelta(days=1), time(), FINNISH_TIME)
    return start, end


def waiting_by_unit(session: Session, first: date, last: date) -> list[UnitWaiting]:
    """Each unit's incoming and outgoing handovers decided in [first, last] and the waiting times of the
    items it took in [first, last]: every unit with either, by its id.
    """
    start, end = finnish_midnights(first, last)
    query = (
        select(WorklistItem.unit, WorklistItem.kind, func.count())
        .where(WorklistItem.kind.in_([ItemKind.handover_in, ItemKind.handover_out]))
        .where(WorklistItem.decided_at >= start)
        .group_by(WorklistItem.unit, WorklistItem.kind)
    )
    if end is not None:
        query = query.where(WorklistItem.decided_at < end)
    handed: Counter[tuple[str, str]] = Counter()
    for unit, kind, count in session.execute(query):
        handed[(unit, kind)] = int(count)
    waited = {row.unit: row for row in waiting_times(session, answered_after=start, answered_before=end).units}
    units = sorted({unit for unit, _ in handed} | set(waited))
    return [
        UnitWaiting(
            unit=unit,
            handovers_in=handed[(unit, ItemKind.handover_in)],
            handovers_out=handed[(unit, ItemKind.handover_out)],
            taken=waited[unit].count if unit in waited else 0,
            median_seconds=waited[unit].median_seconds if unit in waited else None,
            p90_seconds=waited[unit].p90_seconds if unit in waited else None,
        )
        for unit in units
    ]


def figures(
    session: Session, rules: Rules, principal: Principal, *, first: date, last: date, made_at: datetime
) -> Figures:
    """Every panel of [first, last], each from its own GROUP BY over the counts.

    One query a panel: reading the counts once by every column the panels need was measured
    three times slower on SQLite (a year of a million decisions: 184 ms against about 70 ms
    for the four), as its groups are nearly as many as the month counts' rows.
    """
    report = cost_sharing(session, rules, principal, first=first, last=last, made_at=made_at)
    return Figures(
        first=first,
        last=last,
        volumes=volumes_by_month(session, first, last),
        shares=shares_by_municipality(report),
        overrides=override_rates(session, first, last),
        routes=busiest_routes(session, first, last),
        waiting=waiting_by_unit(session, first, last),
    )
