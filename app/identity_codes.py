"""Recognising Finnish identity codes: checking one identifier, and finding any inside a text.

At the bottom of the layers so that the request schemas can refuse, in one place, any value
other than `customer.id` that carries a person's code.
"""

from __future__ import annotations

import datetime
import re
from enum import StrEnum
from typing import Final

__all__ = [
    "IdentifierKind",
    "InvalidIdentifier",
    "check_identifier",
    "contains_identity_code",
]

# Shape of a henkilötunnus, deliberately broad: any letter (or + / -) as the
# century sign and any letter as check character, either case, so that a
# mistyped code is refused rather than silently accepted as an opaque id.
# ASCII only: Unicode digits and case folding (e.g. the Kelvin sign matching
# "k") would otherwise let look-alike strings through as identity codes.
_HETU_SHAPE: Final = re.compile(r"[0-9]{6}[-+A-Z][0-9]{3}[0-9A-Z]", re.IGNORECASE | re.ASCII)

# Shape of a Y-tunnus: seven digits, hyphen, check digit.
_BUSINESS_ID_SHAPE: Final = re.compile(r"[0-9]{7}-[0-9]")

# Century sign -> first year of the century; the 2023 reform added Y-U and
# B-F as alternatives so that the individual numbers do not run out.
_CENTURY_BASE: Final[dict[str, int]] = {
    "+": 1800,
    "-": 1900,
    "U": 1900,
    "V": 1900,
    "W": 1900,
    "X": 1900,
    "Y": 1900,
    "A": 2000,
    "B": 2000,
    "C": 2000,
    "D": 2000,
    "E": 2000,
    "F": 2000,
}

# Check characters indexed by remainder mod 31 (G, I, O, Q, Z are left out
# because they are easily confused with digits or each other).
_HETU_CHECK_CHARS: Final = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# Individual numbers 000 and 001 are never issued.
_MIN_INDIVIDUAL_NUMBER: Final = 2

_BUSINESS_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2)


class InvalidIdentifier(ValueError):
    """An identifier was refused; the message never repeats the identifier."""


class IdentifierKind(StrEnum):
    """What kind of identifier a checked value is."""

    PERSONAL_IDENTITY_CODE = "personal_identity_code"
    BUSINESS_ID = "business_id"
    OPAQUE = "opaque"


def check_identifier(value: str) -> IdentifierKind:
    """Classify an identifier, refusing malformed identity codes and business ids."""
    if not value.strip():
        raise InvalidIdentifier("identifier is empty or only whitespace")
    if value != value.strip():
        raise InvalidIdentifier("identifier has leading or trailing whitespace")
    if _HETU_SHAPE.fullmatch(value):
        _check_personal_identity_code(value)
        return IdentifierKind.PERSONAL_IDENTITY_CODE
    if _BUSINESS_ID_SHAPE.fullmatch(value):
        _check_business_id(value)
        return IdentifierKind.BUSINESS_ID
    return IdentifierKind.OPAQUE


# Every place inside a text where an identity code could start, not glued to more digits:
# a code is written as its own token, while ids made of timestamps and counters
# ("batch-1764505930-12", "20251130-1") hold code-shaped runs by chance, about one in ten
# of them with a valid check character. Lookaheads, so that overlapping candidates are each
# tried. Any case: a code written in lower case still names the person.
_HETU_ANYWHERE: Final = re.compile(r"(?<![0-9])(?=([0-9]{6}[-+A-Z][0-9]{3}[0-9A-Z]))", re.IGNORECASE | re.ASCII)
_BUSINESS_ID_ANYWHERE: Final = re.compile(r"(?<![0-9])(?=([0-9]{7}-[0-9])(?![0-9]))", re.ASCII)


def contains_personal_identity_code(text: str) -> bool:
    """Whether `text` holds a valid henkilötunnus anywhere (check character checked)."""
    for match in _HETU_ANYWHERE.finditer(text):
        try:
            _check_personal_identity_code(match.group(1).upper())
            return True
        except InvalidIdentifier:
            pass
    return False


def contains_identity_code(text: str) -> bool:
    """Whether `text` holds a valid henkilötunnus or Y-tunnus anywhere (check character checked)."""
    if contains_personal_identity_code(text):
        return True
    for match in _BUSINESS_ID_ANYWHERE.finditer(text):
        try:
            _check_business_id(match.group(1))
            return True
        except InvalidIdentifier:
            pass
    return False


def _check_personal_identity_code(value: str) -> None:
    """Refuse a henkilötunnus-shaped value unless it is fully valid."""
    # The official form is upper case only; accepting lower case would let two
    # spellings of one person pseudonymise to different values.
    if value != value.upper():
        raise InvalidIdentifier("personal identity code must be written in upper case")
    day, month, year = int(value[0:2]), int(value[2:4]), int(value[4:6])
    century_sign, individual, check = value[6], value[7:10], value[10]
    century_base = _CENTURY_BASE.get(century_sign)
    if century_base is None:
        raise InvalidIdentifier("personal identity code has an unknown century sign")
    try:
        datetime.date(century_base + year, month, day)
    except ValueError:
        # `from None`: the original message is safe, but nothing about the
        # value should travel further than this function.
        raise InvalidIdentifier("personal identity code has a date that does not exist") from None
    if int(individual) < _MIN_INDIVIDUAL_NUMBER:
        raise InvalidIdentifier("personal identity code has an individual number below 002")
    expected = _HETU_CHECK_CHARS[int(value[0:6] + individual) % 31]
    if check != expected:
        raise InvalidIdentifier("personal identity code has a wrong check character")


def _check_business_id(value: str) -> None:
    """Refuse a Y-tunnus-shaped value whose check digit is wrong."""
    total = sum(int(d) * w for d, w in zip(value[:7], _BUSINESS_ID_WEIGHTS, strict=True))
    remainder = total % 11
    # Remainder 1 would need check digit 10; such numbers are never issued.
    if remainder == 1:
        raise InvalidIdentifier("business id has a number that cannot be valid")
    expected = 0 if remainder == 0 else 11 - remainder
    if int(value[8]) != expected:
        raise InvalidIdentifier("business id has a wrong check digit")
