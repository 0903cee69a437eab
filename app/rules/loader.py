"""Loading the registry and every rule set from rules/, checking each against the registry and the plan."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app.rules.model import (
    SYMBOLS,
    AttributeSpec,
    AttributeType,
    CoachEntry,
    Condition,
    CostGroup,
    CustomershipRole,
    CustomershipSpec,
    CustomerType,
    DerivedFact,
    EventType,
    FactValue,
    Note,
    Registry,
    Rule,
    Rules,
    RulesError,
    RuleSet,
    TaskSpec,
    Term,
    Texts,
    Unit,
    UnitKind,
    UnitRef,
)
from app.rules.plan import load_sections
from app.rules.strict_yaml import MappingReader, read_yaml, text_pair

REGISTRY_FILES = ("units.yaml", "event_types.yaml", "municipalities.yaml")


RULESET_FILE = "ruleset.yaml"


LANGUAGE = re.compile(r"^[a-z]{2}$")


RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


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
    genitives: dict[str, str] = {}
    municipalities = _load_municipalities(rules_dir / "municipalities.yaml", genitives)
    units = _load_units(rules_dir / "units.yaml", municipalities)
    vocabulary, integration_status, raw_types, where = _load_vocabulary(rules_dir / "event_types.yaml")
    registry = Registry(units, {}, integration_status, municipalities, vocabulary)
    event_types = {
        code: _load_event_type(code, raw, f"{where}: event type {code}", registry) for code, raw in raw_types.items()
    }
    return Registry(units, event_types, integration_status, municipalities, vocabulary, genitives)


def _load_municipalities(path: Path, genitives: dict[str, str] | None = None) -> dict[str, str]:
    entries = read_yaml(path)
    if not isinstance(entries, list):
        raise RulesError(f"{path}: expected a list of municipalities")
    result: dict[str, str] = {}
    for entry in entries:
        item = MappingReader(entry, f"{path}: municipality {entry.get('code') if isinstance(entry, dict) else entry}")
        code = item.need("code")
        if not (isinstance(code, str) and re.fullmatch(r"\d{3}", code)):
            raise RulesError(f"{item.where}: code must be a quoted 3-digit string")
        if code in result:
            raise RulesError(f"{item.where}: duplicate code")
        result[code] = item.text("fi")
        item.text("sv")
        if "genitive" in entry and genitives is not None:
            genitives[code] = item.text("genitive")
        item.done()
    return result


def _load_units(path: Path, municipalities: Mapping[str, str]) -> dict[str, Unit]:
    reader = MappingReader(read_yaml(path), str(path))
    units: dict[str, Unit] = {}
    for raw in reader.need("units"):
        item = MappingReader(raw, f"{path}: unit {raw.get('id') if isinstance(raw, dict) else raw}")
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
    reader = MappingReader(read_yaml(path), str(path))
    vocabulary: dict[str, AttributeSpec] = {}
    for name, raw in reader.need("vocabulary").items():
        item = MappingReader(raw, f"{path}: vocabulary {name}")
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
            latest_reason=text_pair(reason, f"{item.where} latest_reason") if reason else None,
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
    item = MappingReader(raw, where)
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
        lang = MappingReader(language, f"{where}: customer_language")
        language_when = parse_condition(lang.need("required_when"), lang.where, registry, ())
        lang.done()
    item.done()
    return EventType(code, name, customer_types, attributes, language_when, status)


def _load_attribute(name: str, raw: Any, where: str, registry: Registry) -> AttributeSpec:
    base = registry.vocabulary.get(name)
    if base is None:
        raise RulesError(f"{where}: not in the vocabulary")
    item = MappingReader(raw, where)
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


def _unit_ref(value: Any, where: str, registry: Registry) -> UnitRef:
    if value in SYMBOLS or value in registry.units:
        return UnitRef(value)
    raise RulesError(f"{where}: unknown unit {value!r}")


def _notes(raw: Any, where: str) -> tuple[Note, ...]:
    notes = []
    for i, entry in enumerate(raw or ()):
        item = MappingReader(entry, f"{where} notes[{i}]")
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
    item = MappingReader(raw, f"{where} customership")
    unit = _unit_ref(item.need("unit"), item.where, registry)
    try:
        role = CustomershipRole(item.need("role"))
    except ValueError:
        raise RulesError(f"{item.where}: unknown role {raw.get('role')!r}") from None
    item.done()
    return CustomershipSpec(unit, role)


def _cost_group(raw: Any, where: str) -> CostGroup | None:
    if raw is None:
        return None
    try:
        return CostGroup(raw)
    except ValueError:
        groups = ", ".join(group.value for group in CostGroup)
        raise RulesError(f"{where}: cost_group {raw!r} is not one of {groups}") from None


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
    head = MappingReader(read_yaml(folder / RULESET_FILE), where)
    version = head.text("version")
    if version != folder.name:
        raise RulesError(f"{where}: version {version!r} must be the folder's name {folder.name!r}")
    valid_from = head.need("valid_from")
    valid_to = head.get("valid_to")
    if not isinstance(valid_from, date) or (valid_to is not None and not isinstance(valid_to, date)):
        raise RulesError(f"{where}: valid_from and valid_to are dates (YYYY-MM-DD)")
    if valid_to is not None and valid_to < valid_from:
        raise RulesError(f"{where}: valid_to {valid_to} is before valid_from {valid_from}")
    title = text_pair(head.need("title"), f"{where} title")

    area = MappingReader(head.need("area"), f"{where} area")
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
        item = MappingReader(raw, f"{where} derived_facts {name}")
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
        item = MappingReader(raw, f"{where} coach[{i}]")
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

    groups = MappingReader(head.need("cost_groups"), f"{where} cost_groups")
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

    tasks = {name: text_pair(raw, f"{where} tasks {name}") for name, raw in head.need("tasks").items()}
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
    top = MappingReader(read_yaml(path), str(path))
    file_when = parse_condition(top.need("when"), f"{path} when", registry, derived)
    file_customership = top.get("customership")
    file_notes = _notes(top.get("notes"), str(path))
    rules = []
    for raw in top.need("rules"):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        where = f"{path}: rule {rule_id}"
        item = MappingReader(raw, where)
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise RulesError(f"{where}: id must be lower-case words joined by dots")
        item.used.add("id")
        when = file_when.merged(parse_condition(item.need("when"), f"{where} when", registry, derived))
        customership_raw = item.get("customership", file_customership)
        if customership_raw is None and file_customership is None and "customership" not in raw:
            raise RulesError(f"{where}: missing key 'customership'")
        task_specs = []
        for i, task_raw in enumerate(item.get("tasks") or ()):
            task = MappingReader(task_raw, f"{where} tasks[{i}]")
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
                explanation=text_pair(item.need("explanation"), f"{where} explanation"),
                cost_group=_cost_group(item.get("cost_group"), where),
            )
        )
        item.done()
    top.done()
    return rules


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
