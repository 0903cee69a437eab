"""The decision counts by Finnish day and month, kept in the transactions that write the log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    cast,
    delete,
    func,
    insert,
    outerjoin,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.audit import chain
from app.db import dialect_insert, insert_rows
from app.models import (
    COUNT_GROUP,
    NO_UNIT,
    Decision,
    DecisionCount,
    DecisionMonthCount,
    Override,
)
from app.time import FINNISH_TIME, finnish_day

CountTable = type[DecisionCount] | type[DecisionMonthCount]

# How many decisions of each group, by the first day of its period (a day or a month).
Tally = Counter[tuple[date, tuple[str, ...]]]

# The decision counts by day and by month: each table, its period column, and a day's period.
PERIODS: tuple[tuple[CountTable, str, Callable[[date], date]], ...] = (
    (DecisionCount, "day", lambda day: day),
    (DecisionMonthCount, "month", lambda day: day.replace(day=1)),
)


def _count_group(row: Mapping[str, Any]) -> tuple[date, tuple[str, ...]]:
    """The Finnish day of a decision (its log columns) and its group of the decision counts, as in COUNT_GROUP."""
    group = {**row, "customership_unit": row["customership_unit"] or NO_UNIT}
    return finnish_day(row["decided_at"]), tuple(group[name] for name in COUNT_GROUP)


def count_new(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add new decisions to the decision counts: an upsert by day and one by month.

    Called with the chain lock held, as every writer of the counts is, so their rows are
    never locked in two orders at once.
    """
    if not rows:  # only repeats: nothing new to count
        return
    by_day = Counter(_count_group(row) for row in rows)
    for table, period, of_day in PERIODS:
        counts: Tally = Counter()
        for (day, group), count in by_day.items():
            counts[of_day(day), group] += count
        _add_counts(session, table, period, counts)


def _add_counts(session: Session, table: CountTable, period: str, counts: Tally) -> None:
    """One statement that adds each group's count to what it had: INSERT ... ON CONFLICT DO UPDATE.

    Executed once for all the groups (executemany: psycopg pipelines it, SQLite steps one
    prepared statement). The same statement with every group in its VALUES was compiled
    anew for each batch: 31 ms a batch of 64 on PostgreSQL, against 5 ms this way.
    """
    values = [
        {period: start, **dict(zip(COUNT_GROUP, group, strict=True)), "decisions": count, "overridden": 0}
        for (start, group), count in sorted(counts.items())
    ]
    insert_rows(session.connection(), _upsert_counts(dialect_insert(session), table, period), values)


@lru_cache(maxsize=8)
def _upsert_counts(insert: Callable[..., Any], table: CountTable, period: str) -> Any:
    """The upsert of `_add_counts`, built once per dialect and table. Built for every batch, its
    `excluded` alias copied each column of the table: with a decision or two to a batch, as the
    writer has at moderate load, that was about a third of the batch's CPU."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[period, *COUNT_GROUP], set_={"decisions": table.decisions + statement.excluded.decisions}
    )


def count_first_override(session: Session, decision: Decision) -> None:
    """Count a decision as overridden when the override just recorded is its first.

    Asked with the chain lock held (chain.append took it): an override of the same decision
    recorded by another transaction has committed by then, and this statement sees it.
    """
    overrides = session.scalar(select(func.count()).where(Override.decision_id == decision.decision_id))
    if overrides != 1:
        return
    day, group = _count_group({name: getattr(decision, name) for name in (*COUNT_GROUP, "decided_at")})
    for table, period, of_day in PERIODS:
        counted = update(table).filter_by(**{period: of_day(day)}, **dict(zip(COUNT_GROUP, group, strict=True)))
        session.connection().execute(counted.values(overridden=table.overridden + 1))


@lru_cache(maxsize=100_000)
def _finnish_day_of_utc_hour(hour: str) -> str:
    # Finland's offset is a whole number of hours: the hour in UTC says the day in Finland.
    return finnish_day(datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)).isoformat()


def rebuild_counts(session: Session) -> tuple[int, int]:
    """Count the whole log again into the decision counts, in the caller's transaction: (groups by day, decisions).

    The chain lock is held throughout, so no decision or override is written meanwhile.
    """
    chain.lock_chain(session)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        day: ColumnElement[Any] = cast(func.timezone(FINNISH_TIME.key, Decision.decided_at), Date)
        month: ColumnElement[Any] = cast(func.date_trunc("month", cast(DecisionCount.day, DateTime)), Date)
    else:
        # SQLite knows no time zones: its 'YYYY-MM-DD HH' in UTC goes through Python's zone data.
        sqlite = connection.connection.driver_connection
        if sqlite is None:
            raise RuntimeError("the SQLite connection was closed under the rebuild")
        sqlite.create_function("reitti_finnish_day", 1, _finnish_day_of_utc_hour, deterministic=True)
        day = func.reitti_finnish_day(func.substr(Decision.decided_at, 1, 13))
        month = func.date(DecisionCount.day, "start of month")
    overridden = select(Override.decision_id).distinct().subquery()
    group = [getattr(Decision, name) for name in COUNT_GROUP]
    group[COUNT_GROUP.index("customership_unit")] = func.coalesce(Decision.customership_unit, NO_UNIT)
    days = (
        select(day, *group, func.count(), func.count(overridden.c.decision_id))
        .select_from(outerjoin(Decision, overridden, overridden.c.decision_id == Decision.decision_id))
        .group_by(day, *group)
    )
    day_groups = [getattr(DecisionCount, name) for name in COUNT_GROUP]
    sums = [func.sum(DecisionCount.decisions), func.sum(DecisionCount.overridden)]
    months = select(month, *day_groups, *sums).group_by(month, *day_groups)  # a month is the sum of its days
    columns = [*COUNT_GROUP, "decisions", "overridden"]
    connection.execute(delete(DecisionCount))
    connection.execute(delete(DecisionMonthCount))
    connection.execute(insert(DecisionCount).from_select(["day", *columns], days))
    connection.execute(insert(DecisionMonthCount).from_select(["month", *columns], months))
    totals = connection.execute(select(func.count(), func.coalesce(func.sum(DecisionCount.decisions), 0))).one()
    return int(totals[0]), int(totals[1])
