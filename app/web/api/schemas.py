"""Shapes only the API answers with: the registry, simulation and diffs, problems, health, webhooks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from app.schemas import NoteOut, Texts


class AttributeOut(BaseModel):
    """An attribute an event type takes."""

    name: str
    type: str
    values: list[str] | None
    required: bool
    required_when: str | None
    absent_means: bool | None
    echo: bool
    latest: date | None


class EventTypeOut(BaseModel):
    """An event type and what it takes."""

    code: str
    name: Texts
    customer_types: list[str]
    attributes: list[AttributeOut]
    customer_language_required_when: str | None


class UnitInfo(BaseModel):
    """A unit of the registry."""

    id: str
    kind: str
    municipality: str | None
    name: Texts


class RulesetOut(BaseModel):
    """A rule-set version and its period of validity."""

    version: str
    valid_from: date
    valid_to: date | None = Field(description="the end the version names itself, if any")
    in_force_until: date | None = Field(description="the last day in force: valid_to, or the day before the next")
    sha256: str
    title: Texts
    rules: int
    in_force_now: bool
    released: bool = Field(description="two distinct approvers signed this content (README: signed releases)")


class SignatureOut(BaseModel):
    """An approver's valid signature of the version's content as it is now."""

    approver: str
    key: str = Field(description="the sha256 of the approver's Ed25519 public key")
    signed_at: datetime


class TermOut(BaseModel):
    """One test of one fact: equal to one of `values`, or (negated) to none."""

    fact: str
    values: list[str | bool]
    negated: bool


class ConditionOut(BaseModel):
    """Every test of `all` holds, and one branch of `any` when it is given."""

    all: list[TermOut]
    any: list[ConditionOut]
    text: str = Field(description="the same in words")


class CustomershipRuleOut(BaseModel):
    """Who keeps the customer: a unit or H or C, and the role (null: the coach's own)."""

    unit: str
    role: str | None


class TaskRuleOut(BaseModel):
    """A task a decision assigns beside the handler's own work."""

    task: str
    unit: str


class RuleOut(BaseModel):
    """One rule as data: when it applies, its outcome (units, H or C), basis, explanation and notes."""

    id: str
    file: str
    when: ConditionOut
    handler: str
    provider: str
    customership: CustomershipRuleOut | None
    tasks: list[TaskRuleOut]
    basis: list[str]
    cost_group: str | None = Field(description="the rule's own cost group; null: the provider's")
    explanation: Texts
    notes: list[NoteOut]


class CoachOut(BaseModel):
    """One reading of C, the customer's coach: the first whose condition holds."""

    when: ConditionOut | None
    unit: str
    role: str
    notes: list[NoteOut]


class DerivedFactOut(BaseModel):
    """A fact the rule set derives from the event before any rule is tried."""

    name: str
    when: ConditionOut
    basis: list[str]


class DefinitionsOut(BaseModel):
    """What the rules' words stand for: the area, H, C, the derived facts, cost groups and tasks."""

    area_lead: str
    area_municipalities: list[str]
    home_unit: str = Field(description="H: the local unit of the customer's home municipality, by this pattern")
    coach: list[CoachOut] = Field(description="C: the customer's coach unit")
    derived_facts: list[DerivedFactOut]
    cost_groups_by_unit: dict[str, str]
    cost_groups_by_kind: dict[str, str]
    tasks: dict[str, Texts]


class RulesetDetailOut(BaseModel):
    """A rule-set version in full: its period, release, definitions and every rule, as data."""

    version: str
    valid_from: date
    valid_to: date | None = Field(description="the end the version names itself, if any")
    in_force_until: date | None = Field(description="the last day in force: valid_to, or the day before the next")
    sha256: str
    title: Texts
    in_force_now: bool
    released: bool = Field(description="two distinct approvers signed this content (README: signed releases)")
    signatures: list[SignatureOut]
    release_problems: list[str] = Field(description="what stands between the version and release; empty if released")
    definitions: DefinitionsOut
    rules: list[RuleOut]


class TraceTest(BaseModel):
    """One test of a rule's condition and whether it held."""

    test: str
    held: bool


class TraceEntry(BaseModel):
    """A rule considered for the event, and why it did or did not match."""

    rule: str
    source: str
    matched: bool
    tests: list[TraceTest]


class SimulationOut(BaseModel):
    """What a rule set would decide for an event; nothing is stored."""

    ruleset: str
    ruleset_sha256: str
    decision: dict[str, JsonValue] | None = Field(description="the decision, without id; null when no single rule")
    matched_rules: list[str]
    trace: list[TraceEntry]


class FieldProblem(BaseModel):
    """One invalid field: where, and what is wrong; never the submitted value."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error is answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses answered as problem JSON."""
    return {status: {"model": Problem, "content": {"application/problem+json": {}}} for status in statuses}


class Health(BaseModel):
    """A health or readiness answer."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class InterpretationOut(BaseModel):
    """A rule or definition that reads the plan, and how many decisions it made in the period."""

    version: str
    kind: Literal["rule", "definition"]
    id: str = Field(description="a rule id, or C for the definition of the customer's coach")
    decisions: int
    basis: list[str]
    notes: list[NoteOut]
    open_question: Texts | None = Field(description="the question left to the area's policy owner (CATALOGUE §9)")


class InterpretationsOut(BaseModel):
    """The interpretations register of a period (Finnish days, both ends included), most decisions first."""

    since: date | None
    until: date | None
    items: list[InterpretationOut]


class WebhookOut(BaseModel):
    """A webhook subscription, without its secret."""

    id: int
    url: str
    kinds: list[str]
    units: list[str]
    event_types: list[str]
    full_record: bool
    created_by: str
    created_at: datetime
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None = Field(description="`admin` (by hand) or `gone` (the receiver answered 410)")
    previous_secret_until: datetime | None = Field(description="until when the previous secret signs too")


class WebhookSecretOut(WebhookOut):
    """A subscription with its signing secret: shown once, when made or rotated."""

    secret: str = Field(description="`whsec_` and base64: verify signatures with it (Standard Webhooks)")


class AttemptOut(BaseModel):
    """One attempt to deliver a message."""

    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryOut(BaseModel):
    """One message to a subscription and every attempt at it."""

    id: int
    message_id: str = Field(description="the `webhook-id` header: the same on every attempt")
    kind: str
    record_id: str
    state: str = Field(description="pending, delivered or dead")
    attempts: list[AttemptOut]
    created_at: datetime
    due_at: datetime
    finished_at: datetime | None


class RedeliveredOut(BaseModel):
    """How many dead messages are due again."""

    redelivered: int
