"""Decision counts by Finnish day and month and by every dimension stats group or filter by.

Stats of a quarter of a million decisions took about two seconds on either database: seven
GROUP BY passes over the selected rows, and no index makes a scan of that many rows fast
enough. `decision_counts` keeps, for each Finnish calendar day of `decided_at` and each
(client, event type, rule, rule set, handler, provider, customership, municipality), how
many decisions there are and how many of them have at least one override;
`decision_month_counts` the same for each Finnish month (keyed by its first day), because a
day has nearly as many groups as a month and a year of days is too many rows to sum in
time. The service adds to both in the transactions that write the log; stats whose filters
they keep are answered from whole months and, at a range's ends, days.

They are derived data, updated in place: they get none of the log's append-only triggers,
and the audit chain does not vouch for them. A decision without a customership is counted
under '' (a key column cannot be NULL; no unit id is empty). On SQLite they are WITHOUT
ROWID tables, kept in key order, so that a range of days is read in one run.

The rows already in the log are counted here, in SQL. The day is the day in Finland: on
PostgreSQL by `AT TIME ZONE 'Europe/Helsinki'`; SQLite knows no time zones, so the hour in
UTC it stores is turned into the Finnish day by a function registered for this migration
from Python's own zone data, the data the service uses for new decisions. Months are the
sums of their days.

Revision ID: 0004
Revises: 0003
Created: 2026-11-28
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINNISH_TIME = ZoneInfo("Europe/Helsinki")
GROUP = (
    "client",
    "event_type",
    "rule_id",
    "ruleset_version",
    "handler_unit",
    "provider_unit",
    "customership_unit",
    "home_municipality",
)
COLUMNS = ", ".join(GROUP)
COUNT_DAYS = f"""
    INSERT INTO decision_counts (day, {COLUMNS}, decisions, overridden)
    SELECT {{day}}, client, event_type, rule_id, ruleset_version, handler_unit, provider_unit,
           coalesce(customership_unit, ''), home_municipality, count(*), count(o.decision_id)
    FROM decisions
    LEFT JOIN (SELECT DISTINCT decision_id FROM overrides) AS o USING (decision_id)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""
COUNT_MONTHS = f"""
    INSERT INTO decision_month_counts (month, {COLUMNS}, decisions, overridden)
    SELECT {{month}}, {COLUMNS}, sum(decisions), sum(overridden)
    FROM decision_counts
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""


def _create(table: str, period: str) -> None:
    op.create_table(
        table,
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
        sa.Column("handler_unit", sa.String(64), nullable=False),
        sa.Column("provider_unit", sa.String(64), nullable=False),
        sa.Column("customership_unit", sa.String(64), nullable=False),
        sa.Column("home_municipality", sa.String(3), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("overridden", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(period, *GROUP, name=f"pk_{table}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _create("decision_counts", "day")
    _create("decision_month_counts", "month")
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        day = "(decided_at AT TIME ZONE 'Europe/Helsinki')::date"
        month = "date_trunc('month', day::timestamp)::date"
    else:
        sqlite = connection.connection.driver_connection
        sqlite.create_function("reitti_finnish_day", 1, _finnish_day, deterministic=True)
        day = "reitti_finnish_day(substr(decided_at, 1, 13))"  # 'YYYY-MM-DD HH' in UTC
        month = "date(day, 'start of month')"
    op.execute(COUNT_DAYS.format(day=day))
    op.execute(COUNT_MONTHS.format(month=month))


@lru_cache(maxsize=100_000)
def _finnish_day(utc_hour: str) -> str:
    # Finland's offset is a whole number of hours: the UTC hour says the Finnish day.
    moment = datetime.strptime(utc_hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return moment.astimezone(FINNISH_TIME).date().isoformat()


def downgrade() -> None:
    op.drop_table("decision_month_counts")
    op.drop_table("decision_counts")
