"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright.

Each flow saves a screenshot under test-output/screenshots/ (git-ignored), to be looked at.
The browser is /usr/bin/chromium (`make test` installs it with apt when it is missing);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from app.config import REPOSITORY
from tests.conftest import KeyMaker, Server, UserMaker, count_rows
from tests.test_api_events import IDENTITY_CODE, oeo_start

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPOSITORY / "test-output" / "screenshots"
# The plan's own words for 2.2.3 a, as rules/plan_sections.yaml has them.
PLAN_2_2_3_A = "OEO:n aikana työnhakija-asiakas siirretään keskitetyn palvelun asiantuntijan asiakkuuteen."

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fi-FI")
    yield context.new_page()
    context.close()


def screenshot(page: Page, request: pytest.FixtureRequest, name: str) -> Path:
    """Save the whole page as test-output/screenshots/<name>-<database>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    database = request.node.callspec.params.get("database_url", "db")
    path = SCREENSHOTS / f"{name}-{database}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, server: Server, username: str, password: str) -> None:
    page.goto(f"{server.base_url}/ui")
    expect(page).to_have_url(f"{server.base_url}/ui/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("main button[type=submit]").click()
    expect(page.locator("p.who")).to_be_visible()


def every_control_has_a_label(page: Page) -> list[str]:
    """The ids of visible form controls that no label names."""
    unlabelled: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('main input:not([type=hidden]), main select')]
                 .filter(el => el.labels.length === 0).map(el => el.id || el.name)"""
    )
    return unlabelled


class TestCoachFlow:
    def test_kempele_coach_routes_oeo_start_and_sees_central_oeo_with_the_plans_paragraph(
        self, page: Page, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        log_in(page, server, *make_user("kaisa", display_name="Kaisa Kempeleläinen"))
        expect(page.locator("html")).to_have_attribute("lang", "fi")
        expect(page.locator("h1")).to_have_text("Reititä tapahtuma")

        # Choosing the event type reloads the form with that type's fields (reitti.js).
        page.select_option("#event_type", "oeo.start")
        page.wait_for_url("**/ui/route?event_type=oeo.start")
        expect(page.locator("#form-title")).to_have_text("Omaehtoinen opiskelu – opinnot alkavat")
        expect(page.locator("#attr-psychological_assessment")).to_have_count(0)
        assert every_control_has_a_label(page) == []
        page.fill("#customer_id", IDENTITY_CODE)
        page.select_option("#language", "fi")
        screenshot(page, request, "coach-route-form")
        page.get_by_role("button", name="Reititä", exact=True).click()

        page.wait_for_url("**/ui/decisions/*")
        expect(page.locator(".notice.success")).to_have_text("Päätös on tallennettu.")
        expect(page.locator("#handler")).to_contain_text("central-oeo")
        expect(page.locator("#handler")).to_contain_text("OEO-asiantuntijat")
        expect(page.locator("#customership")).to_contain_text("Asiakkuus siirtyy")
        expect(page.locator("#customership")).to_contain_text("central-oeo")
        expect(page.locator("#basis-ids")).to_contain_text("2.2.3 a")
        plan = page.locator('.plan-section[data-section="2.2.3 a"]')
        expect(plan).to_contain_text(PLAN_2_2_3_A)
        expect(plan.locator("blockquote")).to_have_attribute("lang", "fi")
        expect(page.locator("#explanation")).to_contain_text("asiakkuus siirtyy opintojen ajaksi")
        expect(page.locator("#rule-id")).to_have_text("oeo.start")
        expect(page.locator("#ruleset")).to_have_text("2025-01-01")
        assert IDENTITY_CODE not in page.content()
        screenshot(page, request, "coach-decision")

        # The municipality's recent decisions, filtered, and back to the one just made.
        page.get_by_role("link", name="Päätökset", exact=True).click()
        page.select_option("#f-event_type", "oeo.start")
        page.get_by_role("button", name="Rajaa").click()
        rows = page.locator("table.decisions tbody tr")
        expect(rows).to_have_count(1)
        screenshot(page, request, "coach-decisions")
        rows.get_by_role("link").click()
        expect(page.locator("#rule-id")).to_have_text("oeo.start")

    def test_the_core_flow_works_without_javascript(
        self, browser: Browser, server: Server, make_user: UserMaker, database_url: str
    ) -> None:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        try:
            log_in(page, server, *make_user("nojs"))
            page.select_option("#event_type", "eu_job_search")
            page.get_by_role("button", name="Näytä lomake").click()
            expect(page.locator("#form-title")).to_have_text("Työnhaku toisesta EU-maasta")
            page.fill("#customer_id", IDENTITY_CODE)
            page.get_by_role("button", name="Reititä", exact=True).click()
            expect(page.locator("#handler")).to_contain_text("central-eu")
        finally:
            context.close()
        assert count_rows(database_url) == 1

    def test_browsing_the_event_types_with_the_keyboard_reloads_only_on_enter(
        self, page: Page, server: Server, make_user: UserMaker
    ) -> None:
        log_in(page, server, *make_user("keys"))
        url = page.url
        page.focus("#event_type")
        for _ in range(3):
            page.keyboard.press("ArrowDown")
        assert page.url == url
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/route?event_type=*")
        expect(page.locator("#form-title")).to_be_visible()


class TestScope:
    def test_an_ii_coach_editing_the_url_to_a_kempele_decision_gets_the_404_page(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        kempele = api.post("/v1/events", json=oeo_start(), headers=make_key()).json()
        log_in(page, server, *make_user("iikka", municipality="139"))
        response = page.goto(f"{server.base_url}/ui/decisions/{kempele['decision_id']}")
        assert response is not None
        assert response.status == 404
        expect(page.locator("h1")).to_have_text("Sivua ei löydy")
        expect(page.locator("html")).to_have_attribute("lang", "fi")
        assert "central-oeo" not in page.content()
        screenshot(page, request, "ii-coach-404")


class TestLanguage:
    def test_english_is_one_click_away_and_finnish_one_click_back(
        self, page: Page, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        name, password = make_user("emma", display_name="Emma Example")
        page.goto(f"{server.base_url}/ui/login")
        expect(page.locator("h1")).to_have_text("Kirjaudu sisään")
        switch = page.locator("#language-switch")
        expect(switch).to_have_attribute("lang", "en")
        switch.click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h1")).to_have_text("Log in")
        page.fill("#username", name)
        page.fill("#password", password)
        page.get_by_role("button", name="Log in").click()

        expect(page.locator("h1")).to_have_text("Route an event")
        page.select_option("#event_type", label="Self-motivated studies – studies begin")
        page.wait_for_url("**/ui/route?event_type=oeo.start")
        expect(page.locator("label[for=customer_id]")).to_contain_text("Customer's identifier")
        expect(page.locator("#home_municipality option:checked")).to_have_text("Kempele")
        screenshot(page, request, "language-english-form")

        page.locator("#language-switch").click()
        page.wait_for_url("**/ui/route?event_type=oeo.start")
        expect(page.locator("html")).to_have_attribute("lang", "fi")
        expect(page.locator("#form-title")).to_have_text("Omaehtoinen opiskelu – opinnot alkavat")


class TestFormErrors:
    def test_a_missing_required_attribute_is_shown_at_its_field_in_the_chosen_language(
        self, page: Page, server: Server, make_user: UserMaker, database_url: str, request: pytest.FixtureRequest
    ) -> None:
        log_in(page, server, *make_user("virhe"))
        page.goto(f"{server.base_url}/ui/route?event_type=career_guidance")
        page.fill("#customer_id", IDENTITY_CODE)
        page.get_by_role("button", name="Reititä", exact=True).click()

        field = page.get_by_role("radiogroup", name="Psykologinen arviointi")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#attr-psychological_assessment-error")).to_contain_text("Tämä tieto on pakollinen.")
        expect(page.locator("#error-summary")).to_be_focused()
        expect(page.locator("#error-summary")).to_contain_text("Psykologinen arviointi")
        expect(page.locator("#customer_id")).to_have_value("")
        screenshot(page, request, "form-error-required")
        assert count_rows(database_url) == 0

        # Answering "no" makes own_production required: the reason is said in words.
        page.check("input[name=attr-psychological_assessment][value=false]")
        page.fill("#customer_id", IDENTITY_CODE)
        page.get_by_role("button", name="Reititä", exact=True).click()
        expect(page.locator("#attr-own_production-error")).to_contain_text(
            "Tämä tieto on pakollinen, kun Psykologinen arviointi on Ei."
        )
        page.check("input[name=attr-own_production][value=true]")
        page.fill("#customer_id", IDENTITY_CODE)
        page.get_by_role("button", name="Reititä", exact=True).click()
        page.wait_for_url("**/ui/decisions/*")
        assert count_rows(database_url) == 1


class TestPhone:
    def test_the_decision_fits_a_phone_screen(
        self, browser: Browser, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        page = context.new_page()
        try:
            log_in(page, server, *make_user("puhelin"))
            page.goto(f"{server.base_url}/ui/route?event_type=oeo.start")
            page.fill("#customer_id", IDENTITY_CODE)
            page.get_by_role("button", name="Reititä", exact=True).click()
            page.wait_for_url("**/ui/decisions/*")
            width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"the page is {width[0]}px wide on a {width[1]}px screen"
            screenshot(page, request, "phone-decision")
        finally:
            context.close()
