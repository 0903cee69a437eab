"""Sums of the decision counts over whole Finnish days, by any of the columns they keep.

Whole months are read from the month counts and the days at the period's ends from the day
counts (app.decisions.stats.count_periods), so a year is about twelve months of rows, however
many decisions it had.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.orm import Session

from app.db import where_all
from app.decisions.stats import count_periods
from app.models import DecisionCount, DecisionMonthCount

# The name of the row's period (its day, or its month's first day) among the columns asked for.
PERIOD = "period"


def summed(session: Session, first: date, last: date, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """(the columns..., decisions, overridden) for [first, last], summed by the columns.

    PERIOD among them is the first day of the row's period: a day at the period's ends, a
    month's first day in between; callers that want months take `.replace(day=1)` of it.
    """
    parts: list[Select[*tuple[Any, ...]]] = []
    after = None if last == date.max else last + timedelta(days=1)  # the last date there is: no end
    for table, since, until in count_periods(first, after):
        period = DecisionCount.day if table is DecisionCount else DecisionMonthCount.month
        chosen = [period.label(PERIOD) if name == PERIOD else getattr(table, name).label(name) for name in columns]
        query = where_all(select(table), {}, [(period, since, until)])
        parts.append(query.with_only_columns(*chosen, table.decisions, table.overridden))
    if not parts:
        return []
    read = union_all(*parts).subquery()
    keys = [read.c[name] for name in columns]
    query = select(*keys, func.sum(read.c.decisions), func.sum(read.c.overridden)).group_by(*keys)
    # PostgreSQL sums as numeric: back to int, as a count is.
    return [(*row[:-2], int(row[-2]), int(row[-1])) for row in session.execute(query)]
