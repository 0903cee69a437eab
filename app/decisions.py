"""The decision log: storing a decision once per event and chaining it, reading it back within
scope, exporting and counting it, and recording overrides of it; and the decision counts, kept
in the same transactions, that answer stats without scanning the log."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Select,
    SQLColumnExpression,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    outerjoin,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal
from app.db import newest_first, where_all
from app.engine import RuleEngine
from app.errors import EventIdConflict, FieldError, InvalidBody, NotFound
from app.events import FINNISH_TIME, ValidEvent
from app.models import (
    COUNT_GROUP,
    NO_UNIT,
    ChainLink,
    Decision,
    DecisionCount,
    DecisionMonthCount,
    Override,
    RecordKind,
    Role,
)
from app.routing import decide, new_decision_id
from app.ruleset import Registry
from app.schemas import (
    Count,
    DecisionFilters,
    DecisionQuery,
    DecisionStats,
    EventIn,
    OverrideIn,
    RuleCount,
    decode_cursor,
)

# The columns of a CSV export: the decision's main fields, the customer only as a pseudonym.
CSV_COLUMNS = (
    "decision_id",
    "event_id",
    "event_type",
    "occurred_at",
    "decided_at",
    "client",
    "customer_type",
    "customer_pseudonym",
    "home_municipality",
    "handler_unit",
    "provider_unit",
    "customership_unit",
    "customership_role",
    "cost_group",
    "rule_id",
    "ruleset_version",
    "ruleset_sha256",
)


def request_fingerprint(body: EventIn, pseudonym: str) -> str:
    """The SHA-256 of the request as it means, with the customer id as its pseudonym.

    Identity codes are few enough to guess from a plain hash, so the id is replaced
    before hashing; key order and whitespace do not change the fingerprint.
    """
    document = body.model_dump(mode="json")
    document["customer"]["id"] = pseudonym
    return hashlib.sha256(audit.canonical_json(document).encode("utf-8")).hexdigest()


class FirstStored(NamedTuple):
    """The first decision stored for a (client, event_id), as a repeat is answered from it."""

    event_id: str
    decision_id: str
    request_sha256: str
    decision: dict[str, Any]


def _replay(first: FirstStored, fingerprint: str) -> dict[str, Any]:
    """The first decision again, for a repeat with the same body; a different body is refused."""
    if first.request_sha256 != fingerprint:
        raise EventIdConflict(
            f"Event id {first.event_id} was already used by this client with a different body "
            f"(decision {first.decision_id})."
        )
    return first.decision


def decision_values(*, client: str, event: ValidEvent, fingerprint: str, decision: dict[str, Any]) -> dict[str, Any]:
    """The columns of the decision log's row for a decision (its seq aside)."""
    return {
        "decision_id": decision["decision_id"],
        "client": client,
        "event_id": event.event_id,
        "request_sha256": fingerprint,
        "event_type": event.event_type.code,
        "customer_type": event.customer_type.value,
        "customer_pseudonym": event.customer_pseudonym,
        "home_municipality": event.home_municipality,
        "occurred_at": event.occurred_at,
        "decided_at": datetime.fromisoformat(decision["decided_at"]),
        "handler_unit": decision["handler"]["unit"],
        "provider_unit": decision["provider"]["unit"],
        "customership_unit": (decision["customership"] or {}).get("unit"),
        "customership_role": (decision["customership"] or {}).get("role"),
        "cost_group": decision["cost_group"],
        "rule_id": decision["rule"]["id"],
        "ruleset_version": decision["rule"]["ruleset"],
        "ruleset_sha256": decision["rule"]["ruleset_sha256"],
        "decision": decision,
        "event": event.normalised(),
    }


@dataclass(frozen=True)
class Submission:
    """An event to store once: who sent it, the event, its fingerprint and the decision made for it."""

    client: str
    event: ValidEvent
    fingerprint: str
    decision: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: (client, event_id)."""
        return self.client, self.event.event_id


# What storing one submission came to: (decision, True) when new, (the first decision, False)
# on a replay, or the error that refuses it (a different body under a used event id).
Stored = tuple[dict[str, Any], bool] | EventIdConflict


def _upsert(session: Session) -> Callable[..., Any]:
    """The database's own INSERT, which can say what to do ON CONFLICT."""
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert


def _insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose (client, event_id) is not in the log yet; the decision ids inserted.

    One statement: a row whose key is taken is skipped by the database itself, so a
    concurrent writer (another worker) that stored the same event first is never an error.
    """
    statement = _upsert(session)(Decision).on_conflict_do_nothing(index_elements=["client", "event_id"])
    # On the connection, not the session: a plain INSERT of these rows, no ORM objects.
    result = session.connection().execute(statement.returning(Decision.decision_id), list(rows))
    return set(result.scalars())


def finnish_day(moment: datetime) -> date:
    """The calendar day in Finland at this moment."""
    return moment.astimezone(FINNISH_TIME).date()


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


def _count_new(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
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
    statement = _upsert(session)(table)
    added = statement.on_conflict_do_update(
        index_elements=[period, *COUNT_GROUP], set_={"decisions": table.decisions + statement.excluded.decisions}
    )
    session.connection().execute(added, values)


def _count_first_override(session: Session, decision: Decision) -> None:
    """Count a decision as overridden when the override just recorded is its first.

    Asked with the chain lock held (audit.append took it): an override of the same decision
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
    audit.lock_chain(session)
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


def _first_stored(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], FirstStored]:
    """The decisions stored first under these (client, event_id) keys."""
    event_ids_by_client: dict[str, list[str]] = {}
    for client, event_id in keys:
        event_ids_by_client.setdefault(client, []).append(event_id)
    columns = [getattr(Decision, name) for name in FirstStored._fields]
    found = {}
    for client, event_ids in event_ids_by_client.items():
        query = select(*columns).where(Decision.client == client, Decision.event_id.in_(event_ids))
        found.update({(client, row.event_id): FirstStored(*row) for row in session.execute(query)})
    return found


def store(session: Session, submissions: Sequence[Submission]) -> list[Stored]:
    """Store and chain each event once, in the caller's transaction; what each came to, in order.

    The first submission of a (client, event_id) that the log does not hold yet is inserted
    and chained; every other one is answered with the decision stored first, or refused when
    its body differs. Many submissions share one transaction: one BEGIN, one chain lock and
    one COMMIT (on PostgreSQL a flush to disk) for all of them.
    """
    if not submissions:
        return []
    first_here: dict[tuple[str, str], Submission] = {}
    for submission in submissions:
        first_here.setdefault(submission.key, submission)
    rows = [
        decision_values(client=s.client, event=s.event, fingerprint=s.fingerprint, decision=s.decision)
        for s in first_here.values()
    ]
    inserted = _insert_new(session, rows)
    new = [r for r in rows if r["decision_id"] in inserted]
    audit.append_many(session, kind=RecordKind.decision, records=new)
    _count_new(session, new)
    taken = [key for key, s in first_here.items() if s.decision["decision_id"] not in inserted]
    earlier = _first_stored(session, taken) if taken else {}
    outcomes: list[Stored] = []
    for submission in submissions:
        first = first_here[submission.key]
        if first.decision["decision_id"] not in inserted:
            stored = earlier[submission.key]
        elif submission is first:
            outcomes.append((first.decision, True))
            continue
        else:  # the same event twice in this batch: the second is a repeat of the first
            stored = FirstStored(first.event.event_id, first.decision["decision_id"], first.fingerprint, first.decision)
        try:
            outcomes.append((_replay(stored, submission.fingerprint), False))
        except EventIdConflict as conflict:
            outcomes.append(conflict)
    return outcomes


def submit(
    session: Session,
    *,
    client: str,
    event: ValidEvent,
    fingerprint: str,
    engine: RuleEngine,
    registry: Registry,
) -> tuple[dict[str, Any], bool]:
    """Decide, store and chain one event: (decision, True) when new, (the first one, False) on replay."""
    decision = decide(event, engine=engine, registry=registry)
    (outcome,) = store(session, [Submission(client, event, fingerprint, decision)])
    if isinstance(outcome, EventIdConflict):
        raise outcome
    return outcome


def _scope(principal: Principal, table: type[Decision] | CountTable) -> list[ColumnElement[bool]]:
    """The conditions that keep to the decisions (or their counts) the principal may see."""
    if principal.role is Role.integration:
        return [table.client == principal.name]
    if principal.role is Role.coach:
        municipality = principal.municipality
        return [or_(table.home_municipality == municipality, table.handler_unit == f"local-{municipality}")]
    return []


def _scoped(query: Select[Decision], principal: Principal) -> Select[Decision]:
    """Only the decisions the principal may see."""
    return query.where(*_scope(principal, Decision))


def _visible(session: Session, principal: Principal, decision_id: str) -> Decision:
    """The decision row; 404 also when it exists but the principal may not see it."""
    row = session.scalar(_scoped(select(Decision).where(Decision.decision_id == decision_id), principal))
    if row is None:
        raise NotFound(f"No decision {decision_id} that this key may see.")
    return row


def get_decision(session: Session, principal: Principal, decision_id: str) -> dict[str, Any]:
    """One decision; 404 also when it exists but the principal may not see it."""
    return _visible(session, principal, decision_id).decision


def get_link(session: Session, principal: Principal, decision_id: str) -> tuple[ChainLink, str]:
    """A visible decision's link in the audit chain and the document it hashes."""
    _visible(session, principal, decision_id)
    found = audit.get_link(session, decision_id)
    if found is None:
        raise NotFound(f"Decision {decision_id} has no link in the audit chain: verify the chain.")
    return found


def _filtered(query: Select[Decision], filters: DecisionFilters) -> Select[Decision]:
    """Add the auditor's filters to a query; every one given must hold."""
    equal = {
        Decision.event_type: filters.event_type,
        Decision.handler_unit: filters.handler,
        Decision.provider_unit: filters.provider,
        Decision.customership_unit: filters.customership,
        Decision.home_municipality: filters.municipality,
        Decision.rule_id: filters.rule_id,
        Decision.ruleset_version: filters.ruleset,
        Decision.customer_pseudonym: filters.customer_pseudonym,
    }
    ranges = [
        (Decision.decided_at, filters.decided_after, filters.decided_before),
        (Decision.occurred_at, filters.occurred_after, filters.occurred_before),
    ]
    return where_all(query, equal, ranges)


def list_decisions(
    session: Session, principal: Principal, filters: DecisionQuery
) -> tuple[Sequence[dict[str, Any]], str | None]:
    """A page of decisions, newest first, and the cursor of the next page (None at the end)."""
    query = _filtered(_scoped(select(Decision), principal), filters)
    rows, next_cursor = newest_first(session, query, Decision.seq, cursor=filters.cursor, limit=filters.limit)
    return [row.decision for row in rows], next_cursor


def _selection(principal: Principal, filters: DecisionFilters, before: int | None) -> Select[Decision]:
    query = _filtered(_scoped(select(Decision), principal), filters)
    return query if before is None else query.where(Decision.seq < before)


def export_start(session: Session, principal: Principal, filters: DecisionQuery) -> tuple[int, int]:
    """Where an export starts (its first row is below this seq) and how many rows it will send.

    The log only grows, and new rows come above a fixed start, so the count logged before
    the first byte is the count sent. Exactly so on SQLite, where seq is taken in commit
    order; on PostgreSQL a decision that took its seq before the export began but commits
    while it streams (a window of milliseconds) is sent without having been counted.
    """
    if filters.cursor is not None:
        start = decode_cursor(filters.cursor)
    else:
        start = (session.scalar(select(func.max(Decision.seq))) or 0) + 1
    count = session.scalar(
        _selection(principal, filters, start).with_only_columns(func.count(), maintain_column_froms=True)
    )
    return start, count or 0


def export_csv(
    sessions: Callable[[], AbstractContextManager[Session]],
    principal: Principal,
    filters: DecisionFilters,
    *,
    start: int,
    batch: int = 1000,
) -> Iterator[str]:
    """The selection as CSV, newest first, read `batch` rows at a time, each batch in its own short transaction."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    columns = [getattr(Decision, name) for name in CSV_COLUMNS]
    while True:
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        query = _selection(principal, filters, start).with_only_columns(*columns, Decision.seq)
        with sessions() as session:
            rows = session.execute(query.order_by(Decision.seq.desc()).limit(batch)).all()
        if not rows:
            return
        writer.writerows([audit.plain(value) for value in row[:-1]] for row in rows)
        start = rows[-1].seq


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
    selected = _selection(principal, filters, None)
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


def _periods(first: date | None, last: date | None) -> list[tuple[CountTable, date | None, date | None]]:
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
    query = where_all(select(table).where(*_scope(principal, table)), equal, [(period, since, until)])
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
    read = union_all(*(_counted(session, principal, filters, *part) for part in _periods(*days))).subquery()
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


def record_override(
    session: Session, principal: Principal, *, decision_id: str, body: OverrideIn, registry: Registry
) -> tuple[Override, int]:
    """Record that a visible decision was overridden in practice: a new chained record, never an edit.

    The override and its place in the chain.
    """
    decision = _visible(session, principal, decision_id)
    now = {"handler": decision.handler_unit, "customership": decision.customership_unit}
    errors = []
    for name, unit in (("handler", body.handler), ("customership", body.customership)):
        if unit is None:
            continue
        if unit not in registry.units:
            errors.append(FieldError(("body", name), "is not a unit id (GET /v1/units lists them)"))
        elif unit == now[name]:
            errors.append(FieldError(("body", name), f"is already the decision's {name}"))
    if errors:
        raise InvalidBody(errors)
    row = Override(
        override_id=new_decision_id(),
        decision_id=decision_id,
        handler_unit=body.handler,
        customership_unit=body.customership,
        reason=body.reason.value,
        text=body.text,
        recorded_by=principal.name,
        recorded_by_key=principal.key_id,
        recorded_role=principal.role.value,
        recorded_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    link = audit.append(session, kind=RecordKind.override, record=audit.record_of(RecordKind.override, row))
    _count_first_override(session, decision)
    return row, link["seq"]


def list_overrides(session: Session, principal: Principal, decision_id: str) -> Sequence[tuple[Override, int]]:
    """The overrides of a visible decision, oldest first, each with its place in the chain."""
    _visible(session, principal, decision_id)
    query = (
        select(Override, ChainLink.seq)
        .join(ChainLink, ChainLink.record_id == Override.override_id)
        .where(Override.decision_id == decision_id)
        .order_by(ChainLink.seq)
    )
    return [(row, seq) for row, seq in session.execute(query)]
