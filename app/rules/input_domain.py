"""The finite input domain of a rule set, walked point by point.

Every event type takes finitely many customer types, attribute values (absence
included) and, for routing, home municipalities that matter: the area's members and one
outside. So every point can be tried, and each valid point must find exactly one rule,
the same one in the engine and in the direct reading of the YAML (`Condition.holds`).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import AttributeType, CustomerType, EventType, Rules, RuleSet
from app.rules.routing import outcome
from app.schemas import CustomerIn, EventIn

ABSENT = object()
# A home municipality outside the area stands for all of them: Helsinki.
OUTSIDE_HOME = "091"
SAMPLE_IDS = {
    CustomerType.jobseeker: "131052-308T",
    CustomerType.person: "010594Y9032",
    CustomerType.employer: "0112038-9",
}
SAMPLE_DATES = ("2024-07-31", "2024-08-01")
LANGUAGES = (ABSENT, "fi", "sv", "se", "en")


@dataclass
class DomainReport:
    """What walking the domain found."""

    points: int = 0
    valid: int = 0
    invalid: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    disagreements: list[tuple[dict[str, Any], list[str], list[str]]] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        """No gap, no overlap, no disagreement between engine and reference."""
        return not (self.gaps or self.overlaps or self.disagreements)


def _attribute_choices(event_type: EventType, customer_type: CustomerType) -> list[tuple[str, tuple[Any, ...]]]:
    choices = []
    for name, spec in event_type.attributes.items():
        if spec.type is AttributeType.boolean:
            values: tuple[Any, ...] = (True, False)
        elif spec.type is AttributeType.choice:
            values = spec.values
        else:
            values = SAMPLE_DATES
        choices.append((name, (ABSENT, *values)))
    return choices


def points(
    rules: Rules, ruleset: RuleSet, event_types: Collection[str] | None = None, homes: Collection[str] = ()
) -> Iterator[EventIn]:
    """Every point of the domain of `ruleset` (or of some event types), as an event body."""
    occurred = datetime.combine(ruleset.valid_from, datetime.min.time(), ZoneInfo("Europe/Helsinki")) + timedelta(
        hours=12
    )
    homes = sorted({*ruleset.area_municipalities, *homes, OUTSIDE_HOME})
    for event_type in rules.registry.event_types.values():
        if event_types is not None and event_type.code not in event_types:
            continue
        for customer_type in event_type.customer_types:
            choices = _attribute_choices(event_type, customer_type)
            names = [name for name, _ in choices]
            languages = LANGUAGES if event_type.language_required_when else (ABSENT,)
            for values in itertools.product(*(v for _, v in choices)):
                attributes = {n: v for n, v in zip(names, values, strict=True) if v is not ABSENT}
                if customer_type is not CustomerType.jobseeker and set(attributes) & set(
                    rules.registry.integration_status
                ):
                    continue  # refused for any customer but a jobseeker: tried once in the tests
                for home, language in itertools.product(homes, languages):
                    yield EventIn.model_construct(
                        event_id="domain",
                        event_type=event_type.code,
                        occurred_at=occurred,
                        customer=CustomerIn.model_construct(
                            type=customer_type.value,
                            id=SAMPLE_IDS[customer_type],
                            home_municipality=home,
                            language=language if isinstance(language, str) else None,
                        ),
                        attributes=attributes,
                    )


def walk(
    rules: Rules, ruleset: RuleSet, engine: RuleEngine, event_types: Collection[str] | None = None
) -> DomainReport:
    """Try every point: valid ones must match one rule, the same in engine and reference."""
    report = DomainReport()
    key = b"domain-walk"
    for body in points(rules, ruleset, event_types):
        report.points += 1
        try:
            event = read_event(body, rules, pseudonym_key=key)
        except EventInvalid:
            report.invalid += 1
            continue
        report.valid += 1
        by_engine = sorted(engine.matching_rules(ruleset, event.facts))
        by_reference = sorted(rule.id for rule in ruleset.matching(event.facts))
        if by_engine != by_reference:
            report.disagreements.append((body.model_dump(mode="json"), by_engine, by_reference))
        if not by_reference:
            report.gaps.append(body.model_dump(mode="json"))
        elif len(by_reference) > 1:
            report.overlaps.append((body.model_dump(mode="json"), by_reference))
        else:
            report.by_rule[by_reference[0]] += 1
    return report


def _summary(decision: dict[str, Any]) -> dict[str, Any]:
    customership = decision["customership"]
    return {
        "rule": decision["rule"]["id"],
        "handler": decision["handler"]["unit"],
        "provider": decision["provider"]["unit"],
        "customership": None if customership is None else f"{customership['unit']} ({customership['role']})",
        "cost_group": decision["cost_group"],
        "basis": decision["basis"],
    }


def _decided(body: EventIn, rules: Rules, ruleset: RuleSet, engine: RuleEngine) -> dict[str, Any] | str:
    """The outcome's summary under `ruleset`, or why there is none."""
    try:
        event = read_event(body, rules, pseudonym_key=b"domain-diff", ruleset=ruleset)
    except EventInvalid:
        return "refused (422)"
    matched = engine.matching_rules(ruleset, event.facts)
    if len(matched) != 1:
        return f"defect: {len(matched)} rules match"
    return _summary(outcome(event, ruleset.rules_by_id[matched[0]], rules.registry))


COMPARED = ("handler", "provider", "customership", "cost_group", "basis")


@dataclass
class DomainDiff:
    """Every point of the domain whose outcome differs between two versions."""

    before: str
    after: str
    points: int = 0
    changed: Counter[str] = field(default_factory=Counter)
    # event type -> (outcome before, outcome after) -> [count, an example event]
    changes: dict[str, dict[tuple[str, ...], list[Any]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Counts by event type, each kind of change once with how often and an example."""
        return {
            "before": self.before,
            "after": self.after,
            "points": self.points,
            "changed": sum(self.changed.values()),
            "by_event_type": [
                {
                    "event_type": code,
                    "changed": count,
                    "changes": [
                        {"points": n, "before": json.loads(old), "after": json.loads(new), "example": example}
                        for (old, new), (n, example) in self.changes[code].items()
                    ],
                }
                for code, count in sorted(self.changed.items())
            ],
        }


def diff(
    rules: Rules, before: RuleSet, after: RuleSet, engine: RuleEngine, event_types: Collection[str] | None = None
) -> DomainDiff:
    """Walk the domain once under both versions; keep the points whose outcome differs."""
    report = DomainDiff(before.version, after.version)
    for body in points(rules, before, event_types, homes=after.area_municipalities):
        report.points += 1
        old = _decided(body, rules, before, engine)
        new = _decided(body, rules, after, engine)
        if isinstance(old, dict) and isinstance(new, dict):
            if all(old[key] == new[key] for key in COMPARED):
                continue
        elif old == new:
            continue
        code = body.event_type
        report.changed[code] += 1
        # Group by kind of change: the home municipality's own unit reads as H, so that the
        # same change in eleven municipalities is one line of the review.
        home = f"local-{body.customer.home_municipality}"
        key = tuple(json.dumps(side, sort_keys=True).replace(home, "H") for side in (old, new))
        kinds = report.changes.setdefault(code, {})
        if key in kinds:
            kinds[key][0] += 1
        else:
            event = body.model_dump(mode="json", exclude={"event_id", "occurred_at"})
            event["customer"].pop("id", None)
            kinds[key] = [1, event]
    return report
