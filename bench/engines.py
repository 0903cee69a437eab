"""The engine side by side, in process, on the same mix of events (issue "Under load and faults").

`python -m bench.engines [--events N]`. Four ways to answer "which rules match these facts":

- Reitti's path: `RuleEngine.matching_rules` as the service calls it, with the decision table
  that durable-rules filled for every situation of the input domain when the rule set loaded
  (built here without a disk cache; what that costs is printed);
- durable-rules without the walk: each situation put to durable the first time it comes, then
  remembered (the path before the table remembered per distinct facts, which all-new events
  never repeat);
- the same without the remembered answers: every event goes through durable-rules;
- the reference reading of the YAML (`RuleSet.matching`);
- GoRules' zen-engine evaluating an equivalent decision table: one row per rule, whose
  condition is the rule's `when` written as a ZEN expression, hit policy "collect" (every
  matching row, as Reitti asserts facts so that an overlap shows).

All four must agree on every event; the rates are printed with their ratios.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import time
from typing import Any

import zen

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import ValidEvent, read_event
from app.rules.input_domain import situations
from app.rules.loader import load_rules
from app.rules.model import Condition, Facts, FactValue, Rules, RuleSet, Term
from app.schemas import EventIn
from bench.run import valid_events


def _literal(value: FactValue) -> str:
    return json.dumps(value)


def _zen_term(term: Term) -> str:
    values = "[" + ", ".join(_literal(v) for v in term.values) + "]"
    test = f"{term.fact} == {_literal(term.values[0])}" if len(term.values) == 1 else f"{term.fact} in {values}"
    # A missing fact fails every test in Reitti, negated ones too; ZEN's null would pass `not`.
    return f"({term.fact} != null and not ({test}))" if term.negated else test


def zen_expression(condition: Condition) -> str:
    """A rule's condition as a ZEN expression."""
    parts = [_zen_term(term) for term in condition.terms]
    if condition.any_of:
        parts.append("(" + " or ".join(f"({zen_expression(b)})" for b in condition.any_of) + ")")
    return " and ".join(parts)


def _unary(term: Term) -> str:
    values = ", ".join(_literal(v) for v in term.values)
    return f"$ != null and not($ in [{values}])" if term.negated else values


def _rows(condition: Condition) -> list[dict[str, str]]:
    """A condition as table rows of unary cells, one row per branch of its `any` (DNF)."""
    own = {term.fact: _unary(term) for term in condition.terms}
    if not condition.any_of:
        return [own]
    return [{**own, **row} for branch in condition.any_of for row in _rows(branch)]


def expression_table(ruleset: RuleSet) -> dict[str, Any]:
    """One row per rule, its condition one ZEN expression."""
    return {
        "hitPolicy": "collect",
        "inputs": [{"id": "when", "name": "condition"}],
        "outputs": [{"id": "rule", "name": "rule", "field": "rule"}],
        "rules": [
            {"_id": rule.id, "when": zen_expression(rule.when), "rule": json.dumps(rule.id)} for rule in ruleset.rules
        ],
    }


def column_table(ruleset: RuleSet) -> dict[str, Any]:
    """A column per fact, unary cells, a row per branch of each rule: ZEN's own idiom."""
    facts = sorted({fact for rule in ruleset.rules for fact in rule.when.facts_tested()})
    rows = []
    for rule in ruleset.rules:
        for number, cells in enumerate(_rows(rule.when)):
            rows.append({"_id": f"{rule.id}#{number}", **cells, "rule": json.dumps(rule.id)})
    return {
        "hitPolicy": "collect",
        "inputs": [{"id": fact, "name": fact, "field": fact} for fact in facts],
        "outputs": [{"id": "rule", "name": "rule", "field": "rule"}],
        "rules": rows,
    }


def decision_graph(ruleset: RuleSet, table: dict[str, Any]) -> dict[str, Any]:
    """A JDM graph: input → the decision table → output."""
    return {
        "nodes": [
            {"id": "in", "name": "Request", "type": "inputNode", "position": {"x": 0, "y": 0}},
            {
                "id": "table",
                "name": ruleset.version,
                "type": "decisionTableNode",
                "content": table,
                "position": {"x": 300, "y": 0},
            },
            {"id": "out", "name": "Response", "type": "outputNode", "position": {"x": 600, "y": 0}},
        ],
        "edges": [
            {"id": "a", "sourceId": "in", "targetId": "table", "type": "edge"},
            {"id": "b", "sourceId": "table", "targetId": "out", "type": "edge"},
        ],
    }


def side_by_side(
    facts: list[Facts], ways: dict[str, Any], chunk: int = 500
) -> dict[str, tuple[float, list[list[str]]]]:
    """Time every way on the same events, chunk by chunk in turns, so that the load of a shared
    machine falls on all of them alike; the rates are events over each way's own time."""
    seconds = dict.fromkeys(ways, 0.0)
    answers: dict[str, list[list[str]]] = {label: [] for label in ways}
    order = list(ways)
    for start in range(0, len(facts), chunk):
        part = facts[start : start + chunk]
        for label in order:
            evaluate = ways[label]
            began = time.perf_counter()
            answers[label].extend(evaluate(one) for one in part)
            seconds[label] += time.perf_counter() - began
        order = order[1:] + order[:1]
    results = {}
    for label in ways:
        rate = len(facts) / seconds[label]
        print(f"{label:<48} {rate:>10,.0f} /s")
        results[label] = (rate, answers[label])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--situations", type=int, default=2_000)
    args = parser.parse_args()
    rules = load_rules(REPOSITORY / "rules")
    ruleset = rules.rulesets[0]
    sample = valid_events(rules, args.events)
    pool = [event.facts for _, event in sample]
    picker = random.Random(3)
    mixes = {
        "every event a situation not seen before": pool,
        "the same, each from any of the country's homes, with any language or none": anywhere(rules, sample, picker),
        f"events drawn from {args.situations:,} situations": [
            picker.choice(pool[: args.situations]) for _ in range(args.events)
        ],
    }
    started = time.perf_counter()
    tabled = RuleEngine()
    table = tabled.load(ruleset, situations=functools.partial(situations, rules, ruleset))
    print(
        f"decision table: {len(table.answers):,} situations decided by durable-rules "
        f"in {time.perf_counter() - started:.2f} s (a cold start; a warm one reads them from disk)"
    )
    for title, facts in mixes.items():
        print(f"\n{title}: {len(facts)} events, {len(ruleset.rules)} rules")
        compare(ruleset, tabled, facts)
    assert table.added == 0, "situations outside the table's walk"


def anywhere(rules: Rules, sample: list[tuple[EventIn, ValidEvent]], picker: random.Random) -> list[Facts]:
    """The sample's events moved to a random municipality of the country, in a random language.

    The domain walk tries the area's homes and one outside, and a few languages: these
    events are facts it never produced (for the table, situations it stands for).
    """
    homes = sorted(rules.registry.municipalities)
    letters = "abcdefghijklmnopqrstuvwxyz"
    moved = []
    for body, _ in sample:
        language = picker.choice([None, "fi", "sv", picker.choice(letters) + picker.choice(letters)])
        customer = body.customer.model_copy(update={"home_municipality": picker.choice(homes), "language": language})
        try:
            event = read_event(body.model_copy(update={"customer": customer}), rules, pseudonym_key=b"bench")
        except EventInvalid:
            continue
        moved.append(event.facts)
    return moved


def compare(ruleset: RuleSet, tabled: RuleEngine, facts: list[Facts]) -> None:
    """Time every way on the same events; they must all agree."""
    remembered = RuleEngine()
    remembered.load(ruleset)
    plain = RuleEngine(remember=0)
    plain.load(ruleset)
    graphs = {
        "expressions": json.dumps(decision_graph(ruleset, expression_table(ruleset))),
        "columns": json.dumps(decision_graph(ruleset, column_table(ruleset))),
    }
    # A loader that hands back compiled content: zen-engine's fastest path (it does not
    # cache what the loader returns; compiled content saves a parse per evaluation).
    compiled = {key: zen.ZenDecisionContent(graph) for key, graph in graphs.items()}
    zen_engine = zen.ZenEngine({"loader": lambda key: compiled[key]})

    def by_zen(table: str) -> Any:
        def evaluate(one: Facts) -> list[str]:
            # rows of one rule's branches may both match: the rule matched once
            return sorted({row["rule"] for row in zen_engine.evaluate(table, dict(one))["result"]})

        return evaluate

    results = side_by_side(
        facts,
        {
            "Reitti's path (durable's decision table)": lambda one: tabled.matching_rules(ruleset, one),
            "durable-rules, answers remembered by situation": lambda one: remembered.matching_rules(ruleset, one),
            "durable-rules, every event": lambda one: plain.matching_rules(ruleset, one),
            "reference reading of the YAML": lambda one: [r.id for r in ruleset.matching(one)],
            "zen-engine, a column per fact, unary cells": by_zen("columns"),
            "zen-engine, one expression per rule": by_zen("expressions"),
        },
    )
    baseline = next(iter(results.values()))[1]
    for label, (_, answers) in results.items():
        disagreements = sum(sorted(a) != sorted(b) for a, b in zip(answers, baseline, strict=True))
        assert disagreements == 0, f"{label} disagrees on {disagreements} events"
    zen_rate = max(
        results["zen-engine, a column per fact, unary cells"][0], results["zen-engine, one expression per rule"][0]
    )
    for label, (rate, _) in results.items():
        print(f"  {label}: {rate / zen_rate:.2f}× the faster zen-engine table")
    print("all agree on every event")
    remembered.close()
    plain.close()


if __name__ == "__main__":
    main()
