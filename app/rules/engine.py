"""The rules engine: durable-rules, contained. The only module that imports `durable`.

Durable decides, and a table serves: the input domain is finite, so durable-rules decides
every situation of it once per rule-set version, when the rule set loads (or the answers come
from a file on disk that durable wrote for the same sha256), and a decision is then a
dictionary lookup. A situation outside the walked domain is still put to durable, once.

Measured hazards shape this module (see docs/durable-rules.md): the stock Host
runs timer threads that sometimes take the action themselves, a session shared across
threads gives wrong answers, more than 1,024 live sessions raise MemoryError, and state
leaks between posts on one session. So: a host without background threads, one lock
around every call, a fresh session per evaluation deleted in `finally`, facts typed
before they are posted, and each rule's action recording its own id.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeAlias

from durable import engine as durable_engine

from app.rules.model import Condition, Facts, FactValue, RuleSet, Term

log = logging.getLogger("reitti")

# Part of the cache file's name: change it when the reduction of facts or the compiled
# conditions change, so that no file written by an older engine is read.
TABLE_FORMAT = 1
# Stand-ins in a situation's key; no fact value contains a NUL.
ABSENT = "\x00absent"
UNMENTIONED = "\x00unmentioned"

SituationKey: TypeAlias = tuple[FactValue, ...]


class _QuietHost(durable_engine.Host):
    """A durable-rules host whose background dispatch loop does nothing."""

    def _run(self) -> None:
        """Start no timer threads: every action runs inside our own call."""


def _term(term: Term) -> dict[str, Any]:
    tests: list[dict[str, Any]]
    if term.negated:
        tests = [{"$neq": {term.fact: value}} for value in term.values]
        return tests[0] if len(tests) == 1 else {"$and": tests}
    tests = [{term.fact: value} for value in term.values]
    return tests[0] if len(tests) == 1 else {"$or": tests}


def compile_condition(condition: Condition) -> dict[str, Any]:
    """Translate a condition into durable-rules' JSON, using only $and, $or and $neq."""
    parts = [_term(term) for term in condition.terms]
    if condition.any_of:
        branches = [compile_condition(branch) for branch in condition.any_of]
        parts.append({"$or": branches})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _recorder(rule_id: str) -> Callable[[Any], None]:
    def record(c: Any) -> None:
        # `fired` is tested by no rule, so writing it cannot re-trigger anything.
        c.s.fired = [*(c.s.fired or []), rule_id]

    return record


def named_values(conditions: Iterable[Condition]) -> dict[str, set[FactValue]]:
    """Every fact the conditions test, with every value they name for it."""
    named: dict[str, set[FactValue]] = {}
    pending = list(conditions)
    while pending:
        condition = pending.pop()
        for term in condition.terms:
            named.setdefault(term.fact, set()).update(term.values)
        pending.extend(condition.any_of)
    return named


class Situations:
    """Reduces facts to the situation the rule set's conditions can tell apart.

    The compiled conditions test facts only for equality with the values the rules name
    (`$neq` included), and a missing fact fails every test. And a rule whose `event_type`
    test fails for an event type cannot match it (`RuleSet.candidates`). So two facts of one
    event type are decided alike when they agree on which facts its candidate rules test are
    present, and on every value those rules name: a fact none of them tests drops out, and a
    value none of them names (any municipality but those named, any language but those
    named) stands as UNMENTIONED. This holds for typed facts only (durable takes "564" for
    564): `read_event` types every fact.
    """

    def __init__(self, ruleset: RuleSet) -> None:
        # event type -> fact -> the values named for it, sorted: also the cache file's check
        self.named: dict[str, dict[str, list[FactValue]]] = {}
        # event type -> ((fact, {a named value or ABSENT: itself}), ...); other values read as UNMENTIONED
        self._readings: dict[str, tuple[tuple[str, dict[FactValue, FactValue]], ...]] = {}
        for event_type, rules in sorted(ruleset.candidates.items()):
            named = named_values(rule.when for rule in rules)
            self.named[event_type] = {fact: sorted(named[fact], key=repr) for fact in sorted(named)}
            self._readings[event_type] = tuple(
                (fact, {**{value: value for value in values}, ABSENT: ABSENT})
                for fact, values in self.named[event_type].items()
            )

    def tested(self, event_type: str) -> set[str]:
        """The facts that some rule able to decide `event_type` tests."""
        return set(self.named.get(event_type, ()))

    def key(self, facts: Facts) -> SituationKey:
        """The situation of `facts`: its event type, then one entry per fact its rules test."""
        event_type = facts["event_type"]
        readings = self._readings.get(str(event_type), ())
        return (event_type, *[reading.get(facts.get(fact, ABSENT), UNMENTIONED) for fact, reading in readings])


@dataclass
class DecisionTable:
    """Durable's answers for one rule set, by situation."""

    sha256: str
    situations: Situations
    answers: dict[SituationKey, tuple[str, ...]] = field(default_factory=dict)
    # where the answers came from, and what it cost: for the start-up log and the benchmarks
    source: str = "none"
    seconds: float = 0.0
    # answers added after load, for situations the walked domain did not hold
    added: int = 0


class RuleEngine:
    """Evaluates facts against compiled rule sets; answers which rules matched.

    Each rule set gets a decision table (see the module's docstring). Without a table (no
    situations given at load), answers are remembered as durable gives them, up to
    `remember` of them beyond the table, so a repeat costs a lookup either way.
    """

    def __init__(self, remember: int = 200_000, cache_dir: Path | None = None) -> None:
        self._host = _QuietHost()
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._remember = remember
        self._cache_dir = cache_dir
        self._tables: dict[str, DecisionTable] = {}

    def load(self, ruleset: RuleSet, situations: Callable[[], Iterable[Facts]] | None = None) -> DecisionTable:
        """Compile one rule set into the engine (once per version and content), and fill its table.

        `situations` walks the rule set's input domain; it is called only when no cached
        table for the rule set's sha256 is found.
        """
        name = f"reitti-{ruleset.version}-{ruleset.sha256[:16]}"
        if ruleset.version not in self._names:
            definition = {
                rule.id: {"all": [{"m": compile_condition(rule.when)}], "run": _recorder(rule.id)}
                for rule in ruleset.rules
            }
            with self._lock:
                self._host.register_rulesets({name: definition})
            self._names[ruleset.version] = name
        table = self._tables.get(ruleset.sha256)
        if table is None or (table.source == "none" and situations is not None):
            table = self._table(ruleset, situations)
            self._tables[ruleset.sha256] = table
        return table

    def _table(self, ruleset: RuleSet, situations: Callable[[], Iterable[Facts]] | None) -> DecisionTable:
        started = time.perf_counter()
        table = DecisionTable(ruleset.sha256, Situations(ruleset))
        if situations is None:
            return table
        cached = self._read_cache(table)
        if cached is not None:
            table.answers, table.source = cached, "cache"
        else:
            for facts in situations():
                key = table.situations.key(facts)
                if key not in table.answers:
                    table.answers[key] = tuple(self.decide_by_durable(ruleset, facts))
            table.source = "durable"
            self._write_cache(table)
        table.seconds = time.perf_counter() - started
        log.info(
            "decision table for rule set %s: %d situations from %s in %.2f s",
            ruleset.version,
            len(table.answers),
            table.source,
            table.seconds,
        )
        return table

    def _cache_path(self, sha256: str) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"decision-table-{sha256}-v{TABLE_FORMAT}.json"

    def _header(self, table: DecisionTable) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "sha256": table.sha256,
            "durable_rules": metadata.version("durable-rules"),
            "named": table.situations.named,
        }

    def _read_cache(self, table: DecisionTable) -> dict[SituationKey, tuple[str, ...]] | None:
        """The cached answers, if the file was written for this very rule set and engine."""
        path = self._cache_path(table.sha256)
        if path is None or not path.exists():
            return None
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            header = {key: content[key] for key in ("format", "sha256", "durable_rules", "named")}
            if header != self._header(table):
                log.warning("decision table %s was written for another rule set or engine: rebuilt", path)
                return None
            return {tuple(key): tuple(fired) for key, fired in content["answers"]}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("decision table %s is unreadable: rebuilt", path)
            return None

    def _write_cache(self, table: DecisionTable) -> None:
        """Write the table where the next start finds it; atomically, as two workers may race."""
        path = self._cache_path(table.sha256)
        if path is None:
            return
        content = {**self._header(table), "answers": [[list(k), list(v)] for k, v in table.answers.items()]}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(content, stream, separators=(",", ":"))
            os.replace(temporary, path)
        except OSError as error:
            # A read-only disk costs the next start its walk, nothing else.
            log.warning("decision table not cached at %s: %s", path, error)

    def table(self, ruleset: RuleSet) -> DecisionTable:
        """The decision table of a loaded rule set."""
        return self._tables[ruleset.sha256]

    def matching_rules(self, ruleset: RuleSet, facts: Facts) -> list[str]:
        """The ids of every rule of `ruleset` whose condition the facts meet."""
        table = self._tables[ruleset.sha256]
        key = table.situations.key(facts)
        if (known := table.answers.get(key)) is not None:
            return list(known)
        fired = self.decide_by_durable(ruleset, facts)
        if table.added < self._remember:
            table.answers[key] = tuple(fired)
            table.added += 1
        return fired

    def decide_by_durable(self, ruleset: RuleSet, facts: Facts) -> list[str]:
        """Ask durable-rules, on a fresh session that is deleted whatever happens."""
        name = self._names[ruleset.version]
        sid = uuid.uuid4().hex
        # Facts, not events: every matching rule fires, so an overlap shows as two ids.
        fact = {**facts, "sid": sid}
        with self._lock:
            try:
                state = self._host.assert_fact(name, fact)
            except durable_engine.MessageNotHandledException:
                return []
            finally:
                self._host.delete_state(name, sid)
        return list(state.get("fired") or [])

    def close(self) -> None:
        """Free the compiled rule sets."""
        with self._lock:
            for ruleset in self._host._ruleset_list:
                durable_engine.durable_rules_engine.delete_ruleset(ruleset._handle)
            self._host = _QuietHost()
            self._names.clear()
            self._tables.clear()
