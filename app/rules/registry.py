"""The registry the rule sets share: municipalities, units, event types and their attributes, read strictly."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from app.rules.model import (
    AttributeSpec,
    AttributeType,
    Condition,
    CustomerType,
    EventType,
    FactValue,
    Registry,
    RulesError,
    Term,
    Texts,
    Unit,
    UnitKind,
)
from app.rules.strict_yaml import MappingReader, read_yaml, text_pair

REGISTRY_FILES = ("units.yaml", "event_types.yaml", "municipalities.yaml")
LANGUAGE = re.compile(r"^[a-z]{2}$")


def parse_condition(raw: Any, where: str, registry: Registry, extra_facts: Iterable[str]) -> Condition:
    """Read a `when:` mapping; every fact and value must be one the registry knows."""
    if not isinstance(raw, dict) or not raw:
        raise RulesError(f"{where}: a condition must be a non-empty mapping")
    known_extra = set(extra_facts)
    terms: list[Term] = []
    any_of: tuple[Condition, ...] = ()
    for fact, value in raw.items():
        if fact == "any":
            if not isinstance(value, list) or len(value) < 2:
                raise RulesError(f"{where}: 'any' takes a list of at least two conditions")
            any_of = tuple(
                parse_condition(branch, f"{where} any[{i}]", registry, known_extra) for i, branch in enumerate(value)
            )
            continue
        negated = isinstance(value, dict)
        if negated:
            if set(value) != {"not"}:
                raise RulesError(f"{where}: {fact}: a mapping here must be {{not: [...]}}")
            value = value["not"]
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values:
            raise RulesError(f"{where}: {fact}: an empty list matches nothing")
        _check_fact_values(fact, values, where, registry, known_extra)
        terms.append(Term(fact=str(fact), values=values, negated=negated))
    return Condition(tuple(terms), any_of)


def _check_fact_values(fact: str, values: Sequence[Any], where: str, registry: Registry, extra: set[str]) -> None:
    if fact in extra:
        domain: tuple[FactValue, ...] | None = (True, False)
    else:
        try:
            domain = registry.fact_domain(fact)
        except KeyError:
            raise RulesError(f"{where}: unknown fact {fact!r}") from None
    for value in values:
        if isinstance(value, bool) is not (domain == (True, False)):
            raise RulesError(f"{where}: {fact}: {value!r} has the wrong type")
        if fact == "language" and not (isinstance(value, str) and LANGUAGE.match(value)):
            raise RulesError(f"{where}: language: {value!r} is not an ISO 639-1 code")
        if domain is not None and value not in domain:
            raise RulesError(f"{where}: {fact}: {value!r} is not one of its values")


def load_registry(rules_dir: Path) -> Registry:
    """Read units, event types and municipalities."""
    genitives: dict[str, str] = {}
    municipalities = _load_municipalities(rules_dir / "municipalities.yaml", genitives)
    units = _load_units(rules_dir / "units.yaml", municipalities)
    vocabulary, integration_status, raw_types, where = _load_vocabulary(rules_dir / "event_types.yaml")
    registry = Registry(units, {}, integration_status, municipalities, vocabulary)
    event_types = {
        code: _load_event_type(code, raw, f"{where}: event type {code}", registry) for code, raw in raw_types.items()
    }
    return Registry(units, event_types, integration_status, municipalities, vocabulary, genitives)


def _load_municipalities(path: Path, genitives: dict[str, str] | None = None) -> dict[str, str]:
    entries = read_yaml(path)
    if not isinstance(entries, list):
        raise RulesError(f"{path}: expected a list of municipalities")
    result: dict[str, str] = {}
    for entry in entries:
        item = MappingReader(entry, f"{path}: municipality {entry.get('code') if isinstance(entry, dict) else entry}")
        code = item.need("code")
        if not (isinstance(code, str) and re.fullmatch(r"\d{3}", code)):
            raise RulesError(f"{item.where}: code must be a quoted 3-digit string")
        if code in result:
            raise RulesError(f"{item.where}: duplicate code")
        result[code] = item.text("fi")
        item.text("sv")
        if "genitive" in entry and genitives is not None:
            genitives[code] = item.text("genitive")
        item.done()
    return result


def _load_units(path: Path, municipalities: Mapping[str, str]) -> dict[str, Unit]:
    reader = MappingReader(read_yaml(path), str(path))
    units: dict[str, Unit] = {}
    for raw in reader.need("units"):
        item = MappingReader(raw, f"{path}: unit {raw.get('id') if isinstance(raw, dict) else raw}")
        unit_id = item.text("id")
        if unit_id in units:
            raise RulesError(f"{item.where}: duplicate unit id")
        try:
            kind = UnitKind(item.need("kind"))
        except ValueError:
            raise RulesError(f"{item.where}: unknown kind {raw.get('kind')!r}") from None
        municipality = item.need("municipality")
        if municipality is not None and municipality not in municipalities:
            raise RulesError(f"{item.where}: {municipality!r} is not a municipality code")
        units[unit_id] = Unit(unit_id, kind, municipality, Texts(item.text("fi"), item.text("en")))
        item.done()
    reader.done()
    return units


def _load_vocabulary(
    path: Path,
) -> tuple[dict[str, AttributeSpec], tuple[str, ...], dict[str, Any], str]:
    reader = MappingReader(read_yaml(path), str(path))
    vocabulary: dict[str, AttributeSpec] = {}
    for name, raw in reader.need("vocabulary").items():
        item = MappingReader(raw, f"{path}: vocabulary {name}")
        try:
            kind = AttributeType(item.need("type"))
        except ValueError:
            raise RulesError(f"{item.where}: unknown type {raw.get('type')!r}") from None
        values = tuple(item.get("values") or ())
        if (kind is AttributeType.choice) != bool(values):
            raise RulesError(f"{item.where}: a choice and only a choice lists values")
        latest = item.get("latest")
        reason = item.get("latest_reason")
        if (latest is None) != (reason is None) or (latest is not None and not isinstance(latest, date)):
            raise RulesError(f"{item.where}: 'latest' is a date and comes with 'latest_reason'")
        vocabulary[name] = AttributeSpec(
            name=name,
            type=kind,
            values=values,
            latest=latest,
            latest_reason=text_pair(reason, f"{item.where} latest_reason") if reason else None,
        )
        item.done()
    integration_status = tuple(reader.need("integration_status"))
    for name in integration_status:
        if vocabulary.get(name, None) is None or vocabulary[name].type is not AttributeType.boolean:
            raise RulesError(f"{path}: integration_status: {name!r} is not a boolean of the vocabulary")
    raw_types = reader.need("event_types")
    reader.done()
    return vocabulary, integration_status, raw_types, str(path)


def _load_event_type(code: str, raw: Any, where: str, registry: Registry) -> EventType:
    item = MappingReader(raw, where)
    name = Texts(item.text("fi"), item.text("en"))
    try:
        customer_types = tuple(CustomerType(t) for t in item.need("customer_types"))
    except ValueError as error:
        raise RulesError(f"{where}: customer_types: {error}") from None
    attributes: dict[str, AttributeSpec] = {}
    for attr_name, attr_raw in (item.get("attributes") or {}).items():
        attributes[attr_name] = _load_attribute(attr_name, attr_raw or {}, f"{where}: {attr_name}", registry)
    status = item.get("integration_status")
    if status not in (None, "required", "optional"):
        raise RulesError(f"{where}: integration_status must be required or optional")
    if status and CustomerType.jobseeker not in customer_types:
        raise RulesError(f"{where}: only a jobseeker carries an integration status")
    for flag in registry.integration_status if status else ():
        if flag in attributes:
            raise RulesError(f"{where}: {flag} is part of integration_status; do not list it")
        attributes[flag] = AttributeSpec(
            name=flag,
            type=AttributeType.boolean,
            required=status == "required",
            absent_means=False if status == "optional" else None,
        )
    language = item.get("customer_language")
    language_when = None
    if language is not None:
        lang = MappingReader(language, f"{where}: customer_language")
        language_when = parse_condition(lang.need("required_when"), lang.where, registry, ())
        lang.done()
    item.done()
    return EventType(code, name, customer_types, attributes, language_when, status)


def _load_attribute(name: str, raw: Any, where: str, registry: Registry) -> AttributeSpec:
    base = registry.vocabulary.get(name)
    if base is None:
        raise RulesError(f"{where}: not in the vocabulary")
    item = MappingReader(raw, where)
    values = tuple(item.get("values") or base.values)
    if not set(values) <= set(base.values):
        raise RulesError(f"{where}: values must be some of {list(base.values)}")
    required = bool(item.get("required", False))
    when_raw = item.get("required_when")
    required_when = parse_condition(when_raw, f"{where} required_when", registry, ()) if when_raw else None
    absent_means = item.get("absent_means")
    if absent_means is not None and registry.fact_domain(name) != (True, False):
        raise RulesError(f"{where}: absent_means is only for booleans here")
    echo = bool(item.get("echo", False))
    item.done()
    if sum([required, required_when is not None, absent_means is not None]) > 1:
        raise RulesError(f"{where}: choose one of required, required_when, absent_means")
    return AttributeSpec(
        name=name,
        type=base.type,
        values=values,
        required=required,
        required_when=required_when,
        absent_means=absent_means,
        echo=echo,
        latest=base.latest,
        latest_reason=base.latest_reason,
    )
