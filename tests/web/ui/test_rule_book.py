"""The rule book, the diff page and the interpretations register in the UI, over real HTTP.

The rule book's sentences are made from the rules' data: a test edits a rule and sees the page
follow, so no sentence is written per rule. The register's counts are checked against the
decisions in the database, not against numbers written here.
"""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from app.config import REPOSITORY, Settings
from app.rules.book import book, rule_as_text
from app.rules.loader import load_rules
from app.web.ui.i18n import Translator
from tests.conftest import TEST_PSEUDONYM_KEY, KeyMaker, Server, UserMaker
from tests.web.api.test_interpretations import counted_from_the_log, post_mix
from tests.web.ui.test_pages import Visitor, VisitorMaker


def text_of(page: str) -> str:
    """The page's text, tags dropped, whitespace folded, as a reader sees it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def logged_in(new_visitor: VisitorMaker, make_user: UserMaker, role: str, language: str = "fi") -> Visitor:
    visitor = new_visitor()
    name, password = make_user(f"book-{role}", role=role, municipality="244" if role == "coach" else None)
    assert visitor.login(name, password).status_code == 303
    if language != "fi":
        visitor.get(f"/ui/lang/{language}?next=/ui")
    return visitor


class TestRuleBookPage:
    @pytest.mark.parametrize("language", ["fi", "en"])
    def test_every_rule_stands_beside_each_plan_section_it_cites_written_out(
        self, new_visitor: VisitorMaker, make_user: UserMaker, language: str
    ) -> None:
        coach = logged_in(new_visitor, make_user, "coach", language)
        answer = coach.get("/ui/rules")
        assert answer.status_code == 303
        page = coach.get(answer.headers["location"]).text
        rules = load_rules(REPOSITORY / "rules")
        ruleset = rules.rulesets[0]
        cited = re.findall(r'data-section="([^"]+)"', page)
        assert cited == [section for section in rules.plan_sections if any(section in r.basis for r in ruleset.rules)]
        shown = re.findall(r'data-rule="([^"]+)"', page)
        assert sorted(shown) == sorted(rule.id for rule in ruleset.rules for _ in rule.basis)
        words = text_of(page)
        symbol = (
            "the customer's home municipality's unit (H)" if language == "en" else "asiakkaan kotikunnan yksikkö (H)"
        )
        assert symbol in words
        assert ("Not released" if language == "en" else "Ei julkaistu") in words

    def test_the_golden_cases_stand_beside_the_rule_they_name(
        self, new_visitor: VisitorMaker, make_user: UserMaker
    ) -> None:
        page = logged_in(new_visitor, make_user, "auditor").get("/ui/rules/2025-01-01").text
        article = re.search(r'data-rule="oeo.start".*?</article>', page, re.S)
        assert article
        assert "A Kempele jobseeker whose OEO studies start moves to the central OEO experts" in article.group(0)

    def test_an_unknown_version_is_the_404_page(self, new_visitor: VisitorMaker, make_user: UserMaker) -> None:
        assert logged_in(new_visitor, make_user, "coach").get("/ui/rules/1999-01-01").status_code == 404


class TestProseFromData:
    def test_changing_a_rule_changes_its_sentences(self, tmp_path: Path) -> None:
        shutil.copytree(REPOSITORY / "rules", tmp_path / "rules")
        oeo = tmp_path / "rules" / "2025-01-01" / "4.5-oeo.yaml"
        before = load_rules(tmp_path / "rules")
        oeo.write_text(oeo.read_text().replace("handler: central-oeo", "handler: H", 1))
        after = load_rules(tmp_path / "rules")
        t = Translator("en", before.registry)
        old, new = (
            rule_as_text(t, r, r.rulesets[0], r.rulesets[0].rules_by_id["oeo.start"], []) for r in (before, after)
        )
        assert "Handled by: Experts for self-motivated studies" in old
        assert "Handled by: the customer's home municipality's unit (H)" in new

    def test_the_definition_of_c_is_read_from_ruleset_yaml(self) -> None:
        rules = load_rules(REPOSITORY / "rules")
        written = book(Translator("en", rules.registry), rules, rules.rulesets[0])
        coach = dict(written.definitions)["C"]
        assert [line.text for line in coach] == [
            "C is Central integration services for jobseekers, as central experts when the customer is a central "
            "integration customer.",
            "Otherwise C is the customer's home municipality's unit (H), as municipal personal coach.",
        ]


class TestVersionsAndDiff:
    @pytest.fixture
    def auditor_2026(self, server_2026: Server, make_user: UserMaker) -> Iterator[Visitor]:
        visitor = Visitor(server_2026)
        visitor.client.timeout = httpx.Timeout(300)  # the first diff walks the whole domain twice
        assert visitor.login(*make_user("diff-auditor", role="auditor")).status_code == 303
        yield visitor
        visitor.client.close()

    def test_the_switch_lists_both_versions_and_the_diff_page_shows_what_changes(self, auditor_2026: Visitor) -> None:
        page = auditor_2026.get("/ui/rules/2026-01-01").text
        assert re.findall(r'href="/ui/rules/(\d{4}-\d\d-\d\d)"', page)[:2] == ["2025-01-01", "2026-01-01"]
        assert 'aria-current="page">2026-01-01' in page
        diff = auditor_2026.get("/ui/rules/diff", params={"before": "2025-01-01", "after": "2026-01-01"})
        assert diff.status_code == 200
        words = text_of(diff.text)
        assert "Työvoimakoulutus – ohjaaminen" in words  # the referral is what 2026-01-01 changes
        changed = re.search(r"(\d+) / (\d+) yhdistelmää muuttuu", words)
        assert changed
        assert 0 < int(changed.group(1)) < int(changed.group(2))

    def test_a_coach_reads_both_versions_but_not_the_diff(self, server_2026: Server, make_user: UserMaker) -> None:
        coach = Visitor(server_2026)
        try:
            assert coach.login(*make_user("diff-coach", role="coach", municipality="244")).status_code == 303
            page = coach.get("/ui/rules/2026-01-01")
            assert page.status_code == 200
            assert 'action="/ui/rules/diff"' not in page.text
            assert coach.get("/ui/rules/diff?before=2025-01-01&after=2026-01-01").status_code == 403
        finally:
            coach.client.close()


class TestSignedBook:
    def test_the_book_says_who_signed_and_when(self, tmp_path: Path, database_url: str, make_user: UserMaker) -> None:
        from tests.rules.test_releases import Area

        area = Area(tmp_path)
        monkey = pytest.MonkeyPatch()
        try:
            area.sign(area.approver("alice"), monkey)
            area.sign(area.approver("bob"), monkey)
        finally:
            monkey.undo()
        settings = Settings(database_url=database_url, rules_dir=area.rules, pseudonym_key=TEST_PSEUDONYM_KEY)
        with Server(replace(settings, require_signed_rules=True)) as server:
            visitor = Visitor(server)
            assert visitor.login(*make_user("signed-reader", role="auditor")).status_code == 303
            words = text_of(visitor.get("/ui/rules/2025-01-01").text)
            visitor.client.close()
        assert "Julkaistu" in words
        assert re.search(r"Allekirjoittanut alice \d+\.\d+\.\d{4} klo", words)
        assert "Allekirjoittanut bob" in words


class TestRegisterPage:
    def test_the_register_shows_each_readings_decisions_most_first_and_as_csv(
        self,
        api: httpx.Client,
        make_key: KeyMaker,
        new_visitor: VisitorMaker,
        make_user: UserMaker,
        database_url: str,
    ) -> None:
        post_mix(api, make_key())
        auditor = logged_in(new_visitor, make_user, "auditor", "en")
        page = auditor.get("/ui/interpretations")
        assert page.status_code == 200
        counts = [int(n) for n in re.findall(r'<td class="number">(\d+)</td>', page.text)]
        assert counts == sorted(counts, reverse=True)
        assert counts[0] == 3
        rows = list(csv.DictReader(io.StringIO(auditor.get("/ui/interpretations.csv").text)))
        assert [int(r["decisions"]) for r in rows] == counts
        for row in rows:
            item = {"version": row["version"], "kind": row["kind"], "id": row["id"], "notes": []}
            if row["kind"] == "definition":
                rules = load_rules(REPOSITORY / "rules")
                entry = rules.rulesets[0].coach[0]
                item["notes"] = [{"en": note.text.en} for note in entry.notes]
            assert int(row["decisions"]) == counted_from_the_log(database_url, item), row["id"]

    def test_a_bad_day_is_said_at_its_field(self, new_visitor: VisitorMaker, make_user: UserMaker) -> None:
        page = logged_in(new_visitor, make_user, "admin").get("/ui/interpretations?since=31.12.2025")
        assert page.status_code == 422
        assert 'aria-invalid="true"' in page.text
