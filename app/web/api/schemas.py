"""Shapes only the API answers with: the registry, simulation and diffs, problems, health."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from app.schemas import Texts


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
