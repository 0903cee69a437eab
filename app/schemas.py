"""The API's request and response bodies (CONTRACT.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

Strict = ConfigDict(extra="forbid")

EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class CustomerIn(BaseModel):
    """Who the event is about."""

    model_config = Strict

    type: Literal["jobseeker", "employer", "person"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    home_municipality: Annotated[str, Field(pattern=r"^\d{3}$", description="3-digit Statistics Finland code")]
    language: Annotated[str | None, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1")] = None


def _in_utc_range(value: Any) -> Any:
    """A time that cannot be expressed in UTC (year 1 east of Greenwich) is refused, not a 500."""
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None
    return value


class EventIn(BaseModel):
    """An event a client system submits."""

    model_config = Strict

    event_id: EventId
    event_type: Annotated[str, Field(min_length=1, max_length=100)]
    occurred_at: AwareDatetime
    customer: CustomerIn
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    _occurred_at_in_range = field_validator("occurred_at")(_in_utc_range)


class UnitOut(BaseModel):
    """A unit as a decision names it."""

    unit: str
    kind: str
    municipality: str | None
    name: str
    name_en: str


class CustomershipOut(UnitOut):
    """Who keeps the customer, and in which role."""

    role: str


class TaskOut(BaseModel):
    """A task assigned to a unit."""

    task: str
    unit: str


class RuleRef(BaseModel):
    """The rule that decided, and the rule set it belongs to."""

    id: str
    ruleset: str
    ruleset_sha256: str


class Texts(BaseModel):
    """A text in Finnish and English."""

    fi: str
    en: str


class DecisionOut(BaseModel):
    """A routing decision (CONTRACT.md, "The decision")."""

    decision_id: str
    event_id: str
    event_type: str
    occurred_at: str
    decided_at: str
    handler: UnitOut
    provider: UnitOut
    customership: CustomershipOut | None
    tasks: list[TaskOut]
    cost_group: str
    rule: RuleRef
    basis: list[str]
    explanation: Texts
    notes: list[str]
    delivery: str | None = None


class DecisionQuery(BaseModel):
    """Filters and paging for the decision log; every filter given must hold."""

    model_config = Strict

    event_type: str | None = None
    handler: str | None = Field(None, description="handler unit id")
    provider: str | None = Field(None, description="provider unit id")
    customership: str | None = Field(None, description="customership unit id")
    municipality: str | None = Field(None, pattern=r"^\d{3}$", description="the customer's home municipality")
    rule_id: str | None = None
    ruleset: str | None = None
    customer_pseudonym: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    decided_after: AwareDatetime | None = Field(None, description="inclusive")
    decided_before: AwareDatetime | None = Field(None, description="exclusive")
    occurred_after: AwareDatetime | None = Field(None, description="inclusive")
    occurred_before: AwareDatetime | None = Field(None, description="exclusive")
    cursor: str | None = Field(None, max_length=64, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here, naming the field, not as a 500.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return _in_utc_range(value)


class DecisionPage(BaseModel):
    """A page of decisions, newest first, and the cursor for the next page."""

    items: list[DecisionOut]
    next_cursor: str | None


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


class RulesetDiffOut(BaseModel):
    """Every point of the input domain whose outcome differs between two versions."""

    before: str
    after: str
    points: int
    changed: int
    by_event_type: list[dict[str, JsonValue]]


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
