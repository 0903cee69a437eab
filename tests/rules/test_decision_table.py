"""The engine's decision table: durable's answers, by situation, cached by the rule set's sha256."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import REPOSITORY
from app.errors import EventInvalid
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.input_domain import LANGUAGES, loaded_engine, points, situations
from app.rules.loader import load_rules
from app.rules.model import Rules, RuleSet
from app.schemas import EventIn

OEO = "2025-01-01/4.5-oeo.yaml"
OEO_TYPES = {"oeo.start", "oeo.follow_up"}


@pytest.fixture(scope="module")
def table_engine(rules: Rules, tmp_path_factory: pytest.TempPathFactory) -> RuleEngine:
    """An engine whose tables were filled by durable, as at a cold start."""
    return loaded_engine(rules, tmp_path_factory.mktemp("cache"))


def _engine(ruleset: RuleSet, rules: Rules, cache: Path, event_types: set[str] | None = None) -> RuleEngine:
    engine = RuleEngine(cache_dir=cache)
    engine.load(ruleset, situations=functools.partial(situations, rules, ruleset, event_types))
    return engine


@pytest.mark.slow
def test_the_table_answers_as_durable_on_every_point_of_the_domain(rules: Rules, table_engine: RuleEngine) -> None:
    """Every valid point, every home of the area and one outside, every language on every event type."""
    for ruleset in rules.rulesets:
        table = table_engine.table(ruleset)
        assert table.source == "durable"
        valid = 0
        for body in points(rules, ruleset, every_type_languages=(*LANGUAGES, "de")):
            try:
                facts = read_event(body, rules, pseudonym_key=b"test", ruleset=ruleset).facts
            except EventInvalid:
                continue
            valid += 1
            assert table_engine.matching_rules(ruleset, facts) == table_engine.decide_by_durable(ruleset, facts), facts
        assert valid > 100_000
        assert table.added == 0, "points of the domain that the table's walk missed"


def test_any_home_and_language_is_decided_as_durable_decides_it(rules: Rules, table_engine: RuleEngine) -> None:
    """The walk tries representatives only: any real home and any language code must agree with durable."""
    ruleset = rules.rulesets[0]
    samples = _sample_bodies(rules)

    @settings(max_examples=300, deadline=None)
    @given(
        sample=st.integers(0, len(samples) - 1),
        home=st.sampled_from(sorted(rules.registry.municipalities)),
        language=st.none() | st.from_regex(r"[a-z]{2}", fullmatch=True),
    )
    def agrees(sample: int, home: str, language: str | None) -> None:
        body = samples[sample]
        customer = body.customer.model_copy(update={"home_municipality": home, "language": language})
        try:
            facts = read_event(body.model_copy(update={"customer": customer}), rules, pseudonym_key=b"t").facts
        except EventInvalid:
            return
        assert table_engine.matching_rules(ruleset, facts) == table_engine.decide_by_durable(ruleset, facts)

    agrees()
    assert table_engine.table(ruleset).added == 0, "homes or languages that the table's walk missed"


def _sample_bodies(rules: Rules) -> list[EventIn]:
    """Every 37th point of the domain: each event type, customer type and attribute mix is near."""
    return list(points(rules, rules.rulesets[0]))[::37]


def test_a_warm_start_reads_the_table_that_a_cold_start_wrote(rules: Rules, tmp_path: Path) -> None:
    ruleset = rules.rulesets[0]
    cold = _engine(ruleset, rules, tmp_path, OEO_TYPES)
    warm = _engine(ruleset, rules, tmp_path, OEO_TYPES)
    assert (cold.table(ruleset).source, warm.table(ruleset).source) == ("durable", "cache")
    assert warm.table(ruleset).answers == cold.table(ruleset).answers
    assert len(warm.table(ruleset).answers) > 5


def test_a_changed_rule_set_is_not_served_a_stale_table(rules: Rules, tmp_path: Path) -> None:
    """Move oeo.start's rule onto oeo.follow_up: a new sha256, and durable decides anew."""
    cache = tmp_path / "cache"
    shipped = rules.rulesets[0]
    before = _engine(shipped, rules, cache, OEO_TYPES)
    copy = tmp_path / "rules"
    shutil.copytree(REPOSITORY / "rules", copy)
    path = copy / OEO
    text = path.read_text(encoding="utf-8")
    old = "event_type: [oeo.follow_up, oeo.sanction, oeo.statement]"
    assert old in text
    path.write_text(text.replace(old, "event_type: [oeo.start, oeo.sanction, oeo.statement]", 1), encoding="utf-8")
    changed = load_rules(copy).rulesets[0]
    assert changed.sha256 != shipped.sha256
    # Even a file that claims the new name but was written for the old rule set is refused.
    (written,) = cache.iterdir()
    shutil.copy(written, cache / written.name.replace(shipped.sha256, changed.sha256))

    engine = _engine(changed, rules, cache, OEO_TYPES)

    assert engine.table(changed).source == "durable"
    changed_answers = 0
    for facts in situations(rules, changed, OEO_TYPES):
        answer = engine.matching_rules(changed, facts)
        assert answer == engine.decide_by_durable(changed, facts)
        changed_answers += answer != before.matching_rules(shipped, facts)
    assert changed_answers > 0, "the change must show in the answers, or this test proves nothing"
    assert engine.table(changed).added == 0
    assert _engine(changed, rules, cache, OEO_TYPES).table(changed).source == "cache"


def test_an_unreadable_cache_is_rebuilt(rules: Rules, tmp_path: Path) -> None:
    ruleset = rules.rulesets[0]
    _engine(ruleset, rules, tmp_path, OEO_TYPES)
    (written,) = tmp_path.iterdir()
    written.write_text('{"format": 1, "answers": [', encoding="utf-8")
    again = _engine(ruleset, rules, tmp_path, OEO_TYPES)
    assert again.table(ruleset).source == "durable"
    assert _engine(ruleset, rules, tmp_path, OEO_TYPES).table(ruleset).source == "cache"


def test_a_situation_outside_the_table_is_put_to_durable(rules: Rules, tmp_path: Path) -> None:
    """A table walked over some event types only still answers the others, by durable."""
    ruleset = rules.rulesets[0]
    engine = _engine(ruleset, rules, tmp_path, OEO_TYPES)
    other = next(f for f in situations(rules, ruleset) if f["event_type"] not in OEO_TYPES)
    assert engine.matching_rules(ruleset, other) == engine.decide_by_durable(ruleset, other) != []
    assert engine.table(ruleset).added == 1
