"""Cost sharing by municipality (the plan's LIITE 2 and 7.3), counted from the decision counts.

Each municipality pays its local services; the shared central services, the purchased services
and the support payments are split between the municipalities. The report says, for a period of
whole Finnish days, how many decisions each municipality's customers had in each cost group, and
each one's share of the area's decisions in that group.

The counts keep no cost group: a decision's group follows from its rule set, rule and providing
unit (app.rules.routing.cost_group), which they do keep. A combination the loaded rules cannot
place (a rule set or rule no longer in rules/) is looked up in the log itself, once per report.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.errors import FieldError, InvalidQuery
from app.models import Decision, Role
from app.reports.counted import summed
from app.rules.model import CostGroup, Rules
from app.rules.routing import cost_group

# The order of the groups in every view: the municipality's own first, then what is split.
COST_GROUPS: tuple[str, ...] = tuple(group.value for group in CostGroup)
# The line of customers whose home municipality is outside the area: they share no costs by
# municipality, and their decisions still count in the area's totals.
OUTSIDE_AREA = "outside_area"


class GroupBy(StrEnum):
    """A breakdown of each municipality's line."""

    unit = "unit"  # the providing unit
    event_type = "event_type"


class Period(BaseModel):
    """Whole Finnish days, both ends included."""

    from_: date = Field(alias="from", serialization_alias="from")
    to: date


class GroupShare(BaseModel):
    """A municipality's decisions in one cost group, and their share of the area's decisions in it."""

    cost_group: str
    decisions: int
    share: float | None = Field(description="of the area's decisions in this group, 0-1; null when it has none")


class BreakdownRow(BaseModel):
    """A municipality's decisions of one providing unit or event type, by cost group."""

    key: str
    by_group: dict[str, int]
    total: int


class MunicipalityLine(BaseModel):
    """One municipality's line: its customers' decisions by cost group."""

    municipality: str = Field(description=f"a municipality code, or {OUTSIDE_AREA!r}")
    groups: list[GroupShare]
    total: int
    breakdown: list[BreakdownRow] | None = None


class GroupTotal(BaseModel):
    """The area's decisions in one cost group."""

    cost_group: str
    decisions: int


class RulesetInForce(BaseModel):
    """A rule set in force during the period."""

    version: str
    valid_from: date
    in_force_until: date | None
    sha256: str


class CostSharingReport(BaseModel):
    """Decisions by municipality and cost group in a period, with shares and the area's totals."""

    period: Period
    made_at: datetime
    group_by: GroupBy | None
    cost_groups: list[str]
    scope: str = Field(description="'area', or the one municipality a coach's report is kept to")
    lines: list[MunicipalityLine]
    area_totals: list[GroupTotal] = Field(description="the whole area's, what the shares divide by")
    area_total: int
    rulesets: list[RulesetInForce]


def check_period(first: date, last: date) -> None:
    """Refuse (422, naming `to`) a period that ends before it begins."""
    if last < first:
        raise InvalidQuery([FieldError(("query", "to"), "the period ends before it begins: 'to' is before 'from'")])


# (home municipality, rule set, rule, providing unit, event type) and its decisions.
CountedRow = tuple[str, str, str, str, str, int]


def counted_rows(session: Session, first: date, last: date) -> list[CountedRow]:
    """The decisions of [first, last] by what cost sharing needs."""
    columns = ("home_municipality", "ruleset_version", "rule_id", "provider_unit", "event_type")
    return [(*row[:5], row[5]) for row in summed(session, first, last, columns)]


def _group_of(session: Session, rules: Rules, version: str, rule_id: str, provider: str) -> str:
    """The cost group of decisions of this rule set, rule and providing unit."""
    ruleset = rules.version(version)
    rule = ruleset.rules_by_id.get(rule_id) if ruleset else None
    unit = rules.registry.units.get(provider)
    if ruleset is not None and rule is not None and unit is not None:
        return cost_group(ruleset, rule, unit)
    logged = session.scalar(
        select(Decision.cost_group)
        .where(Decision.ruleset_version == version, Decision.rule_id == rule_id, Decision.provider_unit == provider)
        .limit(1)
    )
    if logged is None:  # the counts name a combination the log does not have: they need rebuilding
        raise LookupError(f"no decision of {version}/{rule_id}/{provider} to take a cost group from")
    return logged


def rulesets_in_force(rules: Rules, first: date, last: date) -> list[RulesetInForce]:
    """The rule sets in force on some day of [first, last]."""
    return [
        RulesetInForce(version=r.version, valid_from=r.valid_from, in_force_until=r.ends, sha256=r.sha256)
        for r in rules.rulesets
        if r.valid_from <= last and (r.ends is None or r.ends >= first)
    ]


def _line_key(home: str, area: frozenset[str]) -> str:
    return home if home in area else OUTSIDE_AREA


def cost_sharing(
    session: Session,
    rules: Rules,
    principal: Principal,
    *,
    first: date,
    last: date,
    group_by: GroupBy | None = None,
    made_at: datetime,
) -> CostSharingReport:
    """The cost-sharing report of [first, last]; a coach's holds their own municipality's line only.

    The shares divide by the whole area's decisions in each group, whoever asks: a municipality's
    share is the same number in its own report and in the area's.
    """
    check_period(first, last)
    in_force = rulesets_in_force(rules, first, last)
    versions = {r.version for r in in_force}
    area: frozenset[str] = frozenset().union(*(r.area_municipalities for r in rules.rulesets if r.version in versions))
    groups: dict[tuple[str, str, str], str] = {}
    by_line: dict[str, dict[str, int]] = {key: dict.fromkeys(COST_GROUPS, 0) for key in (*sorted(area), OUTSIDE_AREA)}
    breakdowns: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for home, version, rule_id, provider, event_type, count in counted_rows(session, first, last):
        combination = (version, rule_id, provider)
        if combination not in groups:
            groups[combination] = _group_of(session, rules, version, rule_id, provider)
        group = groups[combination]
        line = _line_key(home, area)
        by_line[line][group] += count
        if group_by is not None:
            key = provider if group_by is GroupBy.unit else event_type
            row = breakdowns[line].setdefault(key, dict.fromkeys(COST_GROUPS, 0))
            row[group] += count
    totals = {group: sum(line[group] for line in by_line.values()) for group in COST_GROUPS}
    shown = list(by_line)
    scope = "area"
    if principal.role is Role.coach and principal.municipality is not None:
        scope = principal.municipality
        shown = [_line_key(principal.municipality, area)]
    lines = [
        MunicipalityLine(
            municipality=key,
            groups=[
                GroupShare(
                    cost_group=group,
                    decisions=by_line[key][group],
                    share=round(by_line[key][group] / totals[group], 4) if totals[group] else None,
                )
                for group in COST_GROUPS
            ],
            total=sum(by_line[key].values()),
            breakdown=None if group_by is None else _breakdown(breakdowns.get(key, {})),
        )
        for key in shown
    ]
    return CostSharingReport(
        period=Period.model_validate({"from": first, "to": last}),
        made_at=made_at,
        group_by=group_by,
        cost_groups=list(COST_GROUPS),
        scope=scope,
        lines=lines,
        area_totals=[GroupTotal(cost_group=group, decisions=totals[group]) for group in COST_GROUPS],
        area_total=sum(totals.values()),
        rulesets=in_force,
    )


def _breakdown(rows: dict[str, dict[str, int]]) -> list[BreakdownRow]:
    """The rows of one line's breakdown, most decisions first, then by key."""
    made = [BreakdownRow(key=key, by_group=counts, total=sum(counts.values())) for key, counts in rows.items()]
    return sorted(made, key=lambda row: (-row.total, row.key))
