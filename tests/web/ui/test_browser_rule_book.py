"""The rule book, the diff and the interpretations register in Chromium: phone and desktop, Finnish and
English, no axe-core findings, nothing wider than the screen. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import KeyMaker, Server, UserMaker
from tests.web.api.test_interpretations import post_mix
from tests.web.ui.test_browser import SCREENSHOTS, axe_violations, log_in

pytestmark = pytest.mark.slow

SIZES = ((1280, "fi"), (1280, "en"), (390, "fi"), (390, "en"))
WIDTH = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def view(page: Page, request: pytest.FixtureRequest, name: str) -> Path:
    """The screen as it is now (the rule book is far longer than a screenshot can be whole)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = request.node.callspec.params.get("database_url", "db")
    path = SCREENSHOTS / f"{name}-{database}.png"
    page.screenshot(path=str(path))
    return path


def opened(browser: Browser, server: Server, width: int, language: str, user: tuple[str, str]) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, device_scale_factor=2 if width < 600 else 1, locale="fi-FI"
    )
    page = context.new_page()
    log_in(page, server, *user)
    if language == "en":
        page.locator("#language-switch").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    return page


def fits(page: Page, where: str) -> None:
    width = page.evaluate(WIDTH)
    assert width[0] <= width[1], f"{where} is {width[0]}px wide on a {width[1]}px screen"


class TestRuleBookInChromium:
    def test_the_rule_book_reads_at_phone_and_desktop_widths_in_both_languages(
        self, browser: Browser, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        user = make_user("kirja", role="coach", municipality="244")
        for width, language in SIZES:
            page = opened(browser, server, width, language, user)
            try:
                page.get_by_role("link", name="Rule book" if language == "en" else "Sääntökirja").click()
                page.wait_for_url("**/ui/rules/2025-01-01")
                fits(page, f"the rule book at {width}px in {language}")
                assert axe_violations(page) == [], (width, language)
                view(page, request, f"rule-book-{width}-{language}")
                chapter = page.locator('section[data-section="2.2.3 a"]')
                chapter.scroll_into_view_if_needed()
                expect(chapter.locator('article[data-rule="oeo.start"]')).to_be_visible()
                page.evaluate("document.querySelector('section[data-section=\"2.2.3 a\"]').scrollIntoView()")
                view(page, request, f"rule-book-2.2.3a-{width}-{language}")
            finally:
                page.context.close()

    def test_the_register_reads_at_phone_and_desktop_widths_in_both_languages(
        self,
        browser: Browser,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        post_mix(api, make_key())
        user = make_user("rekisteri", role="auditor")
        for width, language in SIZES:
            page = opened(browser, server, width, language, user)
            try:
                page.goto(f"{server.base_url}/ui/interpretations")
                expect(page.locator("td.number").first).to_have_text("3")
                fits(page, f"the register at {width}px in {language}")
                assert axe_violations(page) == [], (width, language)
                page.screenshot(
                    path=str(SCREENSHOTS / f"interpretations-{width}-{language}-{_db(request)}.png"), full_page=True
                )
            finally:
                page.context.close()

    def test_the_diff_between_versions_reads_on_a_phone_and_a_desktop(
        self, browser: Browser, server_2026: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        user = make_user("erot", role="auditor")
        for width, language in ((1280, "fi"), (390, "en")):
            page = opened(browser, server_2026, width, language, user)
            page.set_default_timeout(300_000)  # the first diff walks the whole domain under both versions
            try:
                page.goto(f"{server_2026.base_url}/ui/rules/2025-01-01")
                page.locator("#diff-after").select_option("2026-01-01")
                page.get_by_role("button", name="Compare" if language == "en" else "Vertaa").click()
                page.wait_for_url("**/ui/rules/diff?*")
                expect(page.locator("h1")).to_contain_text("2025-01-01 → 2026-01-01")
                fits(page, f"the diff at {width}px in {language}")
                assert axe_violations(page) == [], (width, language)
                view(page, request, f"rule-diff-{width}-{language}")
            finally:
                page.context.close()


def _db(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params.get("database_url", "db"))
