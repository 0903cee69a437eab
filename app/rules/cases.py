"""Golden cases: YAML files of events with the decision each must get (rules/cases/).

Each case is a sentence (`name`), an `event` and what to `expect`: the rule that decides
it, and any of the handler, provider, customership, cost group, basis and whether the
decision is an interpretation; or, for an invalid event, the status and the field the error
names. The cases are read as strictly as the rules: an unknown or duplicate key, an empty
`expect` or a decision without its rule is refused, naming the file and the line, so that no
case passes by accident. A rule counts as covered only by a case that names it and holds.
They live beside the rules (`rules/cases/`), so that `reitti rules test` runs wherever the
rules are; `reitti rules test` and the test suite run the same cases through the same code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules, RulesError
from app.rules.routing import decide
from app.rules.strict_yaml import Located, read_yaml
from app.schemas import EventIn

# Beside the rules they test: `reitti rules test` reads <rules dir>/cases by default.
CASES_FOLDER = "cases"
CASES_DIR = REPOSITORY / "rules" / CASES_FOLDER
DEFAULT_OCCURRED_AT = "2025-03-03T09:15:00+02:00"
SAMPLE_IDS = {"jobseeker": "131052-308T", "person": "010594Y9032", "employer": "0112038-9"}
CASE_KEYS = ("name", "event", "expect")
EVENT_KEYS = ("event_type", "occurred_at", "customer", "attributes")
# A decision's case names its rule and may assert any of the rest; an invalid event's, both keys.
DECISION_KEYS = ("rule", "handler", "provider", "customership", "cost_group", "basis", "interpretation")
INVALID_KEYS = ("status", "field")


class CaseError(RulesError):
    """A case file is not valid; the message names the file and the line."""


@dataclass(frozen=True)
class Case:
    """One golden case: a sentence, an event and what the decision must be."""

    name: str
    source: str
    event: dict[str, Any]
    expect: dict[str, Any]
    line: int = 0  # of the case in its file, 1-based

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
    """Every case of every file, in file order, read strictly; names must be unique."""
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise CaseError(f"{folder}: no case files (*.yaml)")
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in paths:
        raw = read_yaml(path, located=True)
        if not isinstance(raw, list) or not raw:
            raise CaseError(f"{path}: expected a non-empty list of cases")
        for i, entry in enumerate(raw):
            case = _read_case(entry, path, i)
            if case.name in seen:
                raise CaseError(f"{path}: line {case.line}: case name {case.name!r} is used in {seen[case.name]} too")
            seen[case.name] = f"{case.source}, line {case.line}"
            cases.append(case)
    return cases


def _line(mapping: Any, key: str | None = None) -> int:
    if not isinstance(mapping, Located):
        return 0
    return mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line


def _keys(mapping: Any, allowed: Sequence[str], path: Path, line: int, what: str) -> None:
    """`mapping` is a mapping of `allowed` keys only; else an error at the first unknown key's line."""
    if not isinstance(mapping, dict):
        raise CaseError(f"{path}: line {line}: {what} must be a mapping, got {type(mapping).__name__}")
    unknown = [key for key in mapping if key not in allowed]
    if unknown:
        raise CaseError(
            f"{path}: line {_line(mapping, unknown[0])}: {what}: unknown key(s) "
            f"{', '.join(map(str, unknown))} (known: {', '.join(allowed)})"
        )


def _read_case(entry: Any, path: Path, index: int) -> Case:
    line = _line(entry)
    if not isinstance(entry, dict):
        raise CaseError(f"{path}: case {index + 1}: expected a mapping with {', '.join(CASE_KEYS)}")
    name = entry.get("name")
    label = f"case {name!r}" if isinstance(name, str) else f"case {index + 1}"
    where = f"{path}: line {line}"
    _keys(entry, CASE_KEYS, path, line, label)
    for key in CASE_KEYS:
        if key not in entry:
            raise CaseError(f"{where}: {label}: missing key {key!r}")
    if not isinstance(name, str) or not name.strip():
        raise CaseError(f"{path}: line {_line(entry, 'name')}: {label}: name must be a non-empty text")
    event, expect = entry["event"], entry["expect"]
    _keys(event, EVENT_KEYS, path, _line(entry, "event"), f"{label} event")
    for key in ("event_type", "customer"):
        if key not in event:
            raise CaseError(f"{path}: line {_line(entry, 'event')}: {label} event: missing key {key!r}")
    if not isinstance(event.get("attributes", {}), dict):
        raise CaseError(f"{path}: line {_line(event, 'attributes')}: {label} event: attributes must be a mapping")
    expect_line = _line(entry, "expect")
    expect_at = f"{path}: line {expect_line}"
    if not isinstance(expect, dict) or not expect:
        raise CaseError(f"{expect_at}: {label}: expect must say what the decision is: a non-empty mapping")
    if "status" in expect or "field" in expect:
        _keys(expect, INVALID_KEYS, path, expect_line, f"{label} expect (an invalid event)")
        if set(expect) != set(INVALID_KEYS):
            raise CaseError(f"{expect_at}: {label}: an invalid event's case expects both status and field")
        status, field_ = expect["status"], expect["field"]
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status < 500:
            raise CaseError(f"{expect_at}: {label}: status must be a 4xx code")
        if not isinstance(field_, list) or not field_:
            raise CaseError(f"{expect_at}: {label}: field must be a non-empty list, the error's location")
    else:
        _keys(expect, DECISION_KEYS, path, expect_line, f"{label} expect")
        if not isinstance(expect.get("rule"), str) or not expect["rule"]:
            raise CaseError(f"{expect_at}: {label}: expect must name the rule that decides the event")
        if "interpretation" in expect and not isinstance(expect["interpretation"], bool):
            raise CaseError(f"{expect_at}: {label}: interpretation must be true or false")
        if "basis" in expect and not isinstance(expect["basis"], list):
            raise CaseError(f"{expect_at}: {label}: basis must be a list of plan sections")
        customership = expect.get("customership")
        if customership is not None:
            _keys(customership, ("unit", "role"), path, _line(expect, "customership"), f"{label} expect customership")
    return Case(name, path.name, event, expect, line)


def run_case(case: Case, rules: Rules, engine: RuleEngine) -> tuple[int, dict[str, Any]]:
    """The status and body the API would answer for the case's event."""
    try:
        body = EventIn.model_validate(case.body())
        event = read_event(body, rules, pseudonym_key=b"golden")
    except ValidationError as error:
        return 422, {"errors": [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors()]}
    except EventInvalid as error:
        return 422, error.extra()
    return 201, decide(event, engine=engine, registry=rules.registry).model_dump(mode="json")


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
    # version -> the rules a case names in `expect` and holds for: a rule that merely fires is not covered.
    asserted: dict[str, set[str]] = {}
    for case in cases:
        status, answer = run_case(case, rules, engine)
        if "rule" in case.expect and case.expect["rule"] not in known:
            report.cases_with_unknown_rule[case.name] = case.expect["rule"]
        if problems := mismatches(case, status, answer):
            report.failures[case.name] = problems
        elif status == 201 and "rule" in case.expect:
            asserted.setdefault(answer["rule"]["ruleset"], set()).add(case.expect["rule"])
    for version in versions:
        ruleset = rules.version(version)
        assert ruleset is not None, version
        missing = sorted({rule.id for rule in ruleset.rules} - asserted.get(version, set()))
        if missing:
            report.rules_without_case[version] = missing
    return report
