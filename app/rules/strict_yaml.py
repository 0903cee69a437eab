"""YAML read strictly: duplicate and unknown keys are errors that name the file and the rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.rules.model import RulesError, Texts


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return dict(loader.construct_mapping(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


class Located(dict[Any, Any]):
    """A mapping that knows its line in the file (1-based), and each of its keys' lines."""

    line: int
    key_lines: dict[Any, int]


class _LocatingLoader(_StrictLoader):
    """The strict loader, keeping where each mapping and each key is, for errors a person can find."""


def _located_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> Located:
    mapping = Located(_mapping_without_duplicates(loader, node))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {loader.construct_object(key): key.start_mark.line + 1 for key, _ in node.value}
    return mapping


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _located_mapping)


def read_yaml(path: Path, *, located: bool = False) -> Any:
    """Parse one YAML file, refusing duplicate keys; errors name the file and the rule.

    With `located`, every mapping is a `Located` that knows its line and its keys' lines.
    """
    loader = _LocatingLoader if located else _StrictLoader
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.load(stream, Loader=loader)  # noqa: S506 - a SafeLoader
    except OSError as error:
        raise RulesError(f"{path}: {error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        rule = _rule_at(path, mark.line) if mark is not None else None
        where = f"{path}: rule {rule}" if rule else str(path)
        problem = getattr(error, "problem", None) or str(error)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise RulesError(f"{where}: {problem}{line}") from error


def _rule_at(path: Path, line: int) -> str | None:
    """The id of the rule whose text holds `line`, for errors the parser finds."""
    lines = path.read_text(encoding="utf-8").splitlines()[: line + 1]
    for text in reversed(lines):
        if match := re.match(r"^\s*-\s*id:\s*(\S+)", text):
            return match.group(1)
    return None


class MappingReader:
    """Reads one mapping, knowing where it is, and refuses keys it was not asked for."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: expected a mapping, got {type(raw).__name__}")
        self.raw = raw
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.raw.get(key, default)

    def need(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.raw:
            raise RulesError(f"{self.where}: missing key {key!r}")
        return self.raw[key]

    def text(self, key: str) -> str:
        value = self.need(key)
        if not isinstance(value, str) or not value.strip():
            raise RulesError(f"{self.where}: {key!r} must be a non-empty text")
        return value

    def done(self) -> None:
        unknown = sorted(set(map(str, self.raw)) - self.used)
        if unknown:
            raise RulesError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


def text_pair(raw: Any, where: str) -> Texts:
    reader = MappingReader(raw, where)
    texts = Texts(fi=" ".join(reader.text("fi").split()), en=" ".join(reader.text("en").split()))
    reader.done()
    return texts
