"""The rules as data: the loader's strictness, the whole input domain, the engine's hazards."""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine, compile_condition
from app.rules.events import read_event
from app.rules.input_domain import walk
from app.rules.loader import load_rules
from app.rules.model import Rules, RulesError
from app.schemas import EventIn


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A copy of rules/ a test may break."""
    target = tmp_path / "rules"
    shutil.copytree(REPOSITORY / "rules", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


OEO = "2025-01-01/4.5-oeo.yaml"


class TestLoader:
    def test_shipped_rules_load_with_a_stable_sha256(self, rules: Rules) -> None:
        again = load_rules(REPOSITORY / "rules")
        assert [r.sha256 for r in again.rulesets] == [r.sha256 for r in rules.rulesets]
        assert rules.rulesets[0].version == "2025-01-01"

    def test_any_change_changes_the_sha256(self, rules: Rules, rules_copy: Path) -> None:
        edit(rules_copy / OEO, "Opintojen soveltuvuuden", "Opintojen  soveltuvuuden")
        assert load_rules(rules_copy).rulesets[0].sha256 != rules.rulesets[0].sha256

    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("    handler: central-oeo\n", "    handler: central-oeo\n    handlr: x\n", "unknown key(s) handlr"),
            ("    handler: central-oeo\n", "    handler: central-oeo\n    handler: H\n", "duplicate key"),
            ("    handler: central-oeo\n", "    handler: central-ooe\n", "unknown unit 'central-ooe'"),
            ('basis: ["2.2.3 a"]', 'basis: ["2.2.3 c"]', "basis '2.2.3 c' is not a section of the plan"),
            ("event_type: oeo.start\n", "event_type: oeo.begin\n", "event_type: 'oeo.begin' is not one of"),
            ("central_integration_customer: false", "central_integration_customer: 'false'", "wrong type"),
            ("role: central_expert", "role: boss", "unknown role 'boss'"),
            ("    handler: central-oeo\n", "    handler: central-oeo\n    cost_group: abroad\n", "cost_group 'abroad'"),
        ],
        ids=[
            "unknown key",
            "duplicate key",
            "unknown unit",
            "bad section",
            "unknown value",
            "string for boolean",
            "unknown role",
            "unknown cost group",
        ],
    )
    def test_bad_rule_is_refused_naming_file_and_rule(self, rules_copy: Path, old: str, new: str, message: str) -> None:
        edit(rules_copy / OEO, old, new)
        with pytest.raises(RulesError) as error:
            load_rules(rules_copy)
        assert message in str(error.value)
        assert "4.5-oeo.yaml" in str(error.value)
        assert "rule oeo." in str(error.value)

    def test_a_rules_own_cost_group_wins_over_the_providers_and_the_diff_sees_it(self, rules_copy: Path) -> None:
        """CATALOGUE §7.4: bought training's administration for an outside customer costs `external`,
        though its provider is central; a version without the rule's own group differs in that alone."""
        from app.rules.input_domain import diff

        shutil.copytree(rules_copy / "2025-01-01", rules_copy / "2026-01-01")
        edit(rules_copy / "2026-01-01" / "ruleset.yaml", 'version: "2025-01-01"', 'version: "2026-01-01"')
        edit(rules_copy / "2026-01-01" / "ruleset.yaml", "valid_from: 2025-01-01", "valid_from: 2026-01-01")
        edit(
            rules_copy / "2026-01-01" / "7-outside-area.yaml",
            "    provider: central-training\n    cost_group: external\n",
            "    provider: central-training\n",
        )
        loaded = load_rules(rules_copy)
        before, after = loaded.rulesets
        rule = "outside_area.bought_training_administration"
        assert before.rules_by_id[rule].cost_group == "external"
        assert after.rules_by_id[rule].cost_group is None
        engine = RuleEngine()
        try:
            for ruleset in loaded.rulesets:
                engine.load(ruleset)
            report = diff(loaded, before, after, engine, event_types={"labour_market_training.selection"}).as_json()
        finally:
            engine.close()
        changes = report["by_event_type"][0]["changes"]
        assert {(c["before"]["cost_group"], c["after"]["cost_group"]) for c in changes} == {
            ("external", "shared_central")
        }
        assert all(c["before"]["handler"] == c["after"]["handler"] == "central-training" for c in changes)

    def test_duplicate_rule_id_names_both_files(self, rules_copy: Path) -> None:
        edit(rules_copy / OEO, "  - id: oeo.end\n", "  - id: employment_plan\n")
        with pytest.raises(RulesError, match=r"4.2-local-services.yaml"):
            load_rules(rules_copy)

    def test_a_version_ends_where_the_next_begins_and_overlaps_are_refused(self, rules_copy: Path) -> None:
        from datetime import date

        shutil.copytree(rules_copy / "2025-01-01", rules_copy / "2026-01-01")
        edit(rules_copy / "2026-01-01" / "ruleset.yaml", 'version: "2025-01-01"', 'version: "2026-01-01"')
        edit(rules_copy / "2026-01-01" / "ruleset.yaml", "valid_from: 2025-01-01", "valid_from: 2026-01-01")
        loaded = load_rules(rules_copy)
        assert loaded.in_force(date(2024, 12, 31)) is None
        assert loaded.in_force(date(2025, 12, 31)).version == "2025-01-01"  # type: ignore[union-attr]
        assert loaded.in_force(date(2026, 1, 1)).version == "2026-01-01"  # type: ignore[union-attr]
        edit(
            rules_copy / "2025-01-01" / "ruleset.yaml",
            "valid_from: 2025-01-01",
            "valid_from: 2025-01-01\nvalid_to: 2026-01-01",
        )
        with pytest.raises(RulesError, match="overlap"):
            load_rules(rules_copy)
        edit(rules_copy / "2025-01-01" / "ruleset.yaml", "valid_to: 2026-01-01", "valid_to: 2025-06-30")
        gap = load_rules(rules_copy)
        assert gap.in_force(date(2025, 7, 1)) is None  # a named end leaves a gap: no rules, a 422


@pytest.mark.slow
def test_every_valid_point_of_the_domain_finds_exactly_one_rule(rules: Rules, rule_engine: RuleEngine) -> None:
    """Walks every event type × customer type × home × attribute value (absence included)."""
    for ruleset in rules.rulesets:
        report = walk(rules, ruleset, rule_engine)
        assert report.gaps == [], "valid events that no rule decides"
        assert report.overlaps == [], "valid events that several rules decide"
        assert report.disagreements == [], "events the engine and the reference reading decide differently"
        assert set(report.by_rule) == {rule.id for rule in ruleset.rules}, "rules that no valid event reaches"
        assert report.valid > 30_000
        assert report.invalid > 0


def test_the_walk_finds_a_gap_and_an_overlap(rules_copy: Path) -> None:
    """The walk itself can fail: break the rules and it says where."""
    edit(
        rules_copy / OEO,
        "event_type: [oeo.follow_up, oeo.sanction, oeo.statement]",
        "event_type: [oeo.start, oeo.sanction, oeo.statement]",
    )
    broken = load_rules(rules_copy)
    engine = RuleEngine()
    engine.load(broken.rulesets[0])
    try:
        report = walk(broken, broken.rulesets[0], engine, event_types={"oeo.start", "oeo.follow_up"})
    finally:
        engine.close()
    assert {p["event_type"] for p in report.gaps} == {"oeo.follow_up"}
    assert {p["event_type"] for p, _ in report.overlaps} == {"oeo.start"}
    assert not report.sound


class TestEngine:
    def test_conditions_compile_to_the_operators_we_prove(self, rules: Rules) -> None:
        """Only equality, $neq, $and and $or: the operators the domain walk exercises."""
        used: set[str] = set()

        def collect(node: object) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key.startswith("$"):
                        used.add(key)
                    collect(value)
            elif isinstance(node, list):
                for item in node:
                    collect(item)

        for rule in rules.rulesets[0].rules:
            collect(compile_condition(rule.when))
        assert used <= {"$and", "$or", "$neq"}

    def test_threads_get_the_reference_answer(self, rules: Rules, rule_engine: RuleEngine) -> None:
        """One engine used from sixteen threads: every answer equals the reference reading."""
        ruleset = rules.rulesets[0]
        events = []
        picker = random.Random(7)
        types = sorted(rules.registry.event_types)
        while len(events) < 400:
            body = {
                "event_id": "t",
                "event_type": picker.choice(types),
                "occurred_at": "2025-05-05T12:00:00+03:00",
                "customer": {
                    "type": picker.choice(["jobseeker", "employer", "person"]),
                    "id": "x1",
                    "home_municipality": picker.choice(["244", "564", "091", "139"]),
                    "language": "fi",
                },
                "attributes": {},
            }
            try:
                events.append(read_event(EventIn.model_validate(body), rules, pseudonym_key=b"k"))
            except EventInvalid:
                continue
        wrong: list[str] = []

        def work() -> None:
            for event in events:
                expected = [r.id for r in ruleset.rules if r.when.holds(event.facts)]
                if rule_engine.decide_by_durable(ruleset, event.facts) != expected:
                    wrong.append(event.event_type.code)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []

    def test_sessions_do_not_leak(self, rules: Rules, rule_engine: RuleEngine) -> None:
        """Over 1,024 evaluations: a leaked session would exhaust durable's 1,024 slots."""
        ruleset = rules.rulesets[0]
        facts = {
            "event_type": "employment_plan",
            "customer_type": "jobseeker",
            "home_municipality": "244",
            "area": "inside",
            "central_integration_customer": False,
        }
        for _ in range(1500):
            assert rule_engine.decide_by_durable(ruleset, facts) == ["employment_plan"]

    def test_a_number_never_matches_a_code(self, rules: Rules, rule_engine: RuleEngine) -> None:
        """The engine matches '564' == 564; typed facts are why that cannot happen in Reitti."""
        ruleset = rules.rulesets[0]
        facts = {
            "event_type": "information_advice",
            "customer_type": "person",
            "channel": "walk_in",
            "topic": "training",
            "home_municipality": 564,
            "area": "inside",
            "language": "fi",
            "central_integration_customer": False,
        }
        loose = rule_engine.decide_by_durable(ruleset, facts)  # type: ignore[arg-type]
        strict = [r.id for r in ruleset.rules if r.when.holds(facts)]  # type: ignore[arg-type]
        assert loose == ["information_advice.walk_in.oulu"]
        assert strict == ["information_advice.walk_in"]
        body = {
            "event_id": "t",
            "event_type": "information_advice",
            "occurred_at": "2025-05-05T12:00:00+03:00",
            "customer": {"type": "person", "id": "x1", "home_municipality": 564},
            "attributes": {"channel": "walk_in", "topic": "training"},
        }
        with pytest.raises(ValueError, match="home_municipality"):
            EventIn.model_validate(body)
