"""Checks of request text that the schemas apply: storable, no identity code, well-formed times and ids.

Every string of a request but `customer.id` passes `no_identity_code`, so that a person's code
never reaches the log, the chain, a CSV, a page or an error; each message names no value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.identity_codes import contains_identity_code

# A decision's (and an override's) id as the service makes them: a UUID, lower case.
DECISION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# A cursor is the seq of the last row sent, in decimal: any such number is a place in the log, so
# the schema's pattern says exactly which cursors are taken (18 digits stay below 2**63).
CURSOR_PATTERN = r"^[0-9]{1,18}$"


def is_decision_id(value: str) -> bool:
    """Whether `value` has the form of an id this service gives; anything else names nothing."""
    return DECISION_ID.fullmatch(value) is not None


# What the service makes itself: a decision id, a pseudonym (HMAC-SHA256, hex). Random hex holds
# something shaped like a valid 21st-century code (century signs A-F) every few dozen values, so
# these shapes are not scanned: scanning them would refuse real pseudonyms and ids.
_MACHINE_MADE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{64}")


def storable_text(value: str) -> str:
    """`value` if every database can store it: no NUL (PostgreSQL), no lone surrogate (UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def no_identity_code(value: Any) -> Any:
    """Refuse text that is unstorable or carries an identity code: only `customer.id` may hold one.

    Every string of a request but `customer.id` goes through here (event ids, filters, free
    text, attribute names), so that a code never reaches the log, the chain, a CSV or a page.
    The message never repeats the value.
    """
    if isinstance(value, str):
        storable_text(value)
        if _MACHINE_MADE.fullmatch(value) is None and contains_identity_code(value):
            raise ValueError("must not contain an identity code; send it only as customer.id")
    return value


# A key a location may name as it is: a field, header or attribute name, as the service writes them.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def loc_part(key: str | int) -> str | int:
    """A part of an error's location fit to send back: an index, or a name that cannot be a person's code.

    A submitted key (an unknown attribute, an extra field) may be anything, an identity code
    too: any key that is not a plain name is sent as "(key)", never as it was.
    """
    if isinstance(key, int) or (_NAME.fullmatch(key) and not contains_identity_code(key)):
        return key
    return "(key)"


def no_identity_code_inside(value: Any) -> Any:
    """`no_identity_code` for every key and string inside a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            no_identity_code(key)
            no_identity_code_inside(item)
    elif isinstance(value, list):
        for item in value:
            no_identity_code_inside(item)
    else:
        no_identity_code(value)
    return value


def in_utc_range(value: Any) -> Any:
    """A time that cannot be expressed in UTC (year 1 east of Greenwich) is refused, not a 500."""
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None
    return value


# RFC 3339's date-time, an offset required (CONTRACT.md: "times in RFC 3339 with offset").
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
RFC3339 = re.compile(RFC3339_PATTERN)


def rfc3339(value: Any) -> Any:
    """Take a time given as text only in RFC 3339 with an offset: not a number, not a number as text."""
    if isinstance(value, datetime):  # made in Python (the UI's form, replays), not sent
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T08:00:00+02:00")
    return value
