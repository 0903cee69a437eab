"""The finite input domain of a rule set, walked point by point.

Every event type takes finitely many customer types, attribute values (absence
included) and, for routing, home municipalities that matter: the area's members and one
outside. So every point can be tried, and each valid point must find exactly one rule,
the same one in the engine and in the direct reading of the YAML (`Condition.holds`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.engine import RuleEngine
from app.errors import EventInvalid
from app.events import read_event
from app.ruleset import AttributeType, CustomerType, EventType, Rules, RuleSet
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


def points(rules: Rules, ruleset: RuleSet, event_types: Collection[str] | None = None) -> Iterator[EventIn]:
    """Every point of the domain of `ruleset` (or of some event types), as an event body."""
    occurred = datetime.combine(ruleset.valid_from, datetime.min.time(), ZoneInfo("Europe/Helsinki")) + timedelta(
        hours=12
    )
    homes = (*sorted(ruleset.area_municipalities), OUTSIDE_HOME)
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
        by_reference = sorted(rule.id for rule in ruleset.rules if rule.when.holds(event.facts))
        example = body.model_dump(mode="json")
        if by_engine != by_reference:
            report.disagreements.append((example, by_engine, by_reference))
        if not by_reference:
            report.gaps.append(example)
        elif len(by_reference) > 1:
            report.overlaps.append((example, by_reference))
        else:
            report.by_rule[by_reference[0]] += 1
    return report
