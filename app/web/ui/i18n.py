"""The UI's texts in Finnish and English: message catalogues, and names from the registries.

Every text a page shows comes from `app/web/ui/locales/{fi,en}.yaml` (nested keys, read as
dotted names) or, for event types, units and tasks, from the rules' own fi/en names.
A key missing from a catalogue is an error, never a silent fallback: the tests render
every page in both languages and compare the catalogues' keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from app.rules.model import Condition, Registry

LANGUAGES = ("fi", "en")
DEFAULT_LANGUAGE = "fi"
LOCALES = Path(__file__).parent / "locales"


def _flatten(prefix: str, raw: Any, into: dict[str, str], where: Path) -> None:
    if isinstance(raw, dict):
        for key, value in raw.items():
            if not isinstance(key, str):  # YAML 1.1 reads a bare yes/no/on/off key as a boolean
                raise ValueError(f"{where}: {prefix}: the key {key!r} must be quoted")
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, into, where)
    elif isinstance(raw, str):
        into[prefix] = raw
    else:
        raise ValueError(f"{where}: {prefix}: a message is a text, not {type(raw).__name__}")


@functools.cache
def catalogue(language: str) -> Mapping[str, str]:
    """The messages of one language, by dotted key (read once per process)."""
    path = LOCALES / f"{language}.yaml"
    messages: dict[str, str] = {}
    _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")), messages, path)
    return messages


class Bilingual(Protocol):
    """A text in Finnish and English: the rules' texts, a decision's explanation and notes."""

    @property
    def fi(self) -> str: ...

    @property
    def en(self) -> str: ...


@dataclass(frozen=True)
class Translator:
    """The texts of one language, for one page."""

    language: str
    registry: Registry

    def __call__(self, key: str, **values: Any) -> str:
        """The message `key`, with `{name}` fields filled in; KeyError when it is missing."""
        text = catalogue(self.language)[key]
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        """Whether the catalogue has the key (for optional texts, such as a field's hint)."""
        return key in catalogue(self.language)

    def pick(self, texts: Bilingual | Mapping[str, str]) -> str:
        """The text in this language from a fi/en pair of the rules or of a decision."""
        return str(texts[self.language] if isinstance(texts, Mapping) else getattr(texts, self.language))

    def event_type(self, code: str) -> str:
        """An event type by its name in this language (the code itself if it is unknown)."""
        event_type = self.registry.event_types.get(code)
        return self.pick(event_type.name) if event_type else code

    def unit(self, unit_id: str | None) -> str:
        """A unit by its name in this language."""
        if unit_id is None:
            return "–"
        unit = self.registry.units.get(unit_id)
        return self.pick(unit.name) if unit else unit_id

    def municipality(self, code: str) -> str:
        """A municipality by its name (the registry keeps the Finnish one, used in English too)."""
        return self.registry.municipalities.get(code, code)

    def genitive(self, code: str) -> str | None:
        """A municipality's Finnish genitive ("Kempeleen"), for a sentence; None where the registry keeps none."""
        return self.registry.genitives.get(code)

    def municipality_scope(self, key: str, code: str) -> str:
        """The message `key` about one municipality, with `{genitive}` and `{municipality}` filled in.

        Finnish inflects a name in a sentence ("Kempeleen asukkaat"); where the registry keeps
        no genitive for the municipality, `key`_plain says the same with the name as it is.
        """
        genitive = self.genitive(code)
        if genitive is None:
            return self(f"{key}_plain", municipality=self.municipality(code))
        return self(key, municipality=self.municipality(code), genitive=genitive)

    def value(self, fact: str, value: Any) -> str:
        """A fact's value in words: yes/no, a choice's label, a municipality's or language's name."""
        if isinstance(value, bool):
            return self("common.yes" if value else "common.no")
        if fact == "home_municipality":
            return self.municipality(str(value))
        if fact == "language":
            key = f"languages.{value}"
            return self(key) if self.has(key) else str(value)
        key = f"attributes.{fact}.values.{value}"
        return self(key) if self.has(key) else str(value)

    def fact(self, fact: str) -> str:
        """A fact's name in words."""
        key = f"attributes.{fact}.label"
        return self(key) if self.has(key) else self(f"facts.{fact}")

    def condition(self, condition: Condition) -> str:
        """A rule's condition in words, for 'required when …'."""
        parts = []
        for term in condition.terms:
            # Names of fields and of their values are quoted: mid-sentence they keep their capitals.
            quoted = (self("conditions.quoted", text=self.value(term.fact, v)) for v in term.values)
            values = self("conditions.or").join(quoted)
            key = "conditions.is_not" if term.negated else "conditions.is"
            parts.append(self(key, fact=self.fact(term.fact), values=values))
        if condition.any_of:
            branches = self("conditions.or").join(self.condition(branch) for branch in condition.any_of)
            parts.append(f"({branches})")
        return self("conditions.and").join(parts)
