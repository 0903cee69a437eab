"""Stats of the decision log: from the decision counts where they keep what is asked, else by scanning."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    case,
    exists,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from app.access.keys import Principal
from app.db import where_all
from app.decisions.counts import CountTable
from app.decisions.queries import scope_conditions, selection
from app.models import (
    NO_UNIT,
    Decision,
    DecisionCount,
    DecisionMonthCount,
    Override,
)
from app.schemas import Count, DecisionFilters, DecisionStats, RuleCount
from app.time import FINNISH_TIME


def _utc_hour(session: Session) -> ColumnElement[str]:
    """The hour of the decision in UTC as 'YYYY-MM-DD HH', in each database's own words."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Decision.decided_at), "YYYY-MM-DD HH24")
    return func.substr(Decision.decided_at, 1, 13)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC


def _finnish_months(hours: Sequence[tuple[str, int]]) -> list[Count]:
    # Finland's offset is a whole number of hours, so an hour in UTC lies in one Finnish month.
    months: dict[str, int] = {}
    for hour, count in hours:
        utc = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
        month = utc.astimezone(FINNISH_TIME).strftime("%Y-%m")
        months[month] = months.get(month, 0) + count
    return [Count(key=month, decisions=count) for month, count in sorted(months.items())]


def _stats(
    rules: Iterable[tuple[str, int, int]],
    handlers: Iterable[tuple[str, int]],
    customerships: Iterable[tuple[str | None, int]],
    municipalities: Iterable[tuple[str, int]],
    months: list[Count],
) -> DecisionStats:
    """The stats from each breakdown's (key, decisions[, overridden]), most decisions first."""
    by_rule = [
        RuleCount(rule_id=rule_id, decisions=count, overridden=changed, override_rate=round(changed / count, 4))
        for rule_id, count, changed in rules
    ]
    return DecisionStats(
        total=sum(rule.decisions for rule in by_rule),
        overridden=sum(rule.overridden for rule in by_rule),
        by_rule=by_rule,
        by_handler=[Count(key=key, decisions=count) for key, count in handlers],
        by_customership=[Count(key=key, decisions=count) for key, count in customerships],
        by_municipality=[Count(key=key, decisions=count) for key, count in municipalities],
        by_month=months,
    )


def stats_by_scan(session: Session, principal: Principal, filters: DecisionFilters) -> DecisionStats:
    """The stats counted from the log itself: a GROUP BY over the selected decisions for each breakdown."""
    # As the counts scope (by the decision's own columns), so that a scan and the counts agree.
    selected = selection(principal, filters, None, by_columns=True)
    overridden = func.count(case((exists().where(Override.decision_id == Decision.decision_id), 1)))

    def grouped(column: SQLColumnExpression[Any], *more: ColumnElement[int]) -> Sequence[Any]:
        query = selected.with_only_columns(column, func.count(), *more, maintain_column_froms=True)
        return session.execute(query.group_by(column).order_by(func.count().desc(), column)).all()

    return _stats(
        grouped(Decision.rule_id, overridden),
        grouped(Decision.handler_unit),
        grouped(Decision.customership_unit),
        grouped(Decision.home_municipality),
        _finnish_months(grouped(_utc_hour(session))),
    )


def _finnish_midnight(moment: datetime) -> date | None:
    """The Finnish day that begins at this moment; None when it is not midnight in Finland."""
    try:
        local = moment.astimezone(FINNISH_TIME)
    except OverflowError:  # a filter may name a moment whose Finnish day is past the last date
        return None
    return local.date() if local.time() == time() else None


def _counted_days(filters: DecisionFilters) -> tuple[date | None, date | None] | None:
    """The Finnish days [from, until) the filters' decided_* range covers; None when the counts cannot answer.

    They keep no customer and no occurred_at, and cannot cut a day; '' is their customership
    of no unit, which the filter must not match.
    """
    kept = filters.customer_pseudonym is None and filters.occurred_after is None and filters.occurred_before is None
    if not kept or filters.customership == NO_UNIT:
        return None
    after, before = filters.decided_after, filters.decided_before
    first = None if after is None else _finnish_midnight(after)
    last = None if before is None else _finnish_midnight(before)
    if (after is not None and first is None) or (before is not None and last is None):
        return None
    return first, last


def _month_after(day: date) -> date | None:
    """The first day of the month after this day's; None in the last month a date can have."""
    if (day.year, day.month) == (date.max.year, date.max.month):
        return None
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def count_periods(first: date | None, last: date | None) -> list[tuple[CountTable, date | None, date | None]]:
    """Where to read the days [first, last) (None: unbounded): the whole months by month, the rest by day."""
    start = first if first is None or first.day == 1 else _month_after(first)
    end = None if last is None else last.replace(day=1)
    if (first is not None and start is None) or (start is not None and end is not None and start >= end):
        return [(DecisionCount, first, last)]  # no whole month
    read: list[tuple[CountTable, date | None, date | None]] = [
        (DecisionCount, first, start),
        (DecisionMonthCount, start, end),
        (DecisionCount, end, last),
    ]
    return [(table, since, until) for table, since, until in read if table is DecisionMonthCount or since != until]


def _month_of(session: Session, period: SQLColumnExpression[date]) -> ColumnElement[str]:
    """The month of a day (or a month's first day) as 'YYYY-MM', in each database's own words."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(period, "YYYY-MM")
    return func.substr(period, 1, 7)  # SQLite keeps a date as 'YYYY-MM-DD'


def _counted(
    session: Session,
    principal: Principal,
    filters: DecisionFilters,
    table: CountTable,
    since: date | None,
    until: date | None,
) -> Select[*tuple[Any, ...]]:
    """The rows of one table of decision counts in [since, until) that the principal may see and the filters select."""
    period = DecisionCount.day if table is DecisionCount else DecisionMonthCount.month
    equal = {
        table.event_type: filters.event_type,
        table.handler_unit: filters.handler,
        table.provider_unit: filters.provider,
        table.customership_unit: filters.customership,
        table.home_municipality: filters.municipality,
        table.rule_id: filters.rule_id,
        table.ruleset_version: filters.ruleset,
    }
    query = where_all(select(table).where(*scope_conditions(principal, table)), equal, [(period, since, until)])
    return query.with_only_columns(
        _month_of(session, period).label("month"),
        table.rule_id.label("rule"),
        table.handler_unit.label("handler"),
        func.nullif(table.customership_unit, NO_UNIT).label("customership"),
        table.home_municipality.label("municipality"),
        table.decisions,
        table.overridden,
        maintain_column_froms=True,
    )


def stats_from_counts(session: Session, principal: Principal, filters: DecisionFilters) -> DecisionStats | None:
    """The stats from the decision counts, the same as stats_by_scan's; None when the counts cannot answer.

    One statement: the counts of the whole months by month and of the days at the range's
    ends by day, summed once by (month, rule, handler, customership, municipality), then by
    each of those alone. The database orders each breakdown, so that equal counts come in its
    collation's order (and NULL where it puts NULL), as in a scan.
    """
    days = _counted_days(filters)
    if days is None:
        return None
    read = union_all(*(_counted(session, principal, filters, *part) for part in count_periods(*days))).subquery()
    breakdowns = ("rule", "handler", "customership", "municipality", "month")
    selected = (
        select(
            *(read.c[name] for name in breakdowns),
            func.sum(read.c.decisions).label("decisions"),
            func.sum(read.c.overridden).label("overridden"),
        )
        .group_by(*(read.c[name] for name in breakdowns))
        .cte("selected")
    )
    each = union_all(
        *(
            select(
                literal_column(f"'{name}'").label("breakdown"),
                selected.c[name].label("item"),
                func.sum(selected.c.decisions).label("decisions"),
                func.sum(selected.c.overridden).label("overridden"),
            ).group_by(selected.c[name])
            for name in breakdowns
        )
    )
    ordered = each.order_by(each.selected_columns.decisions.desc(), each.selected_columns.item)
    found: dict[str, list[tuple[Any, int, int]]] = {name: [] for name in breakdowns}
    for breakdown, item, decisions, overridden in session.execute(ordered):
        # PostgreSQL sums a sum as numeric: back to int, as a scan's count is.
        found[breakdown].append((item, int(decisions), int(overridden)))
    return _stats(
        found["rule"],
        [(key, count) for key, count, _ in found["handler"]],
        [(key, count) for key, count, _ in found["customership"]],
        [(key, count) for key, count, _ in found["municipality"]],
        [Count(key=key, decisions=count) for key, count, _ in sorted(found["month"])],
    )


def decision_stats(session: Session, principal: Principal, filters: DecisionFilters) -> DecisionStats:
    """Counts of the decisions this principal may see and the filters select, and their override rates.

    From the decision counts when they can answer (milliseconds), else by scanning the log.
    """
    counted = stats_from_counts(session, principal, filters)
    return counted if counted is not None else stats_by_scan(session, principal, filters)
