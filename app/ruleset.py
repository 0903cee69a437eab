"""Load and check `rules/`: the registries and the rule sets, strictly.

Every problem names the file, and the rule where there is one. Nothing here knows the
rules engine: `engine.py` compiles what this module loads.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from app.plan import PlanSection, load_sections

# A fact posted to the engine: every value is one of these, never a number, so the
# engine's loose comparisons ('564' == 564) cannot match across types.
FactValue: TypeAlias = str | bool
Facts: TypeAlias = Mapping[str, FactValue]

REGISTRY_FILES = ("units.yaml", "event_types.yaml", "municipalities.yaml")
RULESET_FILE = "ruleset.yaml"
SYMBOLS = ("H", "C")
LANGUAGE = re.compile(r"^[a-z]{2}$")
RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


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


# --- strict YAML --------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return dict(loader.construct_mapping(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, refusing duplicate keys; errors name the file and the rule."""
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except OSError as error:
        raise RulesError(f"{path}: {error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        rule = _rule_at(path, mark.line) if mark is not None else None
        where = f"{path}: rule {rule}" if rule else str(path)
        problem = getattr(error, "problem", None) or str(error)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise RulesError(f"{where}: {problem}{line}") from error


def _rule_at(path: Path, line: int) -> str | None:
    """The id of the rule whose text holds `line`, for errors the parser finds."""
    lines = path.read_text(encoding="utf-8").splitlines()[: line + 1]
    for text in reversed(lines):
        if match := re.match(r"^\s*-\s*id:\s*(\S+)", text):
            return match.group(1)
    return None


class _Reader:
    """Reads one mapping, knowing where it is, and refuses keys it was not asked for."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: expected a mapping, got {type(raw).__name__}")
        self.raw = raw
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.raw.get(key, default)

    def need(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.raw:
            raise RulesError(f"{self.where}: missing key {key!r}")
        return self.raw[key]

    def text(self, key: str) -> str:
        value = self.need(key)
        if not isinstance(value, str) or not value.strip():
            raise RulesError(f"{self.where}: {key!r} must be a non-empty text")
        return value

    def done(self) -> None:
        unknown = sorted(set(map(str, self.raw)) - self.used)
        if unknown:
            raise RulesError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


def _text_pair(raw: Any, where: str) -> Texts:
    reader = _Reader(raw, where)
    texts = Texts(fi=" ".join(reader.text("fi").split()), en=" ".join(reader.text("en").split()))
    reader.done()
    return texts


# --- registries ---------------------------------------------------------------------


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


# --- conditions ---------------------------------------------------------------------


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


def parse_condition(raw: Any, where: str, registry: Registry, extra_facts: Iterable[str]) -> Condition:
    """Read a `when:` mapping; every fact and value must be one the registry knows."""
    if not isinstance(raw, dict) or not raw:
        raise RulesError(f"{where}: a condition must be a non-empty mapping")
    known_extra = set(extra_facts)
    terms: list[Term] = []
    any_of: tuple[Condition, ...] = ()
    for fact, value in raw.items():
        if fact == "any":
            if not isinstance(value, list) or len(value) < 2:
                raise RulesError(f"{where}: 'any' takes a list of at least two conditions")
            any_of = tuple(
                parse_condition(branch, f"{where} any[{i}]", registry, known_extra) for i, branch in enumerate(value)
            )
            continue
        negated = isinstance(value, dict)
        if negated:
            if set(value) != {"not"}:
                raise RulesError(f"{where}: {fact}: a mapping here must be {{not: [...]}}")
            value = value["not"]
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values:
            raise RulesError(f"{where}: {fact}: an empty list matches nothing")
        _check_fact_values(fact, values, where, registry, known_extra)
        terms.append(Term(fact=str(fact), values=values, negated=negated))
    return Condition(tuple(terms), any_of)


def _check_fact_values(fact: str, values: Sequence[Any], where: str, registry: Registry, extra: set[str]) -> None:
    if fact in extra:
        domain: tuple[FactValue, ...] | None = (True, False)
    else:
        try:
            domain = registry.fact_domain(fact)
        except KeyError:
            raise RulesError(f"{where}: unknown fact {fact!r}") from None
    for value in values:
        if isinstance(value, bool) is not (domain == (True, False)):
            raise RulesError(f"{where}: {fact}: {value!r} has the wrong type")
        if fact == "language" and not (isinstance(value, str) and LANGUAGE.match(value)):
            raise RulesError(f"{where}: language: {value!r} is not an ISO 639-1 code")
        if domain is not None and value not in domain:
            raise RulesError(f"{where}: {fact}: {value!r} is not one of its values")


def load_registry(rules_dir: Path) -> Registry:
    """Read units, event types and municipalities."""
    municipalities = _load_municipalities(rules_dir / "municipalities.yaml")
    units = _load_units(rules_dir / "units.yaml", municipalities)
    vocabulary, integration_status, raw_types, where = _load_vocabulary(rules_dir / "event_types.yaml")
    registry = Registry(units, {}, integration_status, municipalities, vocabulary)
    event_types = {
        code: _load_event_type(code, raw, f"{where}: event type {code}", registry) for code, raw in raw_types.items()
    }
    return Registry(units, event_types, integration_status, municipalities, vocabulary)


def _load_municipalities(path: Path) -> dict[str, str]:
    entries = read_yaml(path)
    if not isinstance(entries, list):
        raise RulesError(f"{path}: expected a list of municipalities")
    result: dict[str, str] = {}
    for entry in entries:
        item = _Reader(entry, f"{path}: municipality {entry.get('code') if isinstance(entry, dict) else entry}")
        code = item.need("code")
        if not (isinstance(code, str) and re.fullmatch(r"\d{3}", code)):
            raise RulesError(f"{item.where}: code must be a quoted 3-digit string")
        if code in result:
            raise RulesError(f"{item.where}: duplicate code")
        result[code] = item.text("fi")
        item.text("sv")
        item.done()
    return result


def _load_units(path: Path, municipalities: Mapping[str, str]) -> dict[str, Unit]:
    reader = _Reader(read_yaml(path), str(path))
    units: dict[str, Unit] = {}
    for raw in reader.need("units"):
        item = _Reader(raw, f"{path}: unit {raw.get('id') if isinstance(raw, dict) else raw}")
        unit_id = item.text("id")
        if unit_id in units:
            raise RulesError(f"{item.where}: duplicate unit id")
        try:
            kind = UnitKind(item.need("kind"))
        except ValueError:
            raise RulesError(f"{item.where}: unknown kind {raw.get('kind')!r}") from None
        municipality = item.need("municipality")
        if municipality is not None and municipality not in municipalities:
            raise RulesError(f"{item.where}: {municipality!r} is not a municipality code")
        units[unit_id] = Unit(unit_id, kind, municipality, Texts(item.text("fi"), item.text("en")))
        item.done()
    reader.done()
    return units


def _load_vocabulary(
    path: Path,
) -> tuple[dict[str, AttributeSpec], tuple[str, ...], dict[str, Any], str]:
    reader = _Reader(read_yaml(path), str(path))
    vocabulary: dict[str, AttributeSpec] = {}
    for name, raw in reader.need("vocabulary").items():
        item = _Reader(raw, f"{path}: vocabulary {name}")
        try:
            kind = AttributeType(item.need("type"))
        except ValueError:
            raise RulesError(f"{item.where}: unknown type {raw.get('type')!r}") from None
        values = tuple(item.get("values") or ())
        if (kind is AttributeType.choice) != bool(values):
            raise RulesError(f"{item.where}: a choice and only a choice lists values")
        latest = item.get("latest")
        reason = item.get("latest_reason")
        if (latest is None) != (reason is None) or (latest is not None and not isinstance(latest, date)):
            raise RulesError(f"{item.where}: 'latest' is a date and comes with 'latest_reason'")
        vocabulary[name] = AttributeSpec(
            name=name,
            type=kind,
            values=values,
            latest=latest,
            latest_reason=_text_pair(reason, f"{item.where} latest_reason") if reason else None,
        )
        item.done()
    integration_status = tuple(reader.need("integration_status"))
    for name in integration_status:
        if vocabulary.get(name, None) is None or vocabulary[name].type is not AttributeType.boolean:
            raise RulesError(f"{path}: integration_status: {name!r} is not a boolean of the vocabulary")
    raw_types = reader.need("event_types")
    reader.done()
    return vocabulary, integration_status, raw_types, str(path)


def _load_event_type(code: str, raw: Any, where: str, registry: Registry) -> EventType:
    item = _Reader(raw, where)
    name = Texts(item.text("fi"), item.text("en"))
    try:
        customer_types = tuple(CustomerType(t) for t in item.need("customer_types"))
    except ValueError as error:
        raise RulesError(f"{where}: customer_types: {error}") from None
    attributes: dict[str, AttributeSpec] = {}
    for attr_name, attr_raw in (item.get("attributes") or {}).items():
        attributes[attr_name] = _load_attribute(attr_name, attr_raw or {}, f"{where}: {attr_name}", registry)
    status = item.get("integration_status")
    if status not in (None, "required", "optional"):
        raise RulesError(f"{where}: integration_status must be required or optional")
    if status and CustomerType.jobseeker not in customer_types:
        raise RulesError(f"{where}: only a jobseeker carries an integration status")
    for flag in registry.integration_status if status else ():
        if flag in attributes:
            raise RulesError(f"{where}: {flag} is part of integration_status; do not list it")
        attributes[flag] = AttributeSpec(
            name=flag,
            type=AttributeType.boolean,
            required=status == "required",
            absent_means=False if status == "optional" else None,
        )
    language = item.get("customer_language")
    language_when = None
    if language is not None:
        lang = _Reader(language, f"{where}: customer_language")
        language_when = parse_condition(lang.need("required_when"), lang.where, registry, ())
        lang.done()
    item.done()
    return EventType(code, name, customer_types, attributes, language_when, status)


def _load_attribute(name: str, raw: Any, where: str, registry: Registry) -> AttributeSpec:
    base = registry.vocabulary.get(name)
    if base is None:
        raise RulesError(f"{where}: not in the vocabulary")
    item = _Reader(raw, where)
    values = tuple(item.get("values") or base.values)
    if not set(values) <= set(base.values):
        raise RulesError(f"{where}: values must be some of {list(base.values)}")
    required = bool(item.get("required", False))
    when_raw = item.get("required_when")
    required_when = parse_condition(when_raw, f"{where} required_when", registry, ()) if when_raw else None
    absent_means = item.get("absent_means")
    if absent_means is not None and registry.fact_domain(name) != (True, False):
        raise RulesError(f"{where}: absent_means is only for booleans here")
    echo = bool(item.get("echo", False))
    item.done()
    if sum([required, required_when is not None, absent_means is not None]) > 1:
        raise RulesError(f"{where}: choose one of required, required_when, absent_means")
    return AttributeSpec(
        name=name,
        type=base.type,
        values=values,
        required=required,
        required_when=required_when,
        absent_means=absent_means,
        echo=echo,
        latest=base.latest,
        latest_reason=base.latest_reason,
    )


# --- rule sets ----------------------------------------------------------------------


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

    def matching(self, facts: Facts) -> list[Rule]:
        """The rules whose conditions the facts meet, read directly from the YAML.

        The reference reading: independent of the engine, so that the two can be compared.
        """
        return [rule for rule in self.candidates[str(facts["event_type"])] if rule.when.holds(facts)]

    def in_force_on(self, day: date) -> bool:
        """Whether the rule set decides events that happen on `day`."""
        return self.valid_from <= day and (self.ends is None or day <= self.ends)


def _unit_ref(value: Any, where: str, registry: Registry) -> UnitRef:
    if value in SYMBOLS or value in registry.units:
        return UnitRef(value)
    raise RulesError(f"{where}: unknown unit {value!r}")


def _notes(raw: Any, where: str) -> tuple[Note, ...]:
    notes = []
    for i, entry in enumerate(raw or ()):
        item = _Reader(entry, f"{where} notes[{i}]")
        kind = item.text("kind")
        if kind not in ("interpretation", "info"):
            raise RulesError(f"{item.where}: kind must be interpretation or info")
        notes.append(Note(kind, Texts(" ".join(item.text("fi").split()), " ".join(item.text("en").split()))))
        item.done()
    return tuple(notes)


def _customership(raw: Any, where: str, registry: Registry) -> CustomershipSpec | None:
    if raw is None:
        return None
    if raw == "C":
        return CustomershipSpec(UnitRef("C"), None)
    item = _Reader(raw, f"{where} customership")
    unit = _unit_ref(item.need("unit"), item.where, registry)
    try:
        role = CustomershipRole(item.need("role"))
    except ValueError:
        raise RulesError(f"{item.where}: unknown role {raw.get('role')!r}") from None
    item.done()
    return CustomershipSpec(unit, role)


def _basis(raw: Any, where: str, sections: set[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise RulesError(f"{where}: basis must list at least one plan section")
    for section in raw:
        if section not in sections:
            raise RulesError(f"{where}: basis {section!r} is not a section of the plan")
    return tuple(raw)


def load_ruleset(folder: Path, registry: Registry, sections: set[str], shared_digest: bytes) -> RuleSet:
    """Read one rule-set folder: `ruleset.yaml` and its rule files."""
    where = str(folder / RULESET_FILE)
    head = _Reader(read_yaml(folder / RULESET_FILE), where)
    version = head.text("version")
    if version != folder.name:
        raise RulesError(f"{where}: version {version!r} must be the folder's name {folder.name!r}")
    valid_from = head.need("valid_from")
    valid_to = head.get("valid_to")
    if not isinstance(valid_from, date) or (valid_to is not None and not isinstance(valid_to, date)):
        raise RulesError(f"{where}: valid_from and valid_to are dates (YYYY-MM-DD)")
    if valid_to is not None and valid_to < valid_from:
        raise RulesError(f"{where}: valid_to {valid_to} is before valid_from {valid_from}")
    title = _text_pair(head.need("title"), f"{where} title")

    area = _Reader(head.need("area"), f"{where} area")
    lead = area.need("lead")
    members = frozenset(area.need("municipalities"))
    area.done()
    if lead not in members or not members <= set(registry.municipalities):
        raise RulesError(f"{where}: area: the lead and members must be municipality codes, the lead a member")
    home_unit = head.text("home_unit")
    for code in members:
        if home_unit.format(home_municipality=code) not in registry.units:
            raise RulesError(f"{where}: no unit {home_unit.format(home_municipality=code)!r} for member {code}")

    derived: list[DerivedFact] = []
    for name, raw in (head.get("derived_facts") or {}).items():
        item = _Reader(raw, f"{where} derived_facts {name}")
        derived.append(
            DerivedFact(
                name=name,
                when=parse_condition(item.need("when"), item.where, registry, ()),
                basis=_basis(item.need("basis"), item.where, sections),
            )
        )
        item.done()
    derived_names = [d.name for d in derived]

    coach: list[CoachEntry] = []
    for i, raw in enumerate(head.need("coach")):
        item = _Reader(raw, f"{where} coach[{i}]")
        when_raw = item.get("when")
        coach.append(
            CoachEntry(
                when=parse_condition(when_raw, item.where, registry, derived_names) if when_raw else None,
                unit=_unit_ref(item.need("unit"), item.where, registry),
                role=CustomershipRole(item.need("role")),
                notes=_notes(item.get("notes"), item.where),
            )
        )
        item.done()
    if not coach or coach[-1].when is not None or coach[-1].unit.ref == "C":
        raise RulesError(f"{where}: coach: the last entry has no condition and C cannot stand for itself")

    groups = _Reader(head.need("cost_groups"), f"{where} cost_groups")
    try:
        by_unit = {unit: CostGroup(g) for unit, g in groups.need("by_unit").items()}
        by_kind = {UnitKind(kind): CostGroup(g) for kind, g in groups.need("by_kind").items()}
    except ValueError as error:
        raise RulesError(f"{groups.where}: {error}") from None
    groups.done()
    if missing := set(UnitKind) - set(by_kind):
        raise RulesError(f"{where}: cost_groups: no group for kind(s) {sorted(missing)}")
    if unknown := set(by_unit) - set(registry.units):
        raise RulesError(f"{where}: cost_groups: unknown unit(s) {sorted(unknown)}")

    tasks = {name: _text_pair(raw, f"{where} tasks {name}") for name, raw in head.need("tasks").items()}
    head.done()

    rules: list[Rule] = []
    digest = hashlib.sha256(shared_digest)
    digest.update(b"ruleset.yaml\0" + (folder / RULESET_FILE).read_bytes())
    for path in sorted(folder.glob("*.yaml")):
        if path.name == RULESET_FILE:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        rules.extend(_load_rule_file(path, registry, sections, derived_names, tasks))
    by_id: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in by_id:
            raise RulesError(f"{rule.source}: rule {rule.id}: the id is used in {by_id[rule.id].source} too")
        by_id[rule.id] = rule
    if not rules:
        raise RulesError(f"{folder}: no rules")
    return RuleSet(
        version=version,
        valid_from=valid_from,
        valid_to=valid_to,
        title=title,
        sha256=digest.hexdigest(),
        lead_municipality=lead,
        area_municipalities=members,
        derived_facts=tuple(derived),
        home_unit=home_unit,
        coach=tuple(coach),
        cost_groups_by_unit=by_unit,
        cost_groups_by_kind=by_kind,
        tasks=tasks,
        rules=tuple(rules),
        rules_by_id=by_id,
        ends=valid_to,
        candidates={
            code: tuple(rule for rule in rules if rule.when.admits_event_type(code)) for code in registry.event_types
        },
    )


def _load_rule_file(
    path: Path, registry: Registry, sections: set[str], derived: Sequence[str], tasks: Mapping[str, Texts]
) -> list[Rule]:
    top = _Reader(read_yaml(path), str(path))
    file_when = parse_condition(top.need("when"), f"{path} when", registry, derived)
    file_customership = top.get("customership")
    file_notes = _notes(top.get("notes"), str(path))
    rules = []
    for raw in top.need("rules"):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        where = f"{path}: rule {rule_id}"
        item = _Reader(raw, where)
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise RulesError(f"{where}: id must be lower-case words joined by dots")
        item.used.add("id")
        when = file_when.merged(parse_condition(item.need("when"), f"{where} when", registry, derived))
        customership_raw = item.get("customership", file_customership)
        if customership_raw is None and file_customership is None and "customership" not in raw:
            raise RulesError(f"{where}: missing key 'customership'")
        task_specs = []
        for i, task_raw in enumerate(item.get("tasks") or ()):
            task = _Reader(task_raw, f"{where} tasks[{i}]")
            name = task.text("task")
            if name not in tasks:
                raise RulesError(f"{task.where}: task {name!r} is not declared in ruleset.yaml")
            task_specs.append(TaskSpec(name, _unit_ref(task.need("unit"), task.where, registry)))
            task.done()
        rules.append(
            Rule(
                id=rule_id,
                source=str(path),
                when=when,
                handler=_unit_ref(item.need("handler"), where, registry),
                provider=_unit_ref(item.need("provider"), where, registry),
                customership=_customership(customership_raw, where, registry),
                tasks=tuple(task_specs),
                basis=_basis(item.need("basis"), where, sections),
                notes=file_notes + _notes(item.get("notes"), where),
                explanation=_text_pair(item.need("explanation"), f"{where} explanation"),
            )
        )
        item.done()
    top.done()
    return rules


@dataclass(frozen=True)
class Rules:
    """Everything in `rules/`: the registry and every rule-set version."""

    registry: Registry
    rulesets: tuple[RuleSet, ...]
    plan_sections: Mapping[str, PlanSection]

    def in_force(self, day: date) -> RuleSet | None:
        """The rule set that decides events of `day`, if any."""
        for ruleset in self.rulesets:
            if ruleset.in_force_on(day):
                return ruleset
        return None

    def version(self, version: str) -> RuleSet | None:
        """A rule set by its version."""
        return next((r for r in self.rulesets if r.version == version), None)


def load_rules(rules_dir: Path) -> Rules:
    """Load and check everything in `rules_dir`; raise RulesError naming what is wrong."""
    registry = load_registry(rules_dir)
    plan = load_sections(rules_dir / "plan_sections.yaml")
    sections = set(plan)
    shared = hashlib.sha256()
    for name in REGISTRY_FILES:
        shared.update(name.encode() + b"\0" + (rules_dir / name).read_bytes())
    folders = sorted(p.parent for p in rules_dir.glob(f"*/{RULESET_FILE}"))
    if not folders:
        raise RulesError(f"{rules_dir}: no rule set (a folder with {RULESET_FILE})")
    rulesets = sorted(
        (load_ruleset(folder, registry, sections, shared.digest()) for folder in folders),
        key=lambda r: r.valid_from,
    )
    # A version is in force until the next one begins, unless it names its own end;
    # an end on or after the next version's start is an overlap, refused.
    ended = []
    for earlier, later in zip(rulesets, [*rulesets[1:], None], strict=True):
        if later is None:
            ended.append(earlier)
            continue
        if earlier.valid_to is not None and earlier.valid_to >= later.valid_from:
            raise RulesError(
                f"{rules_dir}: rule sets {earlier.version} and {later.version} overlap: "
                f"{earlier.version} is valid to {earlier.valid_to}, {later.version} from {later.valid_from}"
            )
        if earlier.valid_from == later.valid_from:
            raise RulesError(f"{rules_dir}: rule sets {earlier.version} and {later.version} start on the same day")
        ended.append(replace(earlier, ends=earlier.valid_to or later.valid_from - timedelta(days=1)))
    rulesets = ended
    return Rules(registry, tuple(rulesets), plan)
