"""The dashboard and cost sharing in a real browser (Debian's Chromium): the numbers on the page are
the log's, the pages pass axe-core (WCAG 2.1 AA) under the unchanged CSP, in Finnish and in English,
on a desktop and on a phone. Screenshots go to test-output/screenshots/ to be looked at.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from app.access.users import create_user
from app.db import make_sessions
from app.models import LoginFailure, Role, UiSession, User
from app.reports.formats import MONTHS, NBSP
from app.rules.model import Rules
from app.time import today_in_finland
from tests.conftest import TEST_CHAIN_INFO, TEST_PASSWORD, Server
from tests.reports.log import Logged, counted, read_answers
from tests.web.ui.test_browser import axe_violations, log_in, screenshot

pytestmark = pytest.mark.slow

YEAR = "from=2025-01-01&to=2025-12-31"
FIRST, LAST = date(2025, 1, 1), date(2025, 12, 31)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CSP_WORDS = re.compile(r"Content Security Policy|Refused to", re.IGNORECASE)


@pytest.fixture(scope="module")
def people(database: Engine, log: list[Logged]) -> Iterator[dict[str, str]]:
    """UI accounts of this module: management, an auditor and a coach of Ii; removed after it.

    Not `make_user`, whose `api` fixture empties the log after each test: the module's log stays.
    """
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    made = {"management": "johto", "auditor": "tarkastaja", "coach": "ii-coach"}
    with write() as session:
        for role, username in made.items():
            create_user(
                session,
                username=username,
                display_name=username.title(),
                role=Role(role),
                municipality="139" if role == "coach" else None,
                password=TEST_PASSWORD,
            )
    yield made
    with database.begin() as connection:
        connection.execute(UiSession.__table__.delete())
        connection.execute(LoginFailure.__table__.delete())
        connection.execute(User.__table__.delete())


@pytest.fixture
def console(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A desktop page in Finnish and what its console says (a CSP refusal would be there)."""
    context = browser.new_context(viewport=DESKTOP, locale="fi-FI")
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    yield page, said
    context.close()


def table(page: Page, selector: str) -> list[list[str]]:
    """A table's body as its cells' texts, the row header first."""
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))"
    )
    return rows


def integer(text: str) -> int:
    """A count as the page writes it, in either language."""
    return int(text.replace(NBSP, "").replace(",", ""))


def hours(text: str) -> float:
    """A waiting time in hours as the page writes it, in either language."""
    return float(text.replace(NBSP, "").replace(",", "" if "." in text else "."))


def unit_name(rules: Rules, unit: str, language: str) -> str:
    """A unit by the rules' name of it in the language (its id if the rules do not know it)."""
    known = rules.registry.units.get(unit)
    return str(getattr(known.name, language)) if known else unit


def labels_of(names: list[str], drawn: list[str]) -> bool:
    """Whether a chart's labels are these names, each whole or cut with an ellipsis (the table has it whole)."""
    return len(names) == len(drawn) and all(
        label == name or (label.endswith("…") and name.startswith(label[:-1]))
        for name, label in zip(names, drawn, strict=True)
    )


def fits(page: Page) -> bool:
    """Whether the page is no wider than its viewport: nothing to scroll sideways but the tables' own regions."""
    wide: bool = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return wide


class TestDashboard:
    def test_management_sees_the_logs_figures_in_charts_and_tables_in_both_languages(
        self,
        console: tuple[Page, list[str]],
        server: Server,
        people: dict[str, str],
        log: list[Logged],
        request: pytest.FixtureRequest,
    ) -> None:
        page, said = console
        log_in(page, server, people["management"], TEST_PASSWORD)
        expect(page).to_have_url(f"{server.base_url}/ui/reports")  # management's first page
        expect(page.get_by_role("link", name="Päätökset", exact=True)).to_have_count(0)
        page.fill("#p-from", "2025-01-01")
        page.fill("#p-to", "2025-12-31")
        page.get_by_role("button", name="Näytä").click()
        page.wait_for_url(f"**/ui/reports?{YEAR}")
        expect(page.locator("h1")).to_have_text("Tilannekuva")

        by_month = Counter(row.day.month for row in log if FIRST <= row.day <= LAST)
        rows = table(page, "#volumes-table")
        assert [name for name, _ in rows] == [f"{MONTHS['fi'][m - 1]} 2025" for m in range(1, 13)]
        assert [integer(count) for _, count in rows] == [by_month[m] for m in range(1, 13)]
        # The chart draws the same numbers: a bar and its value per month.
        chart = page.locator("#volumes-heading ~ .panel-body svg")
        expect(chart.locator("rect")).to_have_count(12)
        values = chart.locator("text").all_text_contents()
        assert [integer(v) for v in values[0::2]] == [by_month[m] for m in range(1, 13)]
        assert values[1::2][:3] == ["tammi 2025", "helmi 2025", "maalis 2025"]

        routes = Counter((row.event_type, row.handler) for row in log)
        assert [integer(r[-1]) for r in table(page, "#routes-table")] == sorted(routes.values(), reverse=True)[:10]
        overridden = Counter(row.rule_id for row in log if row.overridden)
        for rule, decisions, changed, _ in table(page, "#overrides-table"):
            assert integer(changed) == overridden[rule]
            assert integer(decisions) == sum(1 for row in log if row.rule_id == rule)
        assert axe_violations(page) == []
        assert fits(page)
        screenshot(page, request, "reports-dashboard-fi-desktop")

        page.locator("#language-switch").click()
        expect(page.locator("h1")).to_have_text("Dashboard")
        rows = table(page, "#volumes-table")
        assert [name for name, _ in rows][:2] == ["January 2025", "February 2025"]
        assert [integer(count) for _, count in rows] == [by_month[m] for m in range(1, 13)]
        assert axe_violations(page) == []
        screenshot(page, request, "reports-dashboard-en-desktop")
        assert [text for text in said if CSP_WORDS.search(text)] == []

    def test_management_sees_each_units_handovers_and_waiting_times_from_the_tables(
        self,
        console: tuple[Page, list[str]],
        server: Server,
        people: dict[str, str],
        log: list[Logged],
        database: Engine,
        rules: Rules,
        request: pytest.FixtureRequest,
    ) -> None:
        page, said = console
        # The log's decisions are of 2025 and some of their items were taken today (the module's log).
        today = today_in_finland()
        expected = read_answers(database, FIRST, today)
        log_in(page, server, people["management"], TEST_PASSWORD)
        page.goto(f"{server.base_url}/ui/reports?from=2025-01-01&to={today.isoformat()}")
        expect(page.locator("#waiting-heading")).to_have_text("Asiakkuuksien siirrot ja odotusajat yksiköittäin")
        # Between the shares and the overrides.
        headings = page.locator("section.panel h2").evaluate_all("hs => hs.map(h => h.id)")
        assert headings.index("waiting-heading") == headings.index("shares-heading") + 1
        assert headings.index("overrides-heading") == headings.index("waiting-heading") + 1

        units = sorted(expected)
        rows = table(page, "#waiting-table")
        assert page.locator("#waiting-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.unit)") == units
        assert [row[0] for row in rows] == [unit_name(rules, unit, "fi") for unit in units]
        for unit, (_, handed_in, handed_out, taken, median, p90) in zip(units, rows, strict=True):
            answers = expected[unit]
            assert (integer(handed_in), integer(handed_out), integer(taken)) == (
                answers.handovers_in,
                answers.handovers_out,
                len(answers.waits),
            )
            if answers.waits:
                assert answers.median is not None
                assert answers.p90 is not None
                assert re.fullmatch(r"[0-9\u00a0]+,[0-9]", median), "a Finnish decimal comma and spaced thousands"
                assert hours(median) == pytest.approx(answers.median / 3600, abs=0.05)
                assert hours(p90) == pytest.approx(answers.p90 / 3600, abs=0.05)
            else:
                assert (median, p90) == ("–", "–")

        # The charts draw the same numbers: per unit its name, then a value after each of its bars.
        handed = [unit for unit in units if expected[unit].handovers_in or expected[unit].handovers_out]
        chart = page.locator("#waiting-heading ~ .panel-body svg[aria-labelledby^=handovers]")
        expect(chart.locator("rect")).to_have_count(2 + 2 * len(handed))  # the legend's two, then two a unit
        texts = chart.locator("text").all_text_contents()
        assert texts[:2] == ["Saapuneet siirrot", "Lähteneet siirrot"]
        assert labels_of([unit_name(rules, unit, "fi") for unit in handed], texts[2::3])
        assert [integer(v) for v in texts[3::3]] == [expected[unit].handovers_in for unit in handed]
        assert [integer(v) for v in texts[4::3]] == [expected[unit].handovers_out for unit in handed]
        waited = [unit for unit in units if expected[unit].waits]
        assert waited, "some items were taken"
        chart = page.locator("#waiting-heading ~ .panel-body svg[aria-labelledby^=waiting]")
        texts = chart.locator("text").all_text_contents()
        assert texts[:2] == ["Mediaani", "90. persentiili"]
        assert labels_of([unit_name(rules, unit, "fi") for unit in waited], texts[2::3])
        medians = [expected[unit].median or 0 for unit in waited]
        p90s = [expected[unit].p90 or 0 for unit in waited]
        assert [hours(v) for v in texts[3::3]] == pytest.approx([m / 3600 for m in medians], abs=0.05)
        assert [hours(v) for v in texts[4::3]] == pytest.approx([p / 3600 for p in p90s], abs=0.05)
        # Each bar as long as its value, on one scale for the chart.
        widths = [float(w) for w in chart.locator("rect").evaluate_all("rs => rs.map(r => r.getAttribute('width'))")]
        longest = max(p90s)
        assert widths[2::2] == pytest.approx([350 * m / longest for m in medians], abs=0.1)
        assert widths[3::2] == pytest.approx([350 * p / longest for p in p90s], abs=0.1)
        assert axe_violations(page) == []
        assert fits(page)
        screenshot(page, request, "reports-dashboard-waiting-fi-desktop")

        page.locator("#language-switch").click()
        expect(page.locator("#waiting-heading")).to_have_text("Handovers and waiting times by unit")
        rows = table(page, "#waiting-table")
        assert [row[0] for row in rows] == [unit_name(rules, unit, "en") for unit in units]
        assert [integer(row[3]) for row in rows] == [len(expected[unit].waits) for unit in units]
        for unit, row in zip(units, rows, strict=True):
            if expected[unit].waits:
                assert hours(row[4]) == pytest.approx((expected[unit].median or 0) / 3600, abs=0.05)
        assert axe_violations(page) == []
        screenshot(page, request, "reports-dashboard-waiting-en-desktop")
        assert [text for text in said if CSP_WORDS.search(text)] == []

    @pytest.mark.parametrize("language", ["fi", "en"])
    def test_the_reports_fit_a_phone_in_each_language(
        self,
        browser: Browser,
        server: Server,
        people: dict[str, str],
        log: list[Logged],
        language: str,
        request: pytest.FixtureRequest,
    ) -> None:
        context = browser.new_context(viewport=PHONE, locale="fi-FI", is_mobile=True, device_scale_factor=2)
        page = context.new_page()
        try:
            log_in(page, server, people["management"], TEST_PASSWORD)
            if language == "en":
                page.locator("#language-switch").click()
            # The dashboard up to today: the waiting panel has the items taken today in its charts too.
            up_to_today = f"from=2025-01-01&to={today_in_finland().isoformat()}"
            for path, name, period in (
                ("/ui/reports", "dashboard", up_to_today),
                ("/ui/reports/cost-sharing", "cost-sharing", YEAR),
            ):
                page.goto(f"{server.base_url}{path}?{period}")
                assert fits(page)
                assert axe_violations(page) == []
                screenshot(page, request, f"reports-{name}-{language}-phone")
        finally:
            context.close()


class TestCostSharingPage:
    def test_management_reads_the_logs_counts_and_downloads_the_workbook(
        self,
        console: tuple[Page, list[str]],
        server: Server,
        people: dict[str, str],
        log: list[Logged],
        rules: Rules,
        request: pytest.FixtureRequest,
    ) -> None:
        page, said = console
        log_in(page, server, people["management"], TEST_PASSWORD)
        page.get_by_role("link", name="Kustannustenjako", exact=True).click()
        page.fill("#p-from", "2025-01-01")
        page.fill("#p-to", "2025-12-31")
        page.select_option("#p-group_by", "unit")
        page.get_by_role("button", name="Näytä").click()
        expected = counted(log, FIRST, LAST, rules.rulesets[0].area_municipalities)
        cells = page.eval_on_selector_all(
            "#cost-sharing-table tbody td[data-group]",
            "cells => cells.map(c => [c.parentElement.dataset.line, c.dataset.group, c.textContent.trim()])",
        )
        got = {(line, group): integer(count) for line, group, count in cells}
        assert {key: n for key, n in got.items() if n} == dict(expected)
        totals = page.locator('#cost-sharing-table tfoot td[data-group="external"]')
        expect(totals).to_have_text(str(sum(n for (_, group), n in expected.items() if group == "external")))
        assert axe_violations(page) == []
        screenshot(page, request, "reports-cost-sharing-fi-desktop")

        with page.expect_download() as download:
            page.get_by_role("link", name="Lataa Excel-taulukkona (XLSX)").click()
        book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
        assert book.sheetnames == ["Kunnittain", "Tuottajittain", "Sääntöversiot"]
        totals_row = next(row for row in book["Kunnittain"].iter_rows(values_only=True) if row[0] == "Alue yhteensä")
        assert totals_row[12] == sum(expected.values())

        page.locator("#language-switch").click()
        expect(page.locator("h1")).to_have_text("Cost sharing by municipality")
        assert axe_violations(page) == []
        screenshot(page, request, "reports-cost-sharing-en-desktop")
        assert [text for text in said if CSP_WORDS.search(text)] == []

    def test_a_coach_sees_their_municipalitys_line_and_not_the_dashboard(
        self, page: Page, server: Server, people: dict[str, str], log: list[Logged], rules: Rules,
        request: pytest.FixtureRequest,
    ) -> None:  # fmt: skip
        log_in(page, server, people["coach"], TEST_PASSWORD)
        expect(page.get_by_role("link", name="Tilannekuva")).to_have_count(0)
        page.goto(f"{server.base_url}/ui/reports/cost-sharing?{YEAR}")
        rows = table(page, "#cost-sharing-table")
        assert [row[0] for row in rows] == ["Ii"]
        expected = counted(log, FIRST, LAST, rules.rulesets[0].area_municipalities)
        assert integer(rows[0][-1]) == sum(n for (line, _), n in expected.items() if line == "139")
        assert axe_violations(page) == []
        screenshot(page, request, "reports-cost-sharing-coach")
        assert page.goto(f"{server.base_url}/ui/reports").status == 403

    def test_a_period_that_ends_before_it_begins_is_said_at_its_field(
        self,
        page: Page,
        server: Server,
        people: dict[str, str],
        request: pytest.FixtureRequest,
    ) -> None:
        log_in(page, server, people["auditor"], TEST_PASSWORD)
        response = page.goto(f"{server.base_url}/ui/reports/cost-sharing?from=2025-06-01&to=2025-05-01")
        assert response is not None
        assert response.status == 422
        expect(page.locator("#p-to-error")).to_contain_text("päättyy ennen kuin se alkaa")
        expect(page.locator("#p-to")).to_have_attribute("aria-invalid", "true")
        assert axe_violations(page) == []
