"""The interpretations register: every reading of the plan the rules make, by how many decisions it made.

For the area's policy owner, auditors and admins: sorted by volume, so that the readings that
decide the most cases, and the open questions beside them, come first. The numbers come from
the decision counts (app/decisions/stats.py), of whole Finnish days.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from app.audit import access_log
from app.decisions import stats
from app.decisions.reads import Reader
from app.models import AccessAction
from app.rules.interpretations import Interpretation, interpretations
from app.rules.model import Rules
from app.schemas import DecisionFilters
from app.time import FINNISH_TIME


@dataclass(frozen=True)
class RegisterRow:
    """One interpretation and the decisions it made in the period."""

    interpretation: Interpretation
    decisions: int


def period_filters(since: date | None, until: date | None) -> DecisionFilters:
    """Decisions of the Finnish days from `since` to `until`, both included (None: unbounded)."""

    def midnight(day: date | None, later: int = 0) -> datetime | None:
        # A day at the ends of the calendar bounds nothing: before year 1 or after 9999 is no decision.
        if day is None:
            return None
        try:
            moment = datetime.combine(day + timedelta(days=later), time(), FINNISH_TIME)
            moment.astimezone(UTC)
        except OverflowError:
            return None
        return moment

    return DecisionFilters(decided_after=midnight(since), decided_before=midnight(until, later=1))


def read_register(
    reader: Reader, rules: Rules, *, since: date | None = None, until: date | None = None, version: str | None = None
) -> list[RegisterRow]:
    """Every interpretation of every version (or one), with its decisions in the period, most first; the read logged."""
    period = period_filters(since, until)
    rows: list[RegisterRow] = []
    total = 0
    for ruleset in rules.rulesets:
        if version is not None and ruleset.version != version:
            continue
        found = interpretations(rules, ruleset)
        # One count of the version's decisions by rule for each (field, unit) asked, and one of all.
        by_selection: dict[tuple[str | None, str | None], dict[str, int]] = defaultdict(dict)
        for selection in {(c.field, c.unit) for i in found for c in i.counted}:
            field, unit = selection
            filters = period.model_copy(update={"ruleset": ruleset.version, **({field: unit} if field else {})})
            counted = stats.decision_stats(reader.session, reader.principal, filters)
            by_selection[selection] = {r.rule_id: r.decisions for r in counted.by_rule}
            if field is None:
                total += counted.total
        for interpretation in found:
            decisions = sum(by_selection[(c.field, c.unit)].get(c.rule_id, 0) for c in interpretation.counted)
            rows.append(RegisterRow(interpretation, decisions))
    access_log.log_read(reader.transaction, reader.principal, AccessAction.stats, rows=total, filters=period)
    return sorted(rows, key=lambda row: (-row.decisions, row.interpretation.version, row.interpretation.id))


CSV_COLUMNS = (
    "version",
    "kind",
    "id",
    "decisions",
    "basis",
    "interpretation_fi",
    "interpretation_en",
    "open_question_fi",
    "open_question_en",
)


def register_csv(rows: list[RegisterRow]) -> str:
    """The register as CSV, one line an interpretation, its notes joined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        i = row.interpretation
        question = i.question.text if i.question else None
        writer.writerow(
            [
                i.version,
                i.kind,
                i.id,
                row.decisions,
                " ".join(i.basis),
                " ".join(n.text.fi for n in i.notes),
                " ".join(n.text.en for n in i.notes),
                question.fi if question else "",
                question.en if question else "",
            ]
        )
    return out.getvalue()
