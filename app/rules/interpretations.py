"""Where the rules read the plan rather than quote it: every rule and definition with an interpretation note.

The register (app/decisions/interpretations.py) counts the decisions each made; this module says,
from the rules alone, what there is to count and how: a rule's decisions are those naming it;
the definition of C (the customer's coach) made a decision when C stood for a unit whose
reading carries the note, which the decision counts show by the unit in the rule's first
field that says C.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.rules.model import Note, OpenQuestion, Rule, Rules, RuleSet

INTERPRETATION = "interpretation"
# The fields of a rule that the decision counts keep a unit for, in the order they are resolved.
COUNTED_FIELDS: tuple[Literal["handler", "provider", "customership"], ...] = ("handler", "provider", "customership")


@dataclass(frozen=True)
class Counted:
    """Decisions of `rule_id` whose `field` (handler, provider, customership) is `unit`; all of them when None."""

    rule_id: str
    field: Literal["handler", "provider", "customership"] | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Interpretation:
    """A rule or a definition of one version that reads the plan, and how to count its decisions."""

    version: str
    kind: Literal["rule", "definition"]
    id: str  # a rule id, or "C"
    notes: tuple[Note, ...]
    basis: tuple[str, ...]
    question: OpenQuestion | None
    counted: tuple[Counted, ...]


def _first_coach_field(rule: Rule) -> Literal["handler", "provider", "customership"] | None:
    """The first field the counts keep that says C: every C of one decision is the same unit."""
    refs = {
        "handler": rule.handler.ref,
        "provider": rule.provider.ref,
        "customership": rule.customership.unit.ref if rule.customership else None,
    }
    return next((field for field in COUNTED_FIELDS if refs[field] == "C"), None)


def _question(rules: Rules, about: str) -> OpenQuestion | None:
    return next((q for q in rules.open_questions if about in q.about), None)


def interpretations(rules: Rules, ruleset: RuleSet) -> list[Interpretation]:
    """Every rule and definition of the version that carries an interpretation note, in file order."""
    found: list[Interpretation] = []
    for entry in ruleset.coach:
        notes = tuple(n for n in entry.notes if n.kind == INTERPRETATION)
        if not notes:
            continue
        # A decision of a rule that says C, where C stood for this entry's unit. (C in a task
        # only is not in the counts; no rule of the shipped versions says C there alone.)
        counted = tuple(
            Counted(rule.id, field, entry.unit.ref)
            for rule in ruleset.rules
            if (field := _first_coach_field(rule)) is not None
        )
        derived = {d.name: d for d in ruleset.derived_facts}
        tested = sorted(entry.when.facts_tested()) if entry.when else []
        basis = tuple(b for name in tested if name in derived for b in derived[name].basis)
        found.append(Interpretation(ruleset.version, "definition", "C", notes, basis, _question(rules, "C"), counted))
    for rule in ruleset.rules:
        notes = tuple(n for n in rule.notes if n.kind == INTERPRETATION)
        if notes:
            found.append(
                Interpretation(
                    ruleset.version, "rule", rule.id, notes, rule.basis, _question(rules, rule.id), (Counted(rule.id),)
                )
            )
    return found
