"""Finnish time: the plan's days, rule sets' validity and the stats' days and months are Finland's."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

FINNISH_TIME = ZoneInfo("Europe/Helsinki")


def finnish_day(moment: datetime) -> date:
    """The calendar day in Finland at this moment."""
    return moment.astimezone(FINNISH_TIME).date()


def today_in_finland() -> date:
    """Today's date in Finland, for the rule set in force now."""
    return datetime.now(FINNISH_TIME).date()
