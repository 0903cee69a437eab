"""The finite input domain of a rule set, walked point by point.

Every event type takes finitely many customer types, attribute values (absence
included) and, for routing, home municipalities that matter: the area's members and one
outside. So every point can be tried, and each valid point must find exactly one rule,
the same one in the engine and in the direct reading of the YAML (`Condition.holds`).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.errors import EventInvalid
from app.rules.engine import RuleEngine, Situations, named_values
from app.rules.events import read_event
from app.rules.model import AttributeType, CustomerType, EventType, Facts, FactValue, Rules, RuleSet
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
    rules: Rules,
    ruleset: RuleSet,
    event_types: Collection[str] | None = None,
    homes: Collection[str] = (),
    *,
    only_homes: Collection[str] | None = None,
    every_type_languages: tuple[object, ...] | None = None,
) -> Iterator[EventIn]:
    """Every point of the domain of `ruleset` (or of some event types), as an event body.

    By default the homes are the area's members and one outside, and a language is tried
    only where an event type may require one; `only_homes` and `every_type_languages`
    replace those choices (the decision table's walk: representatives, every event type).
    """
    occurred = datetime.combine(ruleset.valid_from, datetime.min.time(), ZoneInfo("Europe/Helsinki")) + timedelta(
        hours=12
    )
    homes = sorted(only_homes if only_homes is not None else {*ruleset.area_municipalities, *homes, OUTSIDE_HOME})
    for event_type in rules.registry.event_types.values():
        if event_types is not None and event_type.code not in event_types:
            continue
        for customer_type in event_type.customer_types:
            choices = _attribute_choices(event_type, customer_type)
            names = [name for name, _ in choices]
            languages = every_type_languages or (LANGUAGES if event_type.language_required_when else (ABSENT,))
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


def _named(rules: Rules, ruleset: RuleSet, fact: str) -> set[FactValue]:
    """Every value of `fact` that a condition names: the rules', the derived facts' and the registry's."""
    conditions = [rule.when for rule in ruleset.rules] + [derived.when for derived in ruleset.derived_facts]
    for event_type in rules.registry.event_types.values():
        if event_type.language_required_when is not None:
            conditions.append(event_type.language_required_when)
        conditions += [spec.required_when for spec in event_type.attributes.values() if spec.required_when]
    return named_values(conditions).get(fact, set())


def representatives(rules: Rules, ruleset: RuleSet) -> tuple[list[str], tuple[object, ...]]:
    """Homes and languages that stand for all of them.

    Conditions test a home or a language only for equality with the values they name (and
    a home's area). So every named value is tried, plus one unnamed home inside the area,
    one outside it, one unnamed language and none: any other value is decided as these are.
    """
    named_homes = _named(rules, ruleset, "home_municipality")
    inside = sorted(code for code in ruleset.area_municipalities if code not in named_homes)
    outside = sorted(code for code in rules.registry.municipalities if code not in ruleset.area_municipalities)
    outside_unnamed = [code for code in outside if code not in named_homes]
    homes = {str(code) for code in named_homes} | set(inside[:1])
    homes |= {OUTSIDE_HOME} if OUTSIDE_HOME in outside_unnamed else set(outside_unnamed[:1])
    named_languages = _named(rules, ruleset, "language")
    unnamed = next(code for code in ("en", "de", "ru", "et", "so", "ar") if code not in named_languages)
    return sorted(homes), (ABSENT, *sorted(str(code) for code in named_languages), unnamed)


def situations(rules: Rules, ruleset: RuleSet, event_types: Collection[str] | None = None) -> Iterator[Facts]:
    """The facts of every valid situation of the domain: what the engine's decision table is filled from.

    Every language is tried only for an event type whose rules test the language: one that
    no rule of it tests leaves the situation as it is. Where the language may be required,
    one language and none are tried, as its absence can make the event invalid.
    """
    homes, languages = representatives(rules, ruleset)
    reduction = Situations(ruleset)
    for code, event_type in rules.registry.event_types.items():
        if event_types is not None and code not in event_types:
            continue
        if "language" in reduction.tested(code):
            tried = languages
        else:
            tried = (ABSENT, languages[-1]) if event_type.language_required_when else (ABSENT,)
        for body in points(rules, ruleset, {code}, only_homes=homes, every_type_languages=tried):
            try:
                yield read_event(body, rules, pseudonym_key=b"decision-table", ruleset=ruleset).facts
            except EventInvalid:
                continue


def loaded_engine(rules: Rules, cache_dir: Path | None = None) -> RuleEngine:
    """An engine with every rule set compiled and its decision table filled (from `cache_dir` when it can)."""
    engine = RuleEngine(cache_dir=cache_dir)
    for ruleset in rules.rulesets:
        engine.load(ruleset, situations=functools.partial(situations, rules, ruleset))
    return engine


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
