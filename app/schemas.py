"""The shapes of the contract (docs/CONTRACT.md) that the services share: events, decisions, filters, the audit's."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    computed_field,
    field_validator,
    model_validator,
)

from app.errors import FieldError, InvalidQuery
from app.input_checks import (
    CURSOR_PATTERN,
    RFC3339_PATTERN,
    in_utc_range,
    no_identity_code,
    no_identity_code_inside,
    rfc3339,
    storable_text,
)
from app.models import (
    AccessAction,
    AcknowledgementOutcome,
    AnnouncedKind,
    Anomaly,
    ItemKind,
    OverrideReason,
    RecordKind,
    ReturnReason,
    Role,
    principal_ref,
)

Strict = ConfigDict(extra="forbid")


EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


# A filter names a code of the service (an event type, a unit, a rule, a rule set, a client):
# the schema says which characters those have, so that it does not promise other text is taken.
# Empty is taken: it names nothing, so it selects nothing.
Code = Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9._:-]*$")]


class CustomerIn(BaseModel):
    """Who the event is about."""

    model_config = Strict

    type: Literal["jobseeker", "employer", "person"]
    id: Annotated[str, Field(min_length=1, max_length=128)]

    # The one field that may hold an identity code; it is pseudonymised, so it must be text.
    _id_is_text = field_validator("id")(storable_text)
    home_municipality: Annotated[str, Field(pattern=r"^\d{3}$", description="3-digit Statistics Finland code")]
    language: Annotated[str | None, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1")] = None


class EventIn(BaseModel):
    """An event a client system submits."""

    model_config = Strict

    event_id: EventId
    event_type: Annotated[str, Field(min_length=1, max_length=100)]
    occurred_at: AwareDatetime
    customer: CustomerIn
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    _occurred_at_as_text = field_validator("occurred_at", mode="before")(rfc3339)
    _occurred_at_in_range = field_validator("occurred_at")(in_utc_range)
    _no_identity_code = field_validator("event_id", "event_type")(no_identity_code)
    _attributes_without_identity_code = field_validator("attributes")(no_identity_code_inside)


# The decision and its parts are values: made once by routing, never changed on the way to storage or a page.
Frozen = ConfigDict(frozen=True)


class UnitOut(BaseModel):
    """A unit as a decision names it."""

    model_config = Frozen

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

    model_config = Frozen

    task: str
    unit: str


class RuleRef(BaseModel):
    """The rule that decided, and the rule set it belongs to."""

    model_config = Frozen

    id: str
    ruleset: str
    ruleset_sha256: str


class Texts(BaseModel):
    """A text in Finnish and English."""

    model_config = Frozen

    fi: str
    en: str


class NoteOut(BaseModel):
    """A note on a decision: its kind (`interpretation` marks a reading of the plan), in Finnish and English."""

    model_config = Frozen

    kind: str = Field(description="interpretation, info, …")
    fi: str
    en: str


class DecisionOut(BaseModel):
    """A routing decision (CONTRACT.md, "The decision")."""

    model_config = Frozen

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
    notes: list[NoteOut]
    delivery: str | None = None


class DecisionFilters(BaseModel):
    """Filters of the decision log; every filter given must hold."""

    model_config = Strict

    event_type: Code | None = None
    handler: Code | None = Field(None, description="handler unit id")
    provider: Code | None = Field(None, description="provider unit id")
    customership: Code | None = Field(None, description="customership unit id")
    municipality: str | None = Field(None, pattern=r"^\d{3}$", description="the customer's home municipality")
    rule_id: Code | None = None
    ruleset: Code | None = None
    customer_pseudonym: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    decided_after: AwareDatetime | None = Field(None, description="inclusive")
    decided_before: AwareDatetime | None = Field(None, description="exclusive")
    occurred_after: AwareDatetime | None = Field(None, description="inclusive")
    occurred_before: AwareDatetime | None = Field(None, description="exclusive")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Filters are logged in the access log: nothing unstorable, nothing that names a person.
        return in_utc_range(no_identity_code(value))


class DecisionQuery(DecisionFilters):
    """Filters and paging for the decision log; every filter given must hold."""

    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500, description="page size; a CSV export ignores it and sends every row")


class DecisionPage(BaseModel):
    """A page of decisions, newest first, and the cursor for the next page."""

    items: list[DecisionOut]
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    """The cursor for the page after the row with sequence number `seq`."""
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor names; 422 naming `cursor` when it is not one."""
    if re.fullmatch(CURSOR_PATTERN, cursor, re.ASCII) is None:
        raise InvalidQuery([FieldError(("query", "cursor"), "not a cursor this service gives")])
    return int(cursor)


class Count(BaseModel):
    """How many decisions have one value of a column."""

    key: str | None
    decisions: int


class RuleCount(BaseModel):
    """How many decisions a rule made, and how many of them were overridden in practice."""

    rule_id: str
    decisions: int
    overridden: int
    override_rate: float


class DecisionStats(BaseModel):
    """Counts of the selected decisions by rule, unit, municipality and month (Finnish time)."""

    total: int
    overridden: int
    by_rule: list[RuleCount]
    by_handler: list[Count]
    by_customership: list[Count]
    by_municipality: list[Count]
    by_month: list[Count]


class OverrideIn(BaseModel):
    """What was done in practice instead of the decision, and why."""

    model_config = Strict

    handler: str | None = Field(None, max_length=64, description="the unit that handled the case instead")
    customership: str | None = Field(None, max_length=64, description="the unit that kept the customer instead")
    reason: OverrideReason
    text: Annotated[str, Field(max_length=2000, description="free text; never an identity code")] = ""

    _no_identity_code = field_validator("handler", "customership", "text")(no_identity_code)

    @model_validator(mode="after")
    def _changes_something(self) -> OverrideIn:
        if self.handler is None and self.customership is None:
            raise ValueError("give the new handler, the new customership, or both")
        return self


class LinkOut(BaseModel):
    """A record's link in the audit chain, and the document it hashes.

    hash = sha256(prev_hash || document), both as UTF-8 text; mac = HMAC-SHA256(chain key `mac_key`, hash).
    """

    seq: int
    kind: RecordKind
    record_id: str
    prev_hash: str
    hash: str
    chained_at: AwareDatetime
    document: str
    mac_key: str | None = None
    mac: str | None = None


class OverrideOut(BaseModel):
    """An override, as recorded and chained."""

    override_id: str
    decision_id: str
    handler: str | None
    customership: str | None
    reason: OverrideReason
    text: str
    recorded_by: str
    recorded_role: Role
    recorded_at: AwareDatetime
    seq: int = Field(description="its place in the audit chain")


class CheckpointOut(BaseModel):
    """The chain's head at a moment, signed (HMAC-SHA256) with a key outside the database."""

    seq: int
    hash: str
    at: str
    signature: str
    access_seq: int | None = None
    access_hash: str | None = None


class CheckpointQuery(BaseModel):
    """A checkpoint kept earlier, to check the chain against: all four fields or none."""

    model_config = Strict

    seq: int | None = Field(None, ge=0, le=2**63 - 1)
    hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    # Not scanned for identity codes: the pattern admits only a time, and the digits of a
    # fraction before an offset can spell a business id ("…05.301772616-01:09").
    at: str | None = Field(None, pattern=RFC3339_PATTERN, description="as the checkpoint gave it")
    signature: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    access_seq: int | None = Field(None, ge=0, le=2**63 - 1)
    access_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    def given(self) -> CheckpointOut | None:
        """The checkpoint, or None when no field was given; 422 when only some were."""
        fields = {"seq": self.seq, "hash": self.hash, "at": self.at, "signature": self.signature}
        missing = [name for name, value in fields.items() if value is None]
        if len(missing) == len(fields):
            return None
        if missing:
            raise InvalidQuery([FieldError(("query", name), "a checkpoint needs all four fields") for name in missing])
        return CheckpointOut.model_validate(fields | {"access_seq": self.access_seq, "access_hash": self.access_hash})


class FindingOut(BaseModel):
    """Something that breaks the chain's proof."""

    seq: int | None
    record_id: str | None
    problem: str
    log: Literal["decisions", "access"] = "decisions"


class VerificationOut(BaseModel):
    """What a walk of the chain found."""

    intact: bool
    links: int
    intact_up_to: int
    head_hash: str
    findings: list[FindingOut]
    summary: str
    access_entries: int = 0
    access_intact_up_to: int = 0


class AccessQuery(BaseModel):
    """Filters and paging for the access log."""

    model_config = Strict

    who: Code | None = Field(None, description="the key's name, or ui:<user>")
    role: Role | None = None
    municipality: str | None = Field(None, pattern=r"^\d{3}$", description="a coach's municipality")
    action: AccessAction | None = None
    decision_id: Code | None = Field(None, max_length=36)
    after: AwareDatetime | None = Field(None, description="inclusive")
    before: AwareDatetime | None = Field(None, description="exclusive")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500)

    _no_identity_code = field_validator("who", "decision_id", "cursor")(no_identity_code)


class AccessOut(BaseModel):
    """One logged read: who, when, which decision or which filter, how many rows."""

    at: AwareDatetime
    key_id: int = Field(description="the number of the key or of the UI account: `principal` says which")
    key_name: str

    role: Role
    municipality: str | None
    action: AccessAction
    decision_id: str | None
    filters: dict[str, Any] | None
    rows: int

    @computed_field(description="who read: `key:<id>` for an API key, `user:<id>` for a UI account")  # type: ignore[prop-decorator]
    @property
    def principal(self) -> str:
        """Keys and UI accounts are numbered apart: this says which `key_id` is."""
        return principal_ref(self.key_name, self.key_id)


class AccessPage(BaseModel):
    """A page of the access log, newest first, and the cursor for the next page."""

    items: list[AccessOut]
    next_cursor: str | None


class RulesetDiffOut(BaseModel):
    """Every point of the input domain whose outcome differs between two versions."""

    before: str
    after: str
    points: int
    changed: int
    by_event_type: list[dict[str, JsonValue]]


UnitId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$", description="a unit id")]


class WorklistQuery(BaseModel):
    """Filters and paging of a unit's worklist: open items, oldest first."""

    model_config = Strict

    event_type: Code | None = None
    kind: ItemKind | None = Field(None, description="new, handover_in, handover_out or returned")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500)

    _no_identity_code = field_validator("event_type", "cursor")(no_identity_code)


class WorklistItemOut(BaseModel):
    """An open item of a unit's worklist: which decision, why it is there, and how long it has waited."""

    decision_id: str
    unit: str
    kind: ItemKind
    event_type: str
    decided_at: AwareDatetime
    age_seconds: int = Field(description="seconds since the decision, when the page was read")
    other_unit: str | None = Field(description="the other side of a handover, or the unit that returned the item")
    anomaly: Anomaly | None = Field(description="where the customership register and the rule disagree")


class WorklistPage(BaseModel):
    """A page of a unit's open items, oldest first, and the cursor for the next page."""

    unit: str
    open_items: int = Field(description="all the unit's open items, whatever the filters")
    items: list[WorklistItemOut]
    next_cursor: str | None


class AcknowledgementIn(BaseModel):
    """The unit that has taken the item."""

    model_config = Strict

    unit: UnitId


class ReturnIn(BaseModel):
    """The unit that returns an item that is not its own, and why."""

    model_config = Strict

    unit: UnitId
    reason: ReturnReason
    text: Annotated[str, Field(max_length=2000, description="free text; never an identity code")] = ""

    _no_identity_code = field_validator("text")(no_identity_code)


class AcknowledgementOut(BaseModel):
    """A unit's answer to an item of its worklist, as recorded and chained."""

    acknowledgement_id: str
    decision_id: str
    unit: str
    outcome: AcknowledgementOutcome
    reason: ReturnReason | None
    text: str
    returned_to: str | None
    recorded_by: str
    recorded_role: Role
    recorded_at: AwareDatetime
    seq: int = Field(description="its place in the audit chain")


class HoldingOut(BaseModel):
    """One row of the customership register: from `since` (the event's own time) on, `unit` holds the customer."""

    unit: str
    role: str
    since: AwareDatetime
    event_type: str
    decision_id: str | None = Field(description="the decision that set it; null when this key may not see it")
    previous_unit: str | None
    anomaly: Anomaly | None


class CustomerRegisterOut(BaseModel):
    """A customer's holder now, since when and by which decision, and the history, newest first."""

    current: HoldingOut
    history: list[HoldingOut] = Field(description="the newest 200 rows the caller may see")


class WaitingQuery(BaseModel):
    """The period of the answers whose waiting times are asked for."""

    model_config = Strict

    answered_after: AwareDatetime | None = Field(None, description="inclusive")
    answered_before: AwareDatetime | None = Field(None, description="exclusive")

    _in_range = field_validator("answered_after", "answered_before")(in_utc_range)


class WaitingTime(BaseModel):
    """How long one unit's items waited from the decision to the unit's answer."""

    unit: str
    count: int
    median_seconds: float
    p90_seconds: float


class WaitingTimes(BaseModel):
    """Waiting times by unit of the answers recorded in a period."""

    answered_after: AwareDatetime | None
    answered_before: AwareDatetime | None
    units: list[WaitingTime]


class WebhookIn(BaseModel):
    """A webhook subscription: where to send, and which records; an empty list means all."""

    model_config = Strict

    url: Annotated[str, Field(min_length=1, max_length=2000, description="https:// URL of the receiver")]
    kinds: list[AnnouncedKind] = Field(default_factory=list, max_length=4)
    units: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=200, description="unit ids (GET /v1/units); a record concerning any of them"
    )
    event_types: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=200, description="event type codes (GET /v1/event-types)"
    )
    full_record: bool = Field(False, description="the whole record in each message, not only what names it")

    _no_identity_code = field_validator("url")(no_identity_code)
    _none_inside = field_validator("units", "event_types")(no_identity_code_inside)
