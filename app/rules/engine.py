"""The rules engine: durable-rules, contained. The only module that imports `durable`.

Measured hazards shape this module (see docs/durable-rules.md): the stock Host
runs timer threads that sometimes take the action themselves, a session shared across
threads gives wrong answers, more than 1,024 live sessions raise MemoryError, and state
leaks between posts on one session. So: a host without background threads, one lock
around every call, a fresh session per evaluation deleted in `finally`, facts typed
before they are posted, and each rule's action recording its own id.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from durable import engine as durable_engine

from app.rules.model import Condition, Facts, FactValue, RuleSet, Term


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


class RuleEngine:
    """Evaluates facts against compiled rule sets; answers which rules matched.

    A rule set never changes once loaded, and the facts of valid events are few (every
    point of the input domain is some tens of thousands): so each answer the engine gives
    is remembered for the same facts, up to `remember` answers. The engine still decides
    every distinct situation; a repeat costs a dictionary lookup instead of a JSON round
    trip through durable's C core, which is most of the time of a decision.
    """

    def __init__(self, remember: int = 200_000) -> None:
        self._host = _QuietHost()
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._remember = remember
        self._answers: dict[tuple[str, tuple[tuple[str, FactValue], ...]], tuple[str, ...]] = {}

    def load(self, ruleset: RuleSet) -> None:
        """Compile one rule set into the engine (once per version and content)."""
        name = f"reitti-{ruleset.version}-{ruleset.sha256[:16]}"
        if ruleset.version in self._names:
            return
        definition = {
            rule.id: {"all": [{"m": compile_condition(rule.when)}], "run": _recorder(rule.id)} for rule in ruleset.rules
        }
        with self._lock:
            self._host.register_rulesets({name: definition})
        self._names[ruleset.version] = name

    def matching_rules(self, ruleset: RuleSet, facts: Facts) -> list[str]:
        """The ids of every rule of `ruleset` whose condition the facts meet."""
        key = (ruleset.sha256, tuple(sorted(facts.items())))
        if (known := self._answers.get(key)) is not None:
            return list(known)
        fired = self._evaluate(ruleset, facts)
        if len(self._answers) < self._remember:
            self._answers[key] = tuple(fired)
        return fired

    def _evaluate(self, ruleset: RuleSet, facts: Facts) -> list[str]:
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
            self._answers.clear()
