"""What the rules know: event types, units, rule sets, their diff, and simulating one event."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.errors import NotFound
from app.rules.events import read_event
from app.rules.model import AttributeSpec, Condition, Note, Rule, Rules, RuleSet
from app.rules.routing import outcome, trace
from app.schemas import EventIn, RulesetDiffOut, Texts
from app.time import today_in_finland
from app.web.api import EVERY_OPERATION
from app.web.api.schemas import (
    AttributeOut,
    CoachOut,
    ConditionOut,
    CustomershipRuleOut,
    DefinitionsOut,
    DerivedFactOut,
    EventTypeOut,
    NoteOut,
    RuleOut,
    RulesetDetailOut,
    RulesetOut,
    SignatureOut,
    SimulationOut,
    TaskRuleOut,
    TermOut,
    TraceEntry,
    UnitInfo,
    problem_responses,
)
from app.web.deps import AuditorDep, EngineDep, PrincipalDep, RulesDep, cached_diff, services

router = APIRouter(responses=EVERY_OPERATION)


def _describe(condition: Condition | None) -> str | None:
    return condition.describe() if condition else None


def _attribute(spec: AttributeSpec) -> AttributeOut:
    return AttributeOut(
        name=spec.name,
        type=spec.type.value,
        values=list(spec.values) or None,
        required=spec.required,
        required_when=_describe(spec.required_when),
        absent_means=spec.absent_means if isinstance(spec.absent_means, bool) else None,
        echo=spec.echo,
        latest=spec.latest,
    )


@router.get("/v1/event-types", tags=["registry"])
def list_event_types(principal: PrincipalDep, rules: RulesDep) -> list[EventTypeOut]:
    """Every event type, with the customer types and attributes it takes."""
    return [
        EventTypeOut(
            code=t.code,
            name=Texts(fi=t.name.fi, en=t.name.en),
            customer_types=[c.value for c in t.customer_types],
            attributes=[_attribute(spec) for spec in t.attributes.values()],
            customer_language_required_when=_describe(t.language_required_when),
        )
        for t in rules.registry.event_types.values()
    ]


@router.get("/v1/units", tags=["registry"])
def list_units(principal: PrincipalDep, rules: RulesDep) -> list[UnitInfo]:
    """Every unit a decision may name."""
    return [
        UnitInfo(id=u.id, kind=u.kind.value, municipality=u.municipality, name=Texts(fi=u.name.fi, en=u.name.en))
        for u in rules.registry.units.values()
    ]


@router.get("/v1/rulesets", tags=["registry"])
def list_rulesets(principal: PrincipalDep, rules: RulesDep) -> list[RulesetOut]:
    """Every rule-set version, its period of validity and content hash."""
    today = today_in_finland()
    return [
        RulesetOut(
            version=r.version,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            in_force_until=r.ends,
            sha256=r.sha256,
            title=Texts(fi=r.title.fi, en=r.title.en),
            rules=len(r.rules),
            in_force_now=r.in_force_on(today),
            released=r.release.released,
        )
        for r in rules.rulesets
    ]


def _condition(condition: Condition) -> ConditionOut:
    return ConditionOut(
        all=[TermOut(fact=t.fact, values=list(t.values), negated=t.negated) for t in condition.terms],
        any=[_condition(branch) for branch in condition.any_of],
        text=condition.describe(),
    )


def _notes(notes: tuple[Note, ...]) -> list[NoteOut]:
    return [NoteOut(kind=n.kind, fi=n.text.fi, en=n.text.en) for n in notes]


def _rule(rule: Rule) -> RuleOut:
    customership = rule.customership
    return RuleOut(
        id=rule.id,
        file=Path(rule.source).name,
        when=_condition(rule.when),
        handler=rule.handler.ref,
        provider=rule.provider.ref,
        customership=CustomershipRuleOut(
            unit=customership.unit.ref, role=customership.role.value if customership.role else None
        )
        if customership
        else None,
        tasks=[TaskRuleOut(task=t.task, unit=t.unit.ref) for t in rule.tasks],
        basis=list(rule.basis),
        cost_group=rule.cost_group.value if rule.cost_group else None,
        explanation=Texts(fi=rule.explanation.fi, en=rule.explanation.en),
        notes=_notes(rule.notes),
    )


@router.get("/v1/rulesets/{version}", tags=["registry"], responses=problem_responses(404))
def get_ruleset(version: str, principal: PrincipalDep, rules: RulesDep) -> RulesetDetailOut:
    """One version in full: period, sha256, release, definitions (the area, H and C, cost groups) and every rule."""
    r = version_of(rules, version)
    return RulesetDetailOut(
        version=r.version,
        valid_from=r.valid_from,
        valid_to=r.valid_to,
        in_force_until=r.ends,
        sha256=r.sha256,
        title=Texts(fi=r.title.fi, en=r.title.en),
        in_force_now=r.in_force_on(today_in_finland()),
        released=r.release.released,
        signatures=[
            SignatureOut(approver=s.approver, key=s.fingerprint, signed_at=s.signed_at) for s in r.release.signatures
        ],
        release_problems=list(r.release.problems),
        definitions=DefinitionsOut(
            area_lead=r.lead_municipality,
            area_municipalities=sorted(r.area_municipalities),
            home_unit=r.home_unit,
            coach=[
                CoachOut(
                    when=_condition(c.when) if c.when else None,
                    unit=c.unit.ref,
                    role=c.role.value,
                    notes=_notes(c.notes),
                )
                for c in r.coach
            ],
            derived_facts=[
                DerivedFactOut(name=d.name, when=_condition(d.when), basis=list(d.basis)) for d in r.derived_facts
            ],
            cost_groups_by_unit={unit: group.value for unit, group in r.cost_groups_by_unit.items()},
            cost_groups_by_kind={kind.value: group.value for kind, group in r.cost_groups_by_kind.items()},
            tasks={name: Texts(fi=text.fi, en=text.en) for name, text in r.tasks.items()},
        ),
        rules=[_rule(rule) for rule in r.rules],
    )


def version_of(rules: Rules, version: str) -> RuleSet:
    """A version by its name; 404 for one that does not exist."""
    ruleset = rules.version(version)
    if ruleset is None:
        raise NotFound("No such rule set; GET /v1/rulesets lists them.")  # never the text asked for
    return ruleset


@router.post("/v1/simulate", tags=["rules"], responses=problem_responses(400, 404, 413))
def simulate(
    body: EventIn,
    request: Request,
    principal: PrincipalDep,
    rules: RulesDep,
    engine: EngineDep,
    ruleset: Annotated[str | None, Query(description="a version; default: the one in force at occurred_at")] = None,
) -> SimulationOut:
    """Decide an event under the rule set in force or a named version, with a trace; stores nothing."""
    chosen = version_of(rules, ruleset) if ruleset else None
    event = read_event(body, rules, pseudonym_key=services(request).pseudonym_key, ruleset=chosen)
    matched = engine.matching_rules(event.ruleset, event.facts)
    decision = None
    if len(matched) == 1:
        decision = {
            "event_id": event.event_id,
            "event_type": event.event_type.code,
            "occurred_at": event.occurred_at.isoformat(),
            **outcome(event, event.ruleset.rules_by_id[matched[0]], rules.registry),
        }
    return SimulationOut(
        ruleset=event.ruleset.version,
        ruleset_sha256=event.ruleset.sha256,
        decision=decision,
        matched_rules=matched,
        trace=[TraceEntry.model_validate(entry) for entry in trace(event)],
    )


@router.get("/v1/rulesets/{before}/diff/{after}", tags=["rules"], responses=problem_responses(404))
def ruleset_diff(before: str, after: str, request: Request, principal: AuditorDep, rules: RulesDep) -> RulesetDiffOut:
    """Every point of the input domain whose outcome differs between two versions (auditors, admins)."""
    return cached_diff(request, rules, version_of(rules, before), version_of(rules, after))
