"""Where a decision is made: the engine picks the rule, the rule's outcome is resolved.

`decide` asks the engine which rules match the event's facts. Exactly one must: none or
several is a defect of the rules (RoutingDefect, answered 500, nothing stored). The
matching rule's outcome names units directly or through H and C, which are resolved here
from the rule set's definitions in `ruleset.yaml`.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from app.errors import RoutingDefect
from app.rules.engine import RuleEngine
from app.rules.events import ValidEvent
from app.rules.model import CustomershipSpec, CustomerType, Note, Registry, Rule, RuleSet, Unit, UnitRef
from app.schemas import DecisionOut


def new_decision_id() -> str:
    """A UUIDv7: time-ordered, so ids sort roughly by the time of the decision."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | (0x7 << 76)  # version 7
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))


class _Resolver:
    """Resolves H, C and unit ids for one event, collecting the notes C brings."""

    def __init__(self, event: ValidEvent, registry: Registry) -> None:
        self.event = event
        self.registry = registry
        self.ruleset = event.ruleset
        self.notes: list[Note] = []

    def unit(self, ref: UnitRef) -> Unit:
        if ref.ref == "H":
            return self.registry.units[self.ruleset.home_unit.format(home_municipality=self.event.home_municipality)]
        if ref.ref == "C":
            entry = self.coach()
            return self.unit(entry.unit)
        return self.registry.units[ref.ref]

    def coach(self) -> Any:
        for entry in self.ruleset.coach:
            if entry.when is None or entry.when.holds(self.event.facts):
                for note in entry.notes:
                    if note not in self.notes:
                        self.notes.append(note)
                return entry
        raise AssertionError("the loader guarantees a last coach entry without condition")

    def customership(self, spec: CustomershipSpec | None) -> dict[str, Any] | None:
        # A person is not a customer of the employment services: nobody keeps them
        # (CATALOGUE §2, §8; CONTRACT: "customership is null for a person").
        if spec is None or self.event.customer_type is CustomerType.person:
            return None
        if spec.unit.ref == "C":
            entry = self.coach()
            return {**_unit_json(self.unit(entry.unit)), "role": entry.role.value}
        assert spec.role is not None
        return {**_unit_json(self.unit(spec.unit)), "role": spec.role.value}


def _unit_json(unit: Unit) -> dict[str, Any]:
    return {
        "unit": unit.id,
        "kind": unit.kind.value,
        "municipality": unit.municipality,
        "name": unit.name.fi,
        "name_en": unit.name.en,
    }


def cost_group(ruleset: RuleSet, rule: Rule, provider: Unit) -> str:
    """The rule's own cost group where it names one (CATALOGUE §7.4), else the provider's (§6)."""
    if rule.cost_group is not None:
        return rule.cost_group.value
    group = ruleset.cost_groups_by_unit.get(provider.id) or ruleset.cost_groups_by_kind[provider.kind]
    return group.value


def matching_rule(event: ValidEvent, engine: RuleEngine) -> Rule:
    """The one rule that decides the event; RoutingDefect when there is not exactly one."""
    matched = engine.matching_rules(event.ruleset, event.facts)
    if len(matched) != 1:
        raise RoutingDefect(event.event_type.code, matched)
    return event.ruleset.rules_by_id[matched[0]]


def outcome(event: ValidEvent, rule: Rule, registry: Registry) -> dict[str, Any]:
    """The decision's content for `rule`, with H and C resolved for this event."""
    resolve = _Resolver(event, registry)
    handler = resolve.unit(rule.handler)
    provider = resolve.unit(rule.provider)
    customership = resolve.customership(rule.customership)
    tasks = [{"task": t.task, "unit": resolve.unit(t.unit).id} for t in rule.tasks]
    notes = list(rule.notes) + [n for n in resolve.notes if n not in rule.notes]
    delivery = next(
        (event.attributes[a] for a, s in event.event_type.attributes.items() if s.echo and a in event.attributes), None
    )
    return {
        "handler": _unit_json(handler),
        "provider": _unit_json(provider),
        "customership": customership,
        "tasks": tasks,
        "cost_group": cost_group(event.ruleset, rule, provider),
        "rule": {"id": rule.id, "ruleset": event.ruleset.version, "ruleset_sha256": event.ruleset.sha256},
        "basis": list(rule.basis),
        "explanation": {"fi": rule.explanation.fi, "en": rule.explanation.en},
        "notes": [{"kind": note.kind, "fi": note.text.fi, "en": note.text.en} for note in notes],
        "delivery": delivery,
    }


def decide(event: ValidEvent, *, engine: RuleEngine, registry: Registry) -> DecisionOut:
    """Route one valid event: the whole decision, typed, ready to store and return."""
    rule = matching_rule(event, engine)
    return DecisionOut.model_validate(
        {
            "decision_id": new_decision_id(),
            "event_id": event.event_id,
            "event_type": event.event_type.code,
            "occurred_at": event.occurred_at.isoformat(),
            "decided_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **outcome(event, rule, registry),
        }
    )


def trace(event: ValidEvent) -> list[dict[str, Any]]:
    """The rules considered for the event's type, each test with whether it held."""
    return [
        {
            "rule": rule.id,
            "source": rule.source.rsplit("/", 1)[-1],
            "matched": rule.when.holds(event.facts),
            "tests": rule.when.explain(event.facts),
        }
        for rule in event.ruleset.candidates[event.event_type.code]
    ]
