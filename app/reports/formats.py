"""Numbers, days and months as a Finnish or an English reader writes them.

Finnish: a decimal comma, a non-breaking space between thousands (so that "12 345" never
breaks over two lines), d.m.yyyy, and the percent sign after a space. English: "12,345",
"12.3%", "30 November 2026".
"""

from __future__ import annotations

from datetime import date

NBSP = "\u00a0"

MONTHS = {
    "fi": (
        "tammikuu", "helmikuu", "maaliskuu", "huhtikuu", "toukokuu", "kesäkuu",
        "heinäkuu", "elokuu", "syyskuu", "lokakuu", "marraskuu", "joulukuu",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip
# Short names for a chart's axis: the Finnish ones as the Finnish almanac abbreviates them.
SHORT_MONTHS = {
    "fi": ("tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras", "joulu"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def number(value: float, language: str, decimals: int = 0) -> str:
    """A number with the language's thousands separator and decimal mark."""
    text = f"{value:,.{decimals}f}"
    if language == "fi":
        return text.replace(",", NBSP).replace(".", ",")
    return text


def percent(share: float | None, language: str, decimals: int = 1) -> str:
    """A share of 0-1 as a percentage ("12,3 %" / "12.3%"); a dash where there is none."""
    if share is None:
        return "–"
    shown = number(share * 100, language, decimals)
    return f"{shown}{NBSP}%" if language == "fi" else f"{shown}%"


def day(value: date, language: str) -> str:
    """A day: 1.3.2025 in Finnish, 1 March 2025 in English."""
    if language == "fi":
        return f"{value.day}.{value.month}.{value.year}"
    return f"{value.day} {MONTHS['en'][value.month - 1]} {value.year}"


def month(value: date, language: str, *, short: bool = False) -> str:
    """A month and its year: "maaliskuu 2025", "March 2025"; short, "maalis 2025", "Mar 2025"."""
    names = SHORT_MONTHS if short else MONTHS
    return f"{names[language][value.month - 1]} {value.year}"
