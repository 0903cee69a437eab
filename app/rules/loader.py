"""Loading every rule set from rules/: each checked against the registry and the plan's sections."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app.rules.model import (
    SYMBOLS,
    CoachEntry,
    CostGroup,
    CustomershipRole,
    CustomershipSpec,
    DerivedFact,
    Note,
    OpenQuestion,
    Registry,
    Rule,
    Rules,
    RulesError,
    RuleSet,
    TaskSpec,
    Texts,
    UnitKind,
    UnitRef,
)
from app.rules.plan import load_sections
from app.rules.registry import REGISTRY_FILES, load_registry, parse_condition
from app.rules.releases import UnreleasedRules, load_approvers, verify_release
from app.rules.strict_yaml import MappingReader, read_yaml, text_pair

RULESET_FILE = "ruleset.yaml"
OPEN_QUESTIONS_FILE = "open_questions.yaml"
RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


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
    lead, members, home_unit = _area(head, registry)
    derived = _derived_facts(head, registry, sections)
    derived_names = [d.name for d in derived]
    coach = _coach(head, registry, derived_names)
    by_unit, by_kind = _cost_groups(head, registry)
    tasks = {name: text_pair(raw, f"{where} tasks {name}") for name, raw in head.need("tasks").items()}
    head.done()
    rules, sha256 = _rule_files(folder, registry, sections, derived_names, tasks, shared_digest)
    return RuleSet(
        version=version,
        valid_from=valid_from,
        valid_to=valid_to,
        title=title,
        sha256=sha256,
        lead_municipality=lead,
        area_municipalities=members,
        derived_facts=tuple(derived),
        home_unit=home_unit,
        coach=tuple(coach),
        cost_groups_by_unit=by_unit,
        cost_groups_by_kind=by_kind,
        tasks=tasks,
        rules=tuple(rules),
        rules_by_id={rule.id: rule for rule in rules},
        ends=valid_to,
        candidates={
            code: tuple(rule for rule in rules if rule.when.admits_event_type(code)) for code in registry.event_types
        },
    )


def _area(head: MappingReader, registry: Registry) -> tuple[str, frozenset[str], str]:
    """The area's lead, its members, and the pattern of a member's local unit (H)."""
    area = MappingReader(head.need("area"), f"{head.where} area")
    lead = area.need("lead")
    members = frozenset(area.need("municipalities"))
    area.done()
    if lead not in members or not members <= set(registry.municipalities):
        raise RulesError(f"{head.where}: area: the lead and members must be municipality codes, the lead a member")
    home_unit = head.text("home_unit")
    for code in members:
        if home_unit.format(home_municipality=code) not in registry.units:
            raise RulesError(f"{head.where}: no unit {home_unit.format(home_municipality=code)!r} for member {code}")
    return lead, members, home_unit


def _derived_facts(head: MappingReader, registry: Registry, sections: set[str]) -> list[DerivedFact]:
    """Facts the rule set derives from an event's own, each with the plan's sections it rests on."""
    derived: list[DerivedFact] = []
    for name, raw in (head.get("derived_facts") or {}).items():
        item = MappingReader(raw, f"{head.where} derived_facts {name}")
        derived.append(
            DerivedFact(
                name=name,
                when=parse_condition(item.need("when"), item.where, registry, ()),
                basis=_basis(item.need("basis"), item.where, sections),
            )
        )
        item.done()
    return derived


def _coach(head: MappingReader, registry: Registry, derived_names: list[str]) -> list[CoachEntry]:
    """Who C (the customer's coach) is, by condition; the last entry holds for everyone else."""
    coach: list[CoachEntry] = []
    for i, raw in enumerate(head.need("coach")):
        item = MappingReader(raw, f"{head.where} coach[{i}]")
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
        raise RulesError(f"{head.where}: coach: the last entry has no condition and C cannot stand for itself")
    return coach


def _cost_groups(head: MappingReader, registry: Registry) -> tuple[dict[str, CostGroup], dict[UnitKind, CostGroup]]:
    """The cost group of a provider: by its unit where named, else by its kind (CATALOGUE §6)."""
    groups = MappingReader(head.need("cost_groups"), f"{head.where} cost_groups")
    try:
        by_unit = {unit: CostGroup(g) for unit, g in groups.need("by_unit").items()}
        by_kind = {UnitKind(kind): CostGroup(g) for kind, g in groups.need("by_kind").items()}
    except ValueError as error:
        raise RulesError(f"{groups.where}: {error}") from None
    groups.done()
    if missing := set(UnitKind) - set(by_kind):
        raise RulesError(f"{head.where}: cost_groups: no group for kind(s) {sorted(missing)}")
    if unknown := set(by_unit) - set(registry.units):
        raise RulesError(f"{head.where}: cost_groups: unknown unit(s) {sorted(unknown)}")
    return by_unit, by_kind


def _rule_files(
    folder: Path,
    registry: Registry,
    sections: set[str],
    derived_names: list[str],
    tasks: Mapping[str, Texts],
    shared_digest: bytes,
) -> tuple[list[Rule], str]:
    """Every rule of the folder's files, ids unique, and the sha256 of the rule set's content."""
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
    return rules, digest.hexdigest()


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


def load_rules(rules_dir: Path, *, require_signed: bool = False) -> Rules:
    """Load and check everything in `rules_dir`; raise RulesError naming what is wrong.

    Each version's release (who signed it) is checked as it loads. With `require_signed`, a
    version that is not released refuses the whole load (UnreleasedRules): nothing is served
    on any doubt, neither that version nor the others.
    """
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
    approvers = load_approvers(rules_dir)
    rulesets = [
        replace(r, release=verify_release(rules_dir / r.version, r.version, r.sha256, approvers)) for r in ended
    ]
    if require_signed:
        for ruleset in rulesets:
            if not ruleset.release.released:
                problems = "; ".join(ruleset.release.problems)
                raise UnreleasedRules(f"rule set {ruleset.version} is not released: {problems}")
    return Rules(registry, tuple(rulesets), plan, _open_questions(rules_dir / OPEN_QUESTIONS_FILE, rulesets))


def _open_questions(path: Path, rulesets: Sequence[RuleSet]) -> tuple[OpenQuestion, ...]:
    """The policy owner's open questions, each about C or rules some version has."""
    if not path.exists():
        return ()
    entries = read_yaml(path)
    if not isinstance(entries, list):
        raise RulesError(f"{path}: expected a list of questions")
    known = {"C"} | {rule.id for ruleset in rulesets for rule in ruleset.rules}
    questions = []
    for i, raw in enumerate(entries):
        item = MappingReader(raw, f"{path}: question {i + 1}")
        about = item.need("about")
        if not isinstance(about, list) or not about or not set(about) <= known:
            raise RulesError(f"{item.where}: about must list C or rule ids of some version")
        questions.append(
            OpenQuestion(tuple(about), Texts(" ".join(item.text("fi").split()), " ".join(item.text("en").split())))
        )
        item.done()
    return tuple(questions)
