"""The rule book: a rule set written out in plain Finnish or English, from the rules' own data.

Nothing here is written per rule: each sentence is made from a rule's conditions and outcome,
with H and C spelled out, in the words of the caller's language (`Words`: the UI's message
catalogues, which the page and `reitti rules show` both use). So the book cannot say something
the rules do not, and a new rule is in the book the moment it loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.rules.model import (
    Condition,
    CustomershipSpec,
    Note,
    Rule,
    Rules,
    RuleSet,
    Term,
    Texts,
    UnitRef,
)
from app.rules.plan import PlanSection

# Facts whose values the book names by their own words rather than as an attribute's value.
_OWN_WORDS = ("event_type", "area", "customer_type")


class Words(Protocol):
    """A language's words: messages by key, and the names of facts, values and units."""

    @property
    def language(self) -> str: ...

    def __call__(self, key: str, **values: Any) -> str: ...

    def has(self, key: str) -> bool: ...

    def fact(self, fact: str) -> str: ...

    def value(self, fact: str, value: Any) -> str: ...

    def unit(self, unit_id: str | None) -> str: ...

    def event_type(self, code: str) -> str: ...

    def municipality(self, code: str) -> str: ...


@dataclass(frozen=True)
class Sentence:
    """One line of the book; `branches` are alternatives, one of which must hold."""

    text: str
    branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleProse:
    """A rule written out: when it applies, what it decides, in one language."""

    rule: Rule
    conditions: tuple[Sentence, ...]
    outcome: tuple[tuple[str, str], ...]  # (what, who or which)
    explanation: str
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Chapter:
    """A section of the plan: its own text, and the rules that cite it."""

    section: PlanSection
    rules: tuple[RuleProse, ...]


@dataclass(frozen=True)
class Book:
    """A version's rule book: its definitions and its chapters in plan order."""

    ruleset: RuleSet
    definitions: tuple[tuple[str, tuple[Sentence, ...]], ...]  # (heading, lines)
    chapters: tuple[Chapter, ...]
    rules: Mapping[str, RuleProse] = field(repr=False)


def _quoted(words: Words, text: str) -> str:
    return words("conditions.quoted", text=text)


def _values(words: Words, term: Term) -> str:
    if term.fact == "event_type":
        named = (words.event_type(str(v)) for v in term.values)
    elif term.fact == "customer_type":
        named = (words(f"customer_types.{v}") for v in term.values)
    else:
        named = (words.value(term.fact, v) for v in term.values)
    return words("conditions.or").join(_quoted(words, name) for name in named)


def term_sentence(words: Words, term: Term, derived: Sequence[str] = ()) -> str:
    """One test of a fact as a sentence."""
    if term.fact == "area":
        inside = (term.values == ("inside",)) != term.negated
        return words("book.when.area_inside" if inside else "book.when.area_outside")
    if term.fact in derived and len(term.values) == 1:
        holds = bool(term.values[0]) != term.negated
        return words(f"book.derived.{term.fact}.{'yes' if holds else 'no'}")
    if term.fact in _OWN_WORDS:
        return words(f"book.when.{term.fact}{'_not' if term.negated else ''}", values=_values(words, term))
    key = "conditions.is_not" if term.negated else "conditions.is"
    return words(key, fact=words.fact(term.fact), values=_values(words, term))


def condition_sentences(words: Words, condition: Condition, derived: Sequence[str] = ()) -> tuple[Sentence, ...]:
    """A condition as sentences that must all hold; its `any` as one sentence with the alternatives."""
    lines = [Sentence(term_sentence(words, term, derived)) for term in condition.terms]
    if condition.any_of:
        branches = tuple(
            words("conditions.and").join(s.text for s in condition_sentences(words, branch, derived))
            for branch in condition.any_of
        )
        lines.append(Sentence(words("book.when.one_of"), branches))
    return tuple(lines)


def unit_words(words: Words, ref: UnitRef) -> str:
    """A unit, or H or C spelled out."""
    if ref.ref in ("H", "C"):
        return words(f"book.symbol.{ref.ref}")
    return words.unit(ref.ref)


def _mid_sentence(label: str) -> str:
    """A label as it reads inside a sentence: "Central experts" -> "central experts"."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def _role(words: Words, role: str) -> str:
    return _mid_sentence(words(f"customership_roles.{role}"))


def _customership(words: Words, spec: CustomershipSpec | None) -> str:
    if spec is None:
        return words("book.outcome.nobody")
    if spec.role is None:
        return words("book.outcome.with_coach", unit=unit_words(words, spec.unit))
    return words("book.outcome.with_role", unit=unit_words(words, spec.unit), role=_role(words, spec.role.value))


def _cost_group(words: Words, ruleset: RuleSet, rule: Rule, registry_kind: Mapping[str, Any]) -> str:
    if rule.cost_group is not None:
        return words(f"cost_groups.{rule.cost_group.value}")
    # H is always a local unit; C is whichever unit the coach entries name, so its group may vary.
    a_home_unit = ruleset.home_unit.format(home_municipality=ruleset.lead_municipality)
    provider = rule.provider.ref
    if provider == "H":
        units = [a_home_unit]
    elif provider == "C":
        units = [a_home_unit if entry.unit.ref == "H" else entry.unit.ref for entry in ruleset.coach]
    else:
        units = [provider]
    by_unit, by_kind = ruleset.cost_groups_by_unit, ruleset.cost_groups_by_kind
    groups = dict.fromkeys(by_unit.get(unit) or by_kind[registry_kind[unit]] for unit in units)
    named = [words(f"cost_groups.{group.value}") for group in groups]
    if len(named) == 1:
        return named[0]
    return words("book.outcome.cost_by_coach", groups=words("conditions.or").join(named))


def rule_prose(words: Words, rules: Rules, ruleset: RuleSet, rule: Rule) -> RuleProse:
    """One rule written out in the words' language."""
    derived = [d.name for d in ruleset.derived_facts]
    kinds = {unit.id: unit.kind for unit in rules.registry.units.values()}
    outcome = [
        (words("book.outcome.handler"), unit_words(words, rule.handler)),
        (words("book.outcome.provider"), unit_words(words, rule.provider)),
        (words("book.outcome.customership"), _customership(words, rule.customership)),
    ]
    outcome += [(ruleset_task(words, ruleset, task.task), unit_words(words, task.unit)) for task in rule.tasks]
    outcome.append((words("book.outcome.cost_group"), _cost_group(words, ruleset, rule, kinds)))
    outcome.append((words("book.outcome.basis"), ", ".join(rule.basis)))
    return RuleProse(
        rule=rule,
        conditions=condition_sentences(words, rule.when, derived),
        outcome=tuple(outcome),
        explanation=_pick(words, rule.explanation),
        notes=rule.notes,
    )


def ruleset_task(words: Words, ruleset: RuleSet, task: str) -> str:
    """A task by its name in the rule set, in the words' language."""
    return _pick(words, ruleset.tasks[task])


def _pick(words: Words, texts: Texts) -> str:
    return texts.fi if words.language == "fi" else texts.en


def definitions(words: Words, rules: Rules, ruleset: RuleSet) -> tuple[tuple[str, tuple[Sentence, ...]], ...]:
    """What the rules' words stand for: the area, H, C and the derived facts, from ruleset.yaml."""
    derived = [d.name for d in ruleset.derived_facts]
    members = sorted(ruleset.area_municipalities, key=words.municipality)
    area = (
        Sentence(
            words(
                "book.definitions.area_text",
                members=", ".join(words.municipality(code) for code in members),
                lead=words.municipality(ruleset.lead_municipality),
            )
        ),
    )
    pattern = ruleset.home_unit.replace("{home_municipality}", words("book.definitions.code"))
    home = (Sentence(words("book.definitions.H_text", pattern=pattern)),)
    coach: list[Sentence] = []
    for entry in ruleset.coach:
        who = words(
            "book.outcome.with_role",
            unit=unit_words(words, entry.unit),
            role=_role(words, entry.role.value),
        )
        if entry.when is None:
            coach.append(Sentence(words("book.definitions.C_otherwise", who=who)))
        else:
            when = words("conditions.and").join(s.text for s in condition_sentences(words, entry.when, derived))
            coach.append(Sentence(words("book.definitions.C_when", who=who, when=when)))
    facts = []
    for fact in ruleset.derived_facts:
        sentences = condition_sentences(words, fact.when, derived)
        facts.append(
            Sentence(
                words(
                    "book.definitions.derived", fact=words(f"book.derived.{fact.name}.yes"), basis=", ".join(fact.basis)
                ),
                tuple(s.text for s in sentences if not s.branches) + tuple(b for s in sentences for b in s.branches),
            )
        )
    return (
        (words("book.definitions.area"), area),
        (words("book.definitions.H"), home),
        (words("book.definitions.C"), tuple(coach)),
        (words("book.definitions.derived_title"), tuple(facts)),
    )


def _section_order(rules: Rules) -> dict[str, int]:
    return {section_id: index for index, section_id in enumerate(rules.plan_sections)}


def book(words: Words, rules: Rules, ruleset: RuleSet) -> Book:
    """The version's rule book: each plan section its rules cite, in plan order, with those rules written out."""
    prose = {rule.id: rule_prose(words, rules, ruleset, rule) for rule in ruleset.rules}
    cited: dict[str, list[RuleProse]] = {}
    for rule in ruleset.rules:
        for section in rule.basis:
            cited.setdefault(section, []).append(prose[rule.id])
    order = _section_order(rules)
    chapters = tuple(
        Chapter(rules.plan_sections[section], tuple(found))
        for section, found in sorted(cited.items(), key=lambda item: order[item[0]])
    )
    return Book(ruleset, definitions(words, rules, ruleset), chapters, prose)


def rule_as_text(words: Words, rules: Rules, ruleset: RuleSet, rule: Rule, cases: Sequence[str]) -> str:
    """A rule as plain text, for `reitti rules show`: the same sentences as the page."""
    written = rule_prose(words, rules, ruleset, rule)
    lines = [f"{rule.id} ({ruleset.version}, {rule.source.rsplit('/', 1)[-1]})", "", words("book.applies_when")]
    for sentence in written.conditions:
        lines.append(f"  - {sentence.text}")
        lines += [f"      · {branch}" for branch in sentence.branches]
    lines += ["", words("book.decides")]
    lines += [f"  {what}: {who}" for what, who in written.outcome]
    lines += ["", f"  {written.explanation}"]
    for note in written.notes:
        lines.append(f"  [{words(f'book.note.{note.kind}')}] {_pick(words, note.text)}")
    lines += ["", words("book.plan")]
    for section in rule.basis:
        plan = rules.plan_sections[section]
        lines.append(f"  {section} {plan.title}")
        lines += [f"    {paragraph}" for paragraph in plan.text.split("\n")]
    lines += ["", words("book.cases")]
    lines += [f"  - {name}" for name in cases] or [f"  {words('book.no_cases')}"]
    return "\n".join(lines)
