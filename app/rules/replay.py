"""Replay logged decisions: the impact of a candidate rule set, and a check of determinism.

Every logged event is read again from its stored, normalised form (pseudonym, never the
identity code) and decided anew, writing nothing. Under a candidate version this shows
what a rule change would do to real cases; under each decision's own version it must give
back exactly what was logged, and anything else is an integrity finding.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import EventInvalid, RoutingDefect
from app.models import Decision
from app.rules.engine import RuleEngine
from app.rules.events import ValidEvent, from_stored
from app.rules.model import Rules, RuleSet
from app.rules.routing import matching_rule, outcome

# What a decision says, without its ids and times: replay must reproduce all of it.
OUTCOME_KEYS = ("handler", "provider", "customership", "tasks", "cost_group", "rule", "basis", "explanation", "notes")
# What counts as a changed decision for a person: who handles, produces, keeps, who pays, and why.
IMPACT_KEYS = ("handler", "provider", "customership", "cost_group", "basis")
# The keys among them that hold a unit: an example shows the unit's id alone.
UNIT_KEYS = ("handler", "provider", "customership")


def _unit(part: dict[str, Any] | None) -> str | None:
    return None if part is None else part["unit"]


def _brief(decision: dict[str, Any]) -> dict[str, Any]:
    return {key: _unit(decision[key]) if key in UNIT_KEYS else decision[key] for key in IMPACT_KEYS}


@dataclass
class ImpactReport:
    """What replaying the log found."""

    candidate: str
    decisions: int = 0
    changed: int = 0
    seconds: float = 0.0
    by_event_type: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    by_handler: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    integrity_findings: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as a document."""
        return {
            "candidate": self.candidate,
            "decisions": self.decisions,
            "changed": self.changed,
            "by_event_type": dict(self.by_event_type.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "by_handler": dict(self.by_handler.most_common()),
            "refused_by_candidate": dict(self.refused.most_common()),
            "examples": self.examples,
            "integrity_findings": self.integrity_findings,
            "seconds": round(self.seconds, 3),
        }


def _decide(event: ValidEvent, rules: Rules, engine: RuleEngine) -> dict[str, Any]:
    return outcome(event, matching_rule(event, engine), rules.registry)


def logged_decisions(session: Session, since: datetime | None, batch: int = 1000) -> Iterator[Decision]:
    """The log in sequence order, read in batches so that memory stays flat."""
    query = select(Decision).order_by(Decision.seq)
    if since is not None:
        query = query.where(Decision.occurred_at >= since)
    for row in session.scalars(query.execution_options(yield_per=batch)):
        yield row
        session.expunge(row)


def _check_own_version(
    row: Decision, rules: Rules, engine: RuleEngine
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(an integrity finding or None, the outcome under the decision's own version or None)."""
    own = rules.version(row.ruleset_version)
    finding = {"decision_id": row.decision_id, "seq": row.seq, "ruleset": row.ruleset_version}
    if own is None:
        return {**finding, "problem": "its rule set is not loaded"}, None
    problems = []
    if own.sha256 != row.ruleset_sha256:
        problems.append("its rule set's content changed after the decision (sha256 differs)")
    again = None
    try:
        again = _decide(from_stored(row.event, rules, own), rules, engine)
    except (EventInvalid, RoutingDefect) as error:
        problems.append(f"no longer decidable: {error.detail}")
    else:
        if differing := [key for key in OUTCOME_KEYS if again[key] != row.decision[key]]:
            problems.append(f"replay differs in {', '.join(differing)}")
    return ({**finding, "problem": "; ".join(problems)} if problems else None), again


def impact(
    session: Session,
    rules: Rules,
    engine: RuleEngine,
    candidate: RuleSet,
    *,
    since: datetime | None = None,
    examples: int = 5,
) -> ImpactReport:
    """Replay the log under `candidate` (what would change) and under its own versions (integrity)."""
    report = ImpactReport(candidate.version)
    started = time.perf_counter()
    for row in logged_decisions(session, since):
        report.decisions += 1
        finding, again = _check_own_version(row, rules, engine)
        if finding:
            report.integrity_findings.append(finding)
        if again is not None and row.ruleset_version == candidate.version:
            new = again  # the candidate is the decision's own version: decided once
        else:
            try:
                new = _decide(from_stored(row.event, rules, candidate), rules, engine)
            except (EventInvalid, RoutingDefect) as error:
                report.refused[f"{row.event_type}: {type(error).__name__}"] += 1
                continue
        old = row.decision
        if all(new[key] == old[key] for key in IMPACT_KEYS):
            continue
        report.changed += 1
        report.by_event_type[row.event_type] += 1
        report.by_rule[f"{old['rule']['id']} -> {new['rule']['id']}"] += 1
        report.by_handler[f"{_unit(old['handler'])} -> {_unit(new['handler'])}"] += 1
        if len(report.examples) < examples:
            report.examples.append(
                {
                    "decision_id": row.decision_id,
                    "event_type": row.event_type,
                    "before": _brief(old),
                    "after": _brief(new),
                }
            )
    report.seconds = time.perf_counter() - started
    return report
