"""Golden cases: YAML files of events with the decision each must get (tests/cases/).

Each case is a sentence (`name`), an `event` and what to `expect`: the handler, provider,
customership, cost group, basis, whether the decision is an interpretation, and the rule
that decides it; or, for an invalid event, the status and the field the error names.
`reitti rules test` and the test suite run the same cases through the same code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn

CASES_DIR = REPOSITORY / "tests" / "cases"
DEFAULT_OCCURRED_AT = "2025-03-03T09:15:00+02:00"
SAMPLE_IDS = {"jobseeker": "131052-308T", "person": "010594Y9032", "employer": "0112038-9"}


@dataclass(frozen=True)
class Case:
    """One golden case: a sentence, an event and what the decision must be."""

    name: str
    source: str
    event: dict[str, Any]
    expect: dict[str, Any]

    def body(self, event_id: str = "golden-1") -> dict[str, Any]:
        """The request body, with the defaults the case leaves out."""
        customer = dict(self.event.get("customer", {}))
        customer.setdefault("id", SAMPLE_IDS.get(customer.get("type", ""), "opaque-1"))
        return {
            "event_id": event_id,
            "event_type": self.event["event_type"],
            "occurred_at": self.event.get("occurred_at", DEFAULT_OCCURRED_AT),
            "customer": customer,
            "attributes": self.event.get("attributes", {}),
        }


def load_cases(folder: Path = CASES_DIR) -> list[Case]:
    """Every case of every file, in file order; names must be unique."""
    cases = []
    for path in sorted(folder.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append(Case(raw["name"], path.name, raw["event"], raw["expect"]))
    names = [case.name for case in cases]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"case names must be unique: {duplicated}")
    return cases


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


def mismatches(case: Case, status: int, answer: dict[str, Any]) -> list[str]:
    """How the answer differs from what the case expects; empty when it agrees."""
    expect = case.expect
    if "status" in expect:
        if status != expect["status"]:
            return [f"status {status}, expected {expect['status']}: {answer}"]
        wanted = ["body", *expect["field"]]
        locs = [error["loc"] for error in answer.get("errors", [])]
        return [] if wanted in locs else [f"no error at {wanted}; errors at {locs}"]
    if status not in (200, 201):
        return [f"status {status}: {answer}"]
    found = {
        "rule": answer["rule"]["id"],
        "handler": answer["handler"]["unit"],
        "provider": answer["provider"]["unit"],
        "customership": None
        if answer["customership"] is None
        else {"unit": answer["customership"]["unit"], "role": answer["customership"]["role"]},
        "cost_group": answer["cost_group"],
        "basis": answer["basis"],
        "interpretation": any(note["kind"] == "interpretation" for note in answer["notes"]),
    }
    return [
        f"{key}: {found[key]!r}, expected {expect[key]!r} (rule {answer['rule']['id']})"
        for key in found
        if key in expect and found[key] != expect[key]
    ]


@dataclass
class CaseReport:
    """What running the golden cases found."""

    cases: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)
    rules_without_case: dict[str, list[str]] = field(default_factory=dict)
    cases_with_unknown_rule: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No failure, no rule without a case, no case naming a rule that is gone."""
        return not (self.failures or self.rules_without_case or self.cases_with_unknown_rule)


def run_cases(cases: Sequence[Case], rules: Rules, engine: RuleEngine, versions: Iterable[str]) -> CaseReport:
    """Run every case; report failures and, for `versions`, the rules no case exercises."""
    report = CaseReport(cases=len(cases))
    known = {rule.id for ruleset in rules.rulesets for rule in ruleset.rules}
    fired: dict[str, set[str]] = {}
    for case in cases:
        status, answer = run_case(case, rules, engine)
        if "rule" in case.expect and case.expect["rule"] not in known:
            report.cases_with_unknown_rule[case.name] = case.expect["rule"]
        if problems := mismatches(case, status, answer):
            report.failures[case.name] = problems
        if status == 201:
            fired.setdefault(answer["rule"]["ruleset"], set()).add(answer["rule"]["id"])
    for version in versions:
        ruleset = rules.version(version)
        assert ruleset is not None, version
        missing = sorted({rule.id for rule in ruleset.rules} - fired.get(version, set()))
        if missing:
            report.rules_without_case[version] = missing
    return report
