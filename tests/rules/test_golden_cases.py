"""The golden cases: each one its own test, decided in process exactly as the API decides."""

from __future__ import annotations

import pytest

from app.rules.cases import Case, load_cases, mismatches, run_case, run_cases
from app.rules.engine import RuleEngine
from app.rules.model import Rules

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_case(case: Case, rules: Rules, rule_engine: RuleEngine) -> None:
    status, answer = run_case(case, rules, rule_engine)
    assert mismatches(case, status, answer) == []


def test_every_rule_has_a_case_and_every_case_a_rule(rules: Rules, rule_engine: RuleEngine) -> None:
    report = run_cases(CASES, rules, rule_engine, [r.version for r in rules.rulesets])
    assert report.rules_without_case == {}
    assert report.cases_with_unknown_rule == {}
    assert report.failures == {}


def test_the_report_names_a_lost_rule_and_an_unexercised_one(rules: Rules, rule_engine: RuleEngine) -> None:
    """The coverage gate can fail: a case naming a removed rule, a rule with no case."""
    renamed = [
        Case(c.name, c.source, c.event, {**c.expect, "rule": "oeo.begin"}) if c.expect.get("rule") == "oeo.start" else c
        for c in CASES
        if c.expect.get("rule") != "employment_plan"
    ]
    report = run_cases(renamed, rules, rule_engine, ["2025-01-01"])
    assert set(report.cases_with_unknown_rule.values()) == {"oeo.begin"}
    assert "employment_plan" in report.rules_without_case["2025-01-01"]
    assert not report.passed
