"""The golden cases: each one its own test, decided in process exactly as the API decides."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.engine import RuleEngine
from app.errors import EventInvalid
from app.events import read_event
from app.routing import decide
from app.ruleset import Rules
from app.schemas import EventIn
from tests.golden import Case, load_cases, mismatches

CASES = load_cases()


def run_case(case: Case, rules: Rules, engine: RuleEngine) -> tuple[int, dict[str, Any]]:
    """The status and body the API would answer for the case's event."""
    try:
        body = EventIn.model_validate(case.body())
        event = read_event(body, rules, pseudonym_key=b"golden")
    except ValidationError as error:
        return 422, {"errors": [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors()]}
    except EventInvalid as error:
        return 422, error.extra()
    return 201, decide(event, engine=engine, registry=rules.registry)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_case(case: Case, rules: Rules, rule_engine: RuleEngine) -> None:
    status, answer = run_case(case, rules, rule_engine)
    assert mismatches(case, status, answer) == []


def test_every_rule_is_exercised_by_a_golden_case(rules: Rules, rule_engine: RuleEngine) -> None:
    fired = set()
    for case in CASES:
        status, answer = run_case(case, rules, rule_engine)
        if status == 201:
            fired.add(answer["rule"]["id"])
    for ruleset in rules.rulesets:
        unexercised = sorted({rule.id for rule in ruleset.rules} - fired)
        assert unexercised == [], f"rules of {ruleset.version} that no golden case exercises"
