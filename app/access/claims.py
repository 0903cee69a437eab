"""What the identity provider's claims make someone in Reitti: the operator's mapping file, read strictly.

The file (REITTI_OIDC_CLAIMS) says which claim of the ID token lists a person's groups or roles and
what each value grants — a role and, for a coach, the municipality, for a unit's staff the unit — and
which claim of an access token names an integration and under which client name it posts. Anything
not named grants nothing:

    people:
      claim: groups              # the ID token's claim listing groups or app roles
      display_name_claim: name   # optional: shown in the UI's header
      values:
        reitti-coaches-564: {role: coach, municipality: "564"}
        reitti-oeo-experts: {role: unit, unit: central-oeo}
        reitti-auditors: {role: auditor}
    integrations:
      claim: azp                 # the access token's claim naming the client
      clients:
        3f0c...-client-id: ura   # its client name: decisions, idempotency and reads are per client name

A grant's keys are `role` and the scope keys in SCOPE_KEYS. Whether the unit exists in the rules is
checked when the person signs in (the rules are a layer above this one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.access import roles
from app.access.keys import KEY_NAME
from app.identity_codes import contains_identity_code
from app.models import Role

MUNICIPALITY = re.compile(r"^[0-9]{3}$")
UNIT = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# What may narrow a role, beside the role itself: a coach's municipality, a unit's staff's unit.
SCOPE_KEYS = ("municipality", "unit")


class MappingError(ValueError):
    """The mapping file is not usable: the message names the file and the entry."""


class NotMapped(Exception):
    """The claims grant nothing in Reitti, or grant two different things (never guessed between)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "unmapped" or "ambiguous"


@dataclass(frozen=True)
class Grant:
    """What a claim value makes a person: a role, the municipality a coach works for, a unit's staff's unit."""

    role: Role
    municipality: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class ClaimsMapping:
    """The operator's mapping, checked."""

    person_claim: str
    display_name_claim: str | None
    people: Mapping[str, Grant]
    client_claim: str | None
    clients: Mapping[str, str]

    def grant_for(self, claims: Mapping[str, Any]) -> Grant:
        """The one grant a person's claims give; NotMapped when they give none, or more than one."""
        granted = {self.people[value] for value in _values(claims.get(self.person_claim)) if value in self.people}
        if not granted:
            raise NotMapped("unmapped", f"no value of the claim {self.person_claim!r} is mapped to a role in Reitti")
        if len(granted) > 1:
            raise NotMapped("ambiguous", f"the claim {self.person_claim!r} maps to more than one role in Reitti")
        return granted.pop()

    def display_name(self, claims: Mapping[str, Any]) -> str | None:
        """The person's name for the UI's header, when the claim is there and plain."""
        value = claims.get(self.display_name_claim) if self.display_name_claim else None
        if not isinstance(value, str) or not value.strip() or contains_identity_code(value):
            return None
        return value.strip()[:128]

    def client_for(self, claims: Mapping[str, Any]) -> str:
        """The client name of an integration's access token; NotMapped when its client is not named."""
        value = claims.get(self.client_claim) if self.client_claim else None
        if not isinstance(value, str) or value not in self.clients:
            raise NotMapped("unmapped", "the access token's client is not mapped to an integration in Reitti")
        return self.clients[value]


def _values(claim: Any) -> list[str]:
    """A claim's values: a list of strings, or one string (some providers send a single group so)."""
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, list):
        return [value for value in claim if isinstance(value, str)]
    return []


class _NoDuplicates(yaml.SafeLoader):
    """A safe loader that refuses a key given twice: the second grant would silently win."""


def _mapping(loader: _NoDuplicates, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            mark = node.value[index][0].start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
    return dict(loader.construct_mapping(node))


_NoDuplicates.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _table(raw: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MappingError(f"{where} must be a mapping")
    unknown = sorted(set(map(str, raw)) - allowed)
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(raw))
    if missing:
        raise MappingError(f"{where}: {missing[0]!r} is missing")
    return raw


def _claim_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise MappingError(f"{where} must name a claim")
    return raw


def _grant(raw: Any, where: str) -> Grant:
    entry = _table(raw, where, {"role", *SCOPE_KEYS}, {"role"})
    if entry["role"] not in {role.value for role in roles.PEOPLE}:
        raise MappingError(f"{where}: role must be one of {', '.join(roles.PEOPLE)}, not {entry['role']!r}")
    role = Role(entry["role"])
    municipality = entry.get("municipality")
    if role is Role.coach and (not isinstance(municipality, str) or not MUNICIPALITY.match(municipality)):
        raise MappingError(f'{where}: a coach needs a municipality, three digits in quotes ("564")')
    if role is not Role.coach and municipality is not None:
        raise MappingError(f"{where}: only a coach belongs to a municipality")
    unit = entry.get("unit")
    if role is Role.unit and (not isinstance(unit, str) or not UNIT.match(unit)):
        raise MappingError(f"{where}: a unit's staff need a unit, a unit id of the rules (central-oeo)")
    if role is not Role.unit and unit is not None:
        raise MappingError(f"{where}: only a unit's staff name a unit (a coach is its municipality's)")
    return Grant(role, municipality, unit)


def _client_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not KEY_NAME.match(raw) or contains_identity_code(raw):
        raise MappingError(f"{where}: a client name is 1-64 letters, digits, '.', '_' or '-', first a letter or digit")
    return raw


def read_mapping(path: Path) -> ClaimsMapping:
    """Read and check the mapping file; MappingError names the file and what is wrong."""
    try:
        with path.open(encoding="utf-8") as stream:
            raw = yaml.load(stream, Loader=_NoDuplicates)  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as error:
        raise MappingError(f"{path}: {error}") from None
    try:
        top = _table(raw, "the file", {"people", "integrations"}, {"people"})
        people = _table(top["people"], "people", {"claim", "display_name_claim", "values"}, {"claim", "values"})
        values = people["values"]
        if not isinstance(values, dict) or not values:
            raise MappingError("people.values must map claim values to grants")
        grants = {str(value): _grant(grant, f"people.values.{value}") for value, grant in values.items()}
        display = people.get("display_name_claim")
        client_claim, clients = None, {}
        if "integrations" in top:
            integrations = _table(top["integrations"], "integrations", {"claim", "clients"}, {"claim", "clients"})
            client_claim = _claim_name(integrations["claim"], "integrations.claim")
            if not isinstance(integrations["clients"], dict):
                raise MappingError("integrations.clients must map client ids to client names")
            clients = {
                str(value): _client_name(name, f"integrations.clients.{value}")
                for value, name in integrations["clients"].items()
            }
        return ClaimsMapping(
            person_claim=_claim_name(people["claim"], "people.claim"),
            display_name_claim=_claim_name(display, "people.display_name_claim") if display is not None else None,
            people=grants,
            client_claim=client_claim,
            clients=clients,
        )
    except MappingError as error:
        raise MappingError(f"{path}: {error}") from None
