"""Reading and running the golden cases of tests/cases/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"
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


def load_cases() -> list[Case]:
    """Every case of every file, in file order."""
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append(Case(raw["name"], path.name, raw["event"], raw["expect"]))
    names = [case.name for case in cases]
    duplicated = {name for name in names if names.count(name) > 1}
    assert not duplicated, f"case names must be unique: {sorted(duplicated)}"
    return cases


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
        "handler": answer["handler"]["unit"],
        "provider": answer["provider"]["unit"],
        "customership": None
        if answer["customership"] is None
        else {"unit": answer["customership"]["unit"], "role": answer["customership"]["role"]},
        "cost_group": answer["cost_group"],
        "basis": answer["basis"],
        "interpretation": any("interpretation" in note for note in answer["notes"]),
    }
    return [
        f"{key}: {found[key]!r}, expected {expect[key]!r} (rule {answer['rule']['id']})"
        for key in found
        if key in expect and found[key] != expect[key]
    ]
