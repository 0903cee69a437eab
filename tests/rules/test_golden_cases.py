"""The golden cases: each one its own test, decided in process exactly as the API decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import REPOSITORY
from app.rules.cases import CASES_DIR, Case, load_cases, mismatches, run_case, run_cases
from app.rules.engine import RuleEngine
from app.rules.model import Rules, RulesError

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_case(case: Case, rules: Rules, rule_engine: RuleEngine) -> None:
    status, answer = run_case(case, rules, rule_engine)
    assert mismatches(case, status, answer) == []


def test_every_rule_has_a_case_and_every_case_a_rule(rules: Rules, rule_engine: RuleEngine) -> None:
    report = run_cases(CASES, rules, rule_engine, [r.version for r in rules.rulesets])
    assert report.failures == {}
    assert report.cases_with_unknown_rule == {}
    assert report.rules_without_case == {}


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


def test_the_cases_live_beside_the_rules_not_in_the_tests() -> None:
    """`reitti rules test` must work wherever the rules are (an image, an installed package)."""
    assert CASES_DIR == REPOSITORY / "rules" / "cases"
    assert {case.source for case in CASES} == {path.name for path in CASES_DIR.glob("*.yaml")}
    assert not (REPOSITORY / "tests" / "cases").exists()


def test_a_rule_that_fires_is_not_covered_by_a_case_that_does_not_name_it(
    rules: Rules, rule_engine: RuleEngine
) -> None:
    """Coverage counts the rules a case asserts, not the ones that happen to fire."""
    unnamed = [
        Case(c.name, c.source, c.event, {k: v for k, v in c.expect.items() if k != "rule"})
        if c.expect.get("rule") == "employment_plan"
        else c
        for c in CASES
    ]
    report = run_cases(unnamed, rules, rule_engine, ["2025-01-01"])
    assert report.failures == {}
    assert report.rules_without_case == {"2025-01-01": ["employment_plan"]}


# A valid case; each test below breaks one line of it. Line numbers: name 1, event 2, expect 6,
# rule 7, handler 8.
VALID = """\
- name: An employment plan is drawn up by the municipality's coach
  event:
    event_type: employment_plan
    customer: {type: jobseeker, home_municipality: "564"}
    attributes: {}
  expect:
    rule: employment_plan
    handler: local-564
    provider: local-564
    customership: {unit: local-564, role: municipal_coach}
    cost_group: local
    basis: ["2.2.1 b"]
    interpretation: false
"""
EXPECT = VALID[VALID.index("  expect:") :]


def _cases(tmp_path: Path, text: str) -> list[Case]:
    (tmp_path / "broken.yaml").write_text(text, encoding="utf-8")
    return load_cases(tmp_path)


def test_the_valid_case_loads_and_holds(tmp_path: Path, rules: Rules, rule_engine: RuleEngine) -> None:
    [case] = _cases(tmp_path, VALID)
    assert case.line == 1
    assert mismatches(case, *run_case(case, rules, rule_engine)) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    handler: local-564\n", "    handlr: local-564\n", 8, "unknown key(s) handlr"),
        ("    handler: local-564\n", "    handler: local-564\n    handler: H\n", 9, "duplicate key 'handler'"),
        (EXPECT, "  expect: {}\n", 6, "expect must say what the decision is"),
        ("    rule: employment_plan\n", "", 6, "must name the rule"),
        ("  expect:\n", "  expcet:\n", 6, "unknown key(s) expcet"),
        ("    attributes: {}\n", "    attributs: {}\n", 5, "unknown key(s) attributs"),
    ],
    ids=["misspelt key", "duplicate key", "empty expect", "no rule", "misspelt expect", "misspelt event key"],
)
def test_a_case_that_could_pass_by_accident_is_refused_with_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in VALID
    with pytest.raises(RulesError) as error:
        _cases(tmp_path, VALID.replace(old, new))
    assert "broken.yaml" in str(error.value)
    assert f"line {line}" in str(error.value)
    assert message in str(error.value)


def test_an_invalid_events_case_names_status_and_field_and_nothing_else(tmp_path: Path) -> None:
    invalid = VALID.replace(EXPECT, "  expect:\n    status: 422\n    rule: employment_plan\n")
    with pytest.raises(RulesError, match=r"broken.yaml: line 8: .*unknown key\(s\) rule"):
        _cases(tmp_path, invalid)
    with pytest.raises(RulesError, match=r"broken.yaml: line 6: .*both status and field"):
        _cases(tmp_path, VALID.replace(EXPECT, "  expect:\n    status: 422\n"))


def test_a_case_name_used_twice_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"broken.yaml: line 14: .*used in broken.yaml, line 1"):
        _cases(tmp_path, VALID + VALID)
