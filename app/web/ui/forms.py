"""What the pages' forms share: days in Finnish time, both ends included, and the units to choose from."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.rules.model import Rules
from app.time import FINNISH_TIME
from app.web.ui.i18n import Translator


def unit_choices(rules: Rules, t: Translator) -> list[tuple[str, str]]:
    """Every unit as (id, name in the user's language), by name."""
    return sorted(((u.id, t.pick(u.name)) for u in rules.registry.units.values()), key=lambda u: u[1].casefold())


def parse_day(value: str | None, errors: dict[str, str], name: str, t: Translator) -> date | None:
    """The day a field gives (YYYY-MM-DD), or None; a malformed one is an error at its field."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = t("errors.date")
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), FINNISH_TIME)


def day_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """(after, before) for the days start..end, both included, in Finnish time; None for an end not given."""
    after = _midnight(start) if start else None
    try:
        before = _midnight(end + timedelta(days=1)) if end else None
    except OverflowError:  # the last day a date can hold: nothing comes after it
        before = None
    return after, before
