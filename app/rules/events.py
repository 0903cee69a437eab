"""Check an incoming event against the registry and read it into typed facts.

Everything that makes an event unroutable is found here and reported together, each
error naming its field: an unknown event type or attribute, a missing required one, a
bad value, a municipality code that does not exist, an invalid identity code, no rule
set in force. What remains is a `ValidEvent` whose facts the engine can take as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from app.access.identity import IdentifierKind, InvalidIdentifier, check_identifier, pseudonymise
from app.errors import EventInvalid, FieldError
from app.input_checks import loc_part
from app.rules.model import (
    Area,
    AttributeSpec,
    AttributeType,
    CustomerType,
    EventType,
    FactValue,
    Registry,
    Rules,
    RuleSet,
)
from app.schemas import CustomerIn, EventIn
from app.time import FINNISH_TIME

# The plan's dates are Finnish dates: a rule set in force "from 2025-01-01" starts at
# midnight in Finland, whatever offset the client sent.
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed every check, with its facts and the rule set in force."""

    event_id: str
    event_type: EventType
    occurred_at: datetime
    customer_type: CustomerType
    home_municipality: str
    language: str | None
    customer_pseudonym: str
    identifier_kind: IdentifierKind
    attributes: Mapping[str, FactValue]
    facts: Mapping[str, FactValue]
    ruleset: RuleSet

    def normalised(self) -> dict[str, Any]:
        """The event as it is stored: the identity code replaced by its pseudonym."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type.code,
            "occurred_at": self.occurred_at.isoformat(),
            "customer": {
                "type": self.customer_type.value,
                "pseudonym": self.customer_pseudonym,
                "identifier_kind": self.identifier_kind.value,
                "home_municipality": self.home_municipality,
                "language": self.language,
            },
            "attributes": dict(self.attributes),
        }


def _typed_value(spec: AttributeSpec, value: Any, event_type: str) -> tuple[FactValue | None, str | None]:
    """The attribute's value as a fact, or the reason it is refused (never quoting it)."""
    if spec.type is AttributeType.boolean:
        if type(value) is bool:
            return value, None
        return None, "must be true or false"
    if not isinstance(value, str):
        return None, "must be a string"
    if spec.type is AttributeType.choice:
        if value in spec.values:
            return value, None
        return None, f"must be one of {', '.join(spec.values)} for event type {event_type}"
    if not ISO_DATE.match(value):
        return None, "must be a date YYYY-MM-DD"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, "is not a valid date"
    if spec.latest is not None and day > spec.latest:
        assert spec.latest_reason is not None
        return None, f"must be {spec.latest.isoformat()} or earlier: {spec.latest_reason.en}"
    return value, None


def read_event(body: EventIn, rules: Rules, *, pseudonym_key: bytes, ruleset: RuleSet | None = None) -> ValidEvent:
    """Check `body` fully and return its facts; raise EventInvalid naming every bad field.

    The rule set is the one in force at `occurred_at`, unless one is named (simulation).
    """
    registry = rules.registry
    event_type = registry.event_types.get(body.event_type)
    if event_type is None:
        raise EventInvalid(
            [FieldError(("body", "event_type"), "unknown event type; GET /v1/event-types lists the valid ones")]
        )
    errors: list[FieldError] = []
    customer_type, identifier_kind = _check_customer(body.customer, event_type, registry, errors)
    ruleset = _ruleset_for(body, rules, ruleset, errors)
    customer = body.customer
    area = Area.inside if ruleset and customer.home_municipality in ruleset.area_municipalities else Area.outside
    facts: dict[str, FactValue] = {
        "event_type": event_type.code,
        "customer_type": customer_type.value,
        "home_municipality": customer.home_municipality,
        "area": area.value,
    }
    if customer.language is not None:
        facts["language"] = customer.language
    attributes = _read_attributes(body, event_type, customer_type, registry, facts, errors)
    facts.update(attributes)
    when = event_type.language_required_when
    if customer.language is None and when is not None and when.holds(facts):
        message = f"required for event type {event_type.code} when {when.describe()}"
        errors.append(FieldError(("body", "customer", "language"), message))

    if errors:
        raise EventInvalid(errors)
    assert ruleset is not None
    for derived in ruleset.derived_facts:
        facts[derived.name] = derived.when.holds(facts)

    return ValidEvent(
        event_id=body.event_id,
        event_type=event_type,
        occurred_at=body.occurred_at,
        customer_type=customer_type,
        home_municipality=customer.home_municipality,
        language=customer.language,
        customer_pseudonym=pseudonymise(pseudonym_key, customer.id),
        identifier_kind=identifier_kind,
        attributes=attributes,
        facts=facts,
        ruleset=ruleset,
    )


def _check_customer(
    customer: CustomerIn, event_type: EventType, registry: Registry, errors: list[FieldError]
) -> tuple[CustomerType, IdentifierKind]:
    """The customer's type and the kind of its identifier; what is wrong goes to `errors`."""
    customer_type = CustomerType(customer.type)
    if customer_type not in event_type.customer_types:
        taken = ", ".join(event_type.customer_types)
        errors.append(
            FieldError(
                ("body", "customer", "type"),
                f"event type {event_type.code} does not take customer type {customer_type}; it takes {taken}",
            )
        )
    if customer.home_municipality not in registry.municipalities:
        errors.append(FieldError(("body", "customer", "home_municipality"), "not a valid municipality code"))
    try:
        return customer_type, check_identifier(customer.id)
    except InvalidIdentifier as error:
        errors.append(FieldError(("body", "customer", "id"), str(error)))
        return customer_type, IdentifierKind.OPAQUE


def _ruleset_for(body: EventIn, rules: Rules, named: RuleSet | None, errors: list[FieldError]) -> RuleSet | None:
    """The rule set named, or the one in force on the event's day in Finland; none is an error at `occurred_at`."""
    try:
        local_day = body.occurred_at.astimezone(FINNISH_TIME).date()
    except OverflowError:  # year 9999 late in the day: no Finnish date exists
        raise EventInvalid([FieldError(("body", "occurred_at"), "is out of range")]) from None
    ruleset = named or rules.in_force(local_day)
    if ruleset is None:
        first = min(r.valid_from for r in rules.rulesets)
        errors.append(
            FieldError(
                ("body", "occurred_at"),
                f"no rule set is in force on {local_day.isoformat()} (Finnish time); the first starts {first}",
            )
        )
    return ruleset


def _read_attributes(
    body: EventIn,
    event_type: EventType,
    customer_type: CustomerType,
    registry: Registry,
    facts: Mapping[str, FactValue],
    errors: list[FieldError],
) -> dict[str, FactValue]:
    """The attributes given, typed, and those the plan reads into an absence; what is wrong goes to `errors`."""
    attributes: dict[str, FactValue] = {}
    integration = set(registry.integration_status)
    for name, value in body.attributes.items():
        spec = event_type.attributes.get(name)
        if spec is None:
            problem: str | None = f"event type {event_type.code} does not take this attribute"
        elif name in integration and customer_type is not CustomerType.jobseeker:
            problem = "only a jobseeker has an integration status"
        else:
            typed, problem = _typed_value(spec, value, event_type.code)
            if not problem and typed is not None:
                attributes[name] = typed
        if problem:
            # A submitted name, sent back only if it is a plain one: checked for an identity code
            # only here, since the check cost a quarter of reading a valid event.
            errors.append(FieldError(("body", "attributes", loc_part(name)), problem))

    given_integration = integration & set(body.attributes)
    for name, spec in event_type.attributes.items():
        if name in body.attributes:
            continue
        loc = ("body", "attributes", name)
        if name in integration:
            if customer_type is not CustomerType.jobseeker:
                continue
            if given_integration:
                errors.append(FieldError(loc, "the integration status takes all three attributes when one is given"))
                continue
        if spec.required:
            errors.append(FieldError(loc, f"required for event type {event_type.code}"))
        elif spec.required_when is not None and spec.required_when.holds({**facts, **attributes}):
            errors.append(
                FieldError(loc, f"required for event type {event_type.code} when {spec.required_when.describe()}")
            )
        elif spec.absent_means is not None:
            # The plan's own reading of an absent attribute (CATALOGUE §8), not a guess.
            attributes[name] = spec.absent_means
    return attributes


def from_stored(document: Mapping[str, Any], rules: Rules, ruleset: RuleSet) -> ValidEvent:
    """A logged event (its normalised form) read again under `ruleset`, for replay.

    The stored form has the pseudonym, never the identity code: the event is read with a
    stand-in id and given its pseudonym back, so nothing of the customer is needed.
    """
    customer = document["customer"]
    body = EventIn.model_construct(
        event_id=document["event_id"],
        event_type=document["event_type"],
        occurred_at=datetime.fromisoformat(document["occurred_at"]),
        customer=CustomerIn.model_construct(
            type=customer["type"],
            id="stored-event",
            home_municipality=customer["home_municipality"],
            language=customer["language"],
        ),
        attributes=dict(document["attributes"]),
    )
    event = read_event(body, rules, pseudonym_key=b"", ruleset=ruleset)
    return replace(
        event,
        customer_pseudonym=customer["pseudonym"],
        identifier_kind=IdentifierKind(customer["identifier_kind"]),
    )
