"""What a rule set is once loaded: the registry (units, event types, municipalities), conditions, rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from app.rules.plan import PlanSection

# A fact posted to the engine: every value is one of these, never a number, so the
# engine's loose comparisons ('564' == 564) cannot match across types.
FactValue: TypeAlias = str | bool
Facts: TypeAlias = Mapping[str, FactValue]
SYMBOLS = ("H", "C")


class RulesError(Exception):
    """`rules/` is not valid; the message names the file and the rule."""


class UnitKind(StrEnum):
    local = "local"
    central = "central"
    purchased = "purchased"
    state = "state"
    other_area = "other_area"
    wellbeing_county = "wellbeing_county"
    partner = "partner"


class CustomershipRole(StrEnum):
    municipal_coach = "municipal_coach"
    central_expert = "central_expert"
    municipal_employer_services = "municipal_employer_services"
    other_area = "other_area"


class CostGroup(StrEnum):
    local = "local"
    shared_central = "shared_central"
    purchased = "purchased"
    support_payments = "support_payments"
    external = "external"


class CustomerType(StrEnum):
    jobseeker = "jobseeker"
    employer = "employer"
    person = "person"


class Area(StrEnum):
    inside = "inside"
    outside = "outside"


@dataclass(frozen=True)
class Texts:
    """The same text in Finnish and English."""

    fi: str
    en: str


@dataclass(frozen=True)
class Unit:
    """A unit that handles events, produces services or keeps customers."""

    id: str
    kind: UnitKind
    municipality: str | None
    name: Texts


class AttributeType(StrEnum):
    boolean = "boolean"
    choice = "choice"
    date = "date"


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute as an event type takes it."""

    name: str
    type: AttributeType
    values: tuple[str, ...] = ()
    required: bool = False
    required_when: Condition | None = None
    absent_means: FactValue | None = None
    echo: bool = False
    latest: date | None = None
    latest_reason: Texts | None = None


@dataclass(frozen=True)
class EventType:
    """An event type of the catalogue and what it takes."""

    code: str
    name: Texts
    customer_types: tuple[CustomerType, ...]
    attributes: Mapping[str, AttributeSpec]
    language_required_when: Condition | None
    integration_status: str | None  # "required", "optional" or None


@dataclass(frozen=True)
class Registry:
    """What the rule sets speak of: units, event types, municipalities."""

    units: Mapping[str, Unit]
    event_types: Mapping[str, EventType]
    integration_status: tuple[str, ...]
    municipalities: Mapping[str, str]
    vocabulary: Mapping[str, AttributeSpec]
    genitives: Mapping[str, str] = field(default_factory=dict)  # Finnish genitive by code, where kept

    def fact_domain(self, name: str) -> tuple[FactValue, ...] | None:
        """The values a fact can take, or None where it is open (a language code)."""
        if name == "event_type":
            return tuple(self.event_types)
        if name == "customer_type":
            return tuple(CustomerType)
        if name == "area":
            return tuple(Area)
        if name == "home_municipality":
            return tuple(self.municipalities)
        if name == "language":
            return None
        spec = self.vocabulary.get(name)
        if spec is None:
            raise KeyError(name)
        if spec.type is AttributeType.boolean:
            return (True, False)
        if spec.type is AttributeType.choice:
            return spec.values
        return None


@dataclass(frozen=True)
class Term:
    """One test of one fact: equal to one of `values`, or (negated) to none of them."""

    fact: str
    values: tuple[FactValue, ...]
    negated: bool = False

    def holds(self, facts: Facts) -> bool:
        """A missing fact fails every test, negated ones too, as in the engine."""
        if self.fact not in facts:
            return False
        value = facts[self.fact]
        found = any(type(value) is type(v) and value == v for v in self.values)
        return found != self.negated


@dataclass(frozen=True)
class Condition:
    """All `terms` hold, and at least one of `any_of` when it is given."""

    terms: tuple[Term, ...] = ()
    any_of: tuple[Condition, ...] = ()

    def holds(self, facts: Facts) -> bool:
        """Evaluate the condition directly: the reference reading of a rule's `when`."""
        if not all(term.holds(facts) for term in self.terms):
            return False
        return not self.any_of or any(branch.holds(facts) for branch in self.any_of)

    def explain(self, facts: Facts) -> list[dict[str, Any]]:
        """Each test of the condition with whether it held, for a person reading a trace."""
        tests: list[dict[str, Any]] = [
            {"test": Condition((term,)).describe(), "held": term.holds(facts)} for term in self.terms
        ]
        if self.any_of:
            branches = [branch.holds(facts) for branch in self.any_of]
            tests.append({"test": f"one of: {Condition(any_of=self.any_of).describe()}", "held": any(branches)})
        return tests

    def admits_event_type(self, event_type: str) -> bool:
        """Whether some event of this type could meet the condition (a cheap pre-filter)."""
        for term in self.terms:
            if term.fact == "event_type" and not term.holds({"event_type": event_type}):
                return False
        return not self.any_of or any(branch.admits_event_type(event_type) for branch in self.any_of)

    def describe(self) -> str:
        """The condition in words, for people reading the API's registry."""
        parts = [
            f"{t.fact} {'not in' if t.negated else '='} {'/'.join(str(v).lower() for v in t.values)}"
            for t in self.terms
        ]
        if self.any_of:
            parts.append("(" + " or ".join(branch.describe() for branch in self.any_of) + ")")
        return " and ".join(parts)

    def facts_tested(self) -> set[str]:
        """Every fact the condition looks at."""
        names = {term.fact for term in self.terms}
        for branch in self.any_of:
            names |= branch.facts_tested()
        return names

    def merged(self, other: Condition) -> Condition:
        """Both conditions at once (a file's `when` with a rule's)."""
        if self.any_of and other.any_of:
            return Condition(self.terms + other.terms, (Condition(any_of=self.any_of), other))
        return Condition(self.terms + other.terms, self.any_of or other.any_of)


@dataclass(frozen=True)
class Note:
    """A note a decision carries; kind `interpretation` marks a reading of the plan."""

    kind: str
    text: Texts


@dataclass(frozen=True)
class UnitRef:
    """A unit id, or a symbol (H, C) resolved for each event."""

    ref: str


@dataclass(frozen=True)
class CustomershipSpec:
    """Who keeps the customer: a unit and its role, or the coach (C) with the coach's role."""

    unit: UnitRef
    role: CustomershipRole | None  # None: the coach's own role


@dataclass(frozen=True)
class TaskSpec:
    """A task the decision assigns to a unit beside the handler's own work."""

    task: str
    unit: UnitRef


@dataclass(frozen=True)
class Rule:
    """One rule: when it applies, the outcome, the plan sections and the explanation."""

    id: str
    source: str
    when: Condition
    handler: UnitRef
    provider: UnitRef
    customership: CustomershipSpec | None
    tasks: tuple[TaskSpec, ...]
    basis: tuple[str, ...]
    notes: tuple[Note, ...]
    explanation: Texts
    # The rule's own cost group where it departs from the provider's (CATALOGUE §7.4).
    cost_group: CostGroup | None = None


@dataclass(frozen=True)
class CoachEntry:
    """One possible reading of C: the first whose condition holds."""

    when: Condition | None
    unit: UnitRef
    role: CustomershipRole
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class DerivedFact:
    """A boolean fact computed from the event before any rule is tried."""

    name: str
    when: Condition
    basis: tuple[str, ...]


# Two people: the one who wrote a version is not enough on their own (app/rules/releases.py).
APPROVALS_NEEDED = 2


@dataclass(frozen=True)
class Signature:
    """One approver's valid signature of a version's current content."""

    approver: str
    fingerprint: str
    signed_at: datetime


@dataclass(frozen=True)
class Release:
    """Who has signed a version, and what stands between it and release."""

    signatures: tuple[Signature, ...] = ()
    # Each a sentence naming what is wrong or missing; empty when the version is released.
    problems: tuple[str, ...] = (f"no signatures ({APPROVALS_NEEDED} approvers needed)",)

    @property
    def released(self) -> bool:
        """Two distinct approvers signed the content as it is now, and nothing is in doubt."""
        return not self.problems


@dataclass(frozen=True)
class RuleSet:
    """One version of the rules, in force from `valid_from`."""

    version: str
    valid_from: date
    valid_to: date | None
    title: Texts
    sha256: str
    lead_municipality: str
    area_municipalities: frozenset[str]
    derived_facts: tuple[DerivedFact, ...]
    home_unit: str
    coach: tuple[CoachEntry, ...]
    cost_groups_by_unit: Mapping[str, CostGroup]
    cost_groups_by_kind: Mapping[UnitKind, CostGroup]
    tasks: Mapping[str, Texts]
    rules: tuple[Rule, ...]
    rules_by_id: Mapping[str, Rule] = field(repr=False)
    candidates: Mapping[str, tuple[Rule, ...]] = field(repr=False)
    # The last day in force: valid_to, or the day before the next version starts.
    ends: date | None = None
    # Who signed this content, and what stands between it and release (app/rules/releases.py).
    release: Release = Release()

    def matching(self, facts: Facts) -> list[Rule]:
        """The rules whose conditions the facts meet, read directly from the YAML.

        The reference reading: independent of the engine, so that the two can be compared.
        """
        return [rule for rule in self.candidates[str(facts["event_type"])] if rule.when.holds(facts)]

    def in_force_on(self, day: date) -> bool:
        """Whether the rule set decides events that happen on `day`."""
        return self.valid_from <= day and (self.ends is None or day <= self.ends)


@dataclass(frozen=True)
class OpenQuestion:
    """A question the catalogue leaves to the area's policy owner, about some rules or C (rules/open_questions.yaml)."""

    about: tuple[str, ...]
    text: Texts


@dataclass(frozen=True)
class Rules:
    """Everything in `rules/`: the registry and every rule-set version."""

    registry: Registry
    rulesets: tuple[RuleSet, ...]
    plan_sections: Mapping[str, PlanSection]
    open_questions: tuple[OpenQuestion, ...] = ()

    def in_force(self, day: date) -> RuleSet | None:
        """The rule set that decides events of `day`, if any."""
        for ruleset in self.rulesets:
            if ruleset.in_force_on(day):
                return ruleset
        return None

    def version(self, version: str) -> RuleSet | None:
        """A rule set by its version."""
        return next((r for r in self.rulesets if r.version == version), None)
