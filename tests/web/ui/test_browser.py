"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright.

Each flow saves a screenshot under test-output/screenshots/ (git-ignored), to be looked at.
The browser is /usr/bin/chromium (`make test` installs it with apt when it is missing);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from app.config import REPOSITORY
from tests.conftest import KeyMaker, Server, UserMaker, count_rows
from tests.web.api.test_events import IDENTITY_CODE, oeo_start

SCREENSHOTS = REPOSITORY / "test-output" / "screenshots"
# The plan's own words for 2.2.3 a, as rules/plan_sections.yaml has them.
PLAN_2_2_3_A = "OEO:n aikana työnhakija-asiakas siirretään keskitetyn palvelun asiantuntijan asiakkuuteen."

pytestmark = pytest.mark.slow


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


WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def axe_violations(page: Page) -> list[str]:
    """What axe-core finds against WCAG 2.1 AA on the page as it is now: rule, then the first elements."""
    found = Axe().run(page, options=WCAG_21_AA).response["violations"]
    return [f"{v['id']}: {[node['target'] for node in v['nodes']][:3]}" for v in found]


def every_control_has_a_label(page: Page) -> list[str]:
    """The ids of visible form controls that no label names."""
    unlabelled: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
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
            "Tämä tieto on pakollinen, kun ”Psykologinen arviointi” on ”Ei”."
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


# --- overrides and the auditor's pages -----------------------------------------------------


def post_decisions(api: httpx.Client, make_key: KeyMaker) -> dict[str, str]:
    """Decisions about customers of Kempele, Ii and Oulu (all oeo.start), and an EU job search: id by name."""
    key = make_key()
    made = {}
    for name, home, event_type in (("kempele", "244", "oeo.start"), ("ii", "139", "oeo.start"),
                                   ("oulu", "564", "oeo.start"), ("eu", "244", "eu_job_search")):  # fmt: skip
        body = oeo_start(f"browser-{name}", event_type=event_type)
        body["customer"]["home_municipality"] = home
        response = api.post("/v1/events", json=body, headers=key)
        assert response.status_code == 201, response.text
        made[name] = response.json()["decision_id"]
    return made


class TestOverrideFlow:
    def test_a_coach_records_an_override_with_a_reason_and_sees_it_listed(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        database_url: str,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        log_in(page, server, *make_user("kaisa", display_name="Kaisa Kempeleläinen"))
        page.goto(f"{server.base_url}/ui/decisions/{made['kempele']}")
        expect(page.locator("#no-overrides")).to_have_text("Päätöksestä ei ole poikettu.")
        assert every_control_has_a_label(page) == []
        page.select_option("#override-customership", label="Kempeleen kunnan työllisyyspalvelut (omavalmentajat)")
        page.select_option("#override-reason", label="Asiakkaan pyynnöstä")
        page.fill("#override-text", "Asiakas haluaa jatkaa oman omavalmentajansa kanssa.")
        page.get_by_role("button", name="Kirjaa poikkeama").click()

        page.wait_for_url(f"**/ui/decisions/{made['kempele']}?overridden#overrides")
        expect(page.locator("#overrides .notice.success")).to_have_text("Poikkeama on kirjattu.")
        listed = page.locator(".override-list > li")
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text("ui:kaisa (Omavalmentaja)")
        expect(listed).to_contain_text("tarkastusketjun linkki 5")
        expect(listed.locator(".reason")).to_have_text("Asiakkaan pyynnöstä")
        expect(listed.locator(".free-text")).to_have_text("Asiakas haluaa jatkaa oman omavalmentajansa kanssa.")
        expect(listed).to_contain_text("local-244")
        # The decision itself stays as it was.
        expect(page.locator("#customership")).to_contain_text("central-oeo")
        assert count_rows(database_url, "overrides") == 1
        screenshot(page, request, "coach-override-recorded")

    def test_a_missing_reason_is_said_at_its_field_and_nothing_is_recorded(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        database_url: str,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        log_in(page, server, *make_user("kaisa"))
        page.goto(f"{server.base_url}/ui/decisions/{made['kempele']}")
        page.select_option("#override-handler", "local-244")
        page.fill("#override-text", "Syy jäi valitsematta.")
        page.get_by_role("button", name="Kirjaa poikkeama").click()

        reason = page.locator("#override-reason")
        expect(reason).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#override-reason-error")).to_contain_text("Tämä tieto on pakollinen.")
        expect(page.locator("#error-summary")).to_be_focused()
        expect(page.locator("#override-handler")).to_have_value("local-244")
        expect(page.locator("#override-text")).to_have_value("Syy jäi valitsematta.")
        screenshot(page, request, "coach-override-error")
        assert count_rows(database_url, "overrides") == 0

        # The summary's link leads to the field; choosing a reason there records it.
        page.locator("#error-summary a").click()
        expect(reason).to_be_focused()
        page.keyboard.press("ArrowDown")  # the first reason, chosen from the keyboard
        page.get_by_role("button", name="Kirjaa poikkeama").click()
        page.wait_for_url("**?overridden*")
        assert count_rows(database_url, "overrides") == 1


class TestAuditorFlow:
    def test_the_auditor_searches_the_log_and_opens_a_decision_with_its_chain_link(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        log_in(page, server, *make_user("tarja", role="auditor", display_name="Tarja Tarkastaja"))
        page.get_by_role("link", name="Lokihaku").click()
        expect(page.locator("h1")).to_have_text("Lokihaku")
        expect(page.locator("table.log tbody tr")).to_have_count(4)
        assert every_control_has_a_label(page) == []
        page.select_option("#f-municipality", label="Kempele")
        page.select_option("#f-event_type", "oeo.start")
        page.get_by_role("button", name="Rajaa").click()

        rows = page.locator("table.log tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_have_attribute("data-decision", made["kempele"])
        expect(rows.locator("td").nth(2)).to_have_text("Kempele")
        screenshot(page, request, "auditor-log-search")

        rows.get_by_role("link").click()
        page.wait_for_url(f"**/ui/decisions/{made['kempele']}")
        expect(page.locator("#link-seq")).to_have_text("1")
        expect(page.locator("#link-check")).to_have_text(
            "Linkin tiiviste vastaa päätöstä sellaisena kuin se on nyt tallennettu, "
            "ja sen allekirjoitus osoittaa, että tämä palvelu kirjoitti sen."
        )
        prev_hash = page.locator("#link-prev-hash").inner_text()
        document = page.locator("#link-document").text_content() or ""
        assert prev_hash == "0" * 64
        assert hashlib.sha256((prev_hash + document).encode()).hexdigest() == page.locator("#link-hash").inner_text()
        assert json.loads(document)["record"]["decision_id"] == made["kempele"]
        expect(page.locator("#override-reason")).to_have_count(0)  # auditors read overrides, they do not record them
        screenshot(page, request, "auditor-chain-link")

    def test_the_auditor_exports_the_filtered_log_as_csv(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        log_in(page, server, *make_user("tarja", role="auditor"))
        page.goto(f"{server.base_url}/ui/audit/decisions")
        page.select_option("#f-municipality", label="Kempele")
        page.get_by_role("button", name="Rajaa").click()
        expect(page.locator("table.log tbody tr")).to_have_count(2)
        with page.expect_download() as started:
            page.get_by_role("link", name="Vie CSV-tiedostoksi").click()
        download = started.value
        assert download.suggested_filename == "decisions.csv"
        saved = SCREENSHOTS.parent / "downloads" / f"decisions-{request.node.callspec.params['database_url']}.csv"
        download.save_as(saved)
        rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
        assert [row["decision_id"] for row in rows] == [made["eu"], made["kempele"]]
        assert {row["home_municipality"] for row in rows} == {"244"}
        assert IDENTITY_CODE not in saved.read_text(encoding="utf-8")
        screenshot(page, request, "auditor-export")

    def test_the_auditor_verifies_the_chain_and_sees_it_intact(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        post_decisions(api, make_key)
        log_in(page, server, *make_user("tarja", role="auditor"))
        page.get_by_role("link", name="Tarkastusketju").click()
        expect(page.locator("#head-seq")).to_have_text("4")
        expect(page.locator("#chain-status")).to_have_count(0)
        assert every_control_has_a_label(page) == []
        page.get_by_role("button", name="Tarkista nyt").click()
        expect(page.locator("#chain-status")).to_contain_text("Ketju on eheä.")
        expect(page.locator("#chain-status")).to_contain_text("4 linkkiä tarkistettu")
        expect(page.locator("#intact-up-to")).to_have_text("4")
        screenshot(page, request, "auditor-chain-status")

    def test_the_auditor_sees_their_own_reads_in_the_access_log(
        self,
        page: Page,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        assert api.get("/v1/decisions", headers=make_key(role="admin", name="someone-else")).status_code == 200
        log_in(page, server, *make_user("tarja", role="auditor"))
        page.goto(f"{server.base_url}/ui/audit/decisions?municipality=139")
        page.locator("table.log tbody tr").get_by_role("link").click()
        expect(page.locator("#link-seq")).to_have_text("2")
        page.get_by_role("link", name="Käyttöloki").click()
        expect(page.locator("h1")).to_have_text("Käyttöloki")
        expect(page.locator("table.access tbody tr")).to_have_count(6)  # someone else's read too
        assert every_control_has_a_label(page) == []
        page.get_by_role("link", name="Näytä omat lukukertani").click()
        expect(page.locator("#a-who")).to_have_value("ui:tarja")
        rows = page.locator("table.access tbody tr")
        # Newest first: the decision's page read the decision, its overrides and its link; the search a
        # list, and so did the page the login led to.
        expect(rows).to_have_count(5)
        actions = ["Ketjun linkki", "Poikkeamat", "Päätös", "Luettelo", "Luettelo"]
        expect(rows.locator("td:nth-child(4)")).to_have_text(actions)
        expect(rows.nth(0)).to_contain_text(made["ii"])
        expect(rows.nth(3)).to_contain_text("municipality=139")
        for row in range(5):
            expect(rows.nth(row).locator("td").nth(1)).to_have_text("ui:tarja")
        screenshot(page, request, "auditor-access-log")


class TestAuditPhone:
    def test_the_log_search_and_the_override_form_fit_a_phone_screen(
        self,
        browser: Browser,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        page = context.new_page()
        try:
            log_in(page, server, *make_user("aapo", role="admin"))  # an admin has both: the form and the audit
            pages = {
                f"/ui/decisions/{made['kempele']}": "phone-override-form",
                "/ui/audit/decisions": "phone-log-search",
                "/ui/audit/chain": "phone-chain",
            }
            for path, name in pages.items():
                page.goto(f"{server.base_url}{path}")
                width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
                assert width[0] <= width[1], f"{path} is {width[0]}px wide on a {width[1]}px screen"
                screenshot(page, request, name)
        finally:
            context.close()


class TestApiDocs:
    def test_docs_render_from_this_server_alone_under_the_csp_and_pass_axe(
        self, browser: Browser, server: Server, request: pytest.FixtureRequest
    ) -> None:
        requested: list[str] = []
        refused: list[str] = []
        for width in (1280, 390):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
            try:
                page.goto(f"{server.base_url}/docs")
                expect(page.locator(".opblock").first).to_be_visible()
                expect(page.locator(".info .title")).to_contain_text("Reitti")
                post = page.locator(".opblock-post").first
                post.locator(".opblock-summary-control").click()
                post.locator(".try-out__btn").click()
                expect(post.locator("textarea")).to_be_visible()
                assert axe_violations(page) == []
                screenshot(page, request, f"docs-{width}")
            finally:
                context.close()
        assert requested
        assert [url for url in requested if not url.startswith(server.base_url)] == []
        assert refused == []


INTEGRATION_ATTRIBUTES = {
    "integration_plan_entitled": True,
    "integration_period_exceeded": False,
    "needs_integration_services": True,
}

# Each piece of a rule id between its <wbr> breaks, as the lines it is laid out on: one each.
RULE_ID_PIECES_LINES = """() => [...document.querySelectorAll('code.id')].flatMap(code =>
    [...code.childNodes].filter(node => node.nodeType === Node.TEXT_NODE).map(node => {
        const range = document.createRange(); range.selectNodeContents(node);
        return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size; }))"""


class TestWidths:
    def test_the_log_search_fits_1280_px_and_rule_ids_break_only_at_dots_and_underscores(
        self,
        browser: Browser,
        server: Server,
        api: httpx.Client,
        make_key: KeyMaker,
        make_user: UserMaker,
        request: pytest.FixtureRequest,
    ) -> None:
        made = post_decisions(api, make_key)
        body = oeo_start("browser-integration", event_type="integration.eligibility", attributes=INTEGRATION_ATTRIBUTES)
        made["integration"] = api.post("/v1/events", json=body, headers=make_key()).json()["decision_id"]
        name, password = make_user("leveys", role="admin")
        for width, language in ((1280, "fi"), (1280, "en"), (390, "fi"), (390, "en")):
            context = browser.new_context(viewport={"width": width, "height": 900}, locale="fi-FI")
            page = context.new_page()
            try:
                log_in(page, server, name, password)
                if language == "en":
                    page.locator("#language-switch").click()
                    expect(page.locator("html")).to_have_attribute("lang", "en")
                for path in ("/ui/audit/decisions", "/ui/decisions", f"/ui/decisions/{made['integration']}"):
                    page.goto(f"{server.base_url}{path}")
                    page_width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
                    assert page_width[0] <= page_width[1], f"{path} is {page_width[0]}px wide at {width}px"
                    pieces = page.evaluate(RULE_ID_PIECES_LINES)
                    assert pieces, path
                    assert set(pieces) == {1}, f"a rule id breaks mid-word on {path} at {width}px"
                    assert axe_violations(page) == [], (path, width, language)
                page.goto(f"{server.base_url}/ui/audit/decisions")
                if width == 1280:
                    table = page.evaluate(
                        "() => [document.querySelector('table.log').scrollWidth,"
                        " document.querySelector('.table-wrap').clientWidth]"
                    )
                    assert table[0] <= table[1], f"the log scrolls sideways at 1280px in {language}: {table}"
                screenshot(page, request, f"log-search-{width}-{language}")
            finally:
                context.close()


class TestNoticeOnce:
    def test_switching_the_language_after_routing_does_not_say_stored_again(
        self, page: Page, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        log_in(page, server, *make_user("kerran"))
        page.goto(f"{server.base_url}/ui/route?event_type=oeo.start")
        page.fill("#customer_id", IDENTITY_CODE)
        page.get_by_role("button", name="Reititä", exact=True).click()
        page.wait_for_url("**/ui/decisions/*?created")
        expect(page.locator(".notice.success")).to_have_text("Päätös on tallennettu.")
        page.locator("#language-switch").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h1")).to_contain_text("Self-motivated studies")
        expect(page.locator(".notice.success")).to_have_count(0)
        assert "created" not in page.url
        screenshot(page, request, "decision-after-language-switch")


# --- the units' worklists and the customership register ------------------------------------


def route_in_ui(page: Page, server: Server, event_type: str) -> None:
    """Route an event of the Kempele customer through the coach's form; wait for the decision page."""
    page.goto(f"{server.base_url}/ui/route?event_type={event_type}")
    page.fill("#customer_id", IDENTITY_CODE)
    page.get_by_role("button", name="Reititä", exact=True).click()
    page.wait_for_url("**/ui/decisions/*?created")


def check_page(page: Page, request: pytest.FixtureRequest, name: str) -> None:
    """No axe-core finding, nothing wider than the screen, no identity code; a screenshot to look at."""
    assert axe_violations(page) == [], name
    assert every_control_has_a_label(page) == [], name
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name} is {width[0]}px wide on a {width[1]}px screen"
    assert IDENTITY_CODE not in page.content()
    screenshot(page, request, name)


class TestHandoverStory:
    def test_oeo_start_hands_the_customer_to_the_oeo_experts_and_oeo_end_back_to_the_coach(
        self, browser: Browser, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        coach_login = make_user("kaisa", display_name="Kaisa Kempeleläinen")
        expert_login = make_user("olli", role="unit", unit="central-oeo", display_name="Olli OEO")
        desktop = {"viewport": {"width": 1280, "height": 900}, "locale": "fi-FI"}
        phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
        coach_context, expert_context = browser.new_context(**desktop), browser.new_context(**phone)
        try:
            coach, expert = coach_context.new_page(), expert_context.new_page()
            # A Kempele coach routes oeo.start: the customer moves to the OEO experts.
            log_in(coach, server, *coach_login)
            route_in_ui(coach, server, "oeo.start")
            expect(coach.locator("#nav-worklist")).to_have_text("Työjono (1 avointa)")

            # The OEO expert lands on the worklist and sees the incoming handover from Kempele.
            log_in(expert, server, *expert_login)
            expect(expert).to_have_url(f"{server.base_url}/ui/worklist")
            expect(expert.locator("p.who")).to_contain_text("OEO-asiantuntijat")
            expect(expert.locator("#nav-worklist")).to_have_text("Työjono (1 avointa)")
            item = expert.locator("li.work-item")
            expect(item).to_have_count(1)
            expect(item.locator(".kind")).to_have_text("Asiakkuus siirtyy yksikölle")
            expect(item).to_contain_text("Kempele")
            check_page(expert, request, "worklist-oeo-incoming-phone")
            item.get_by_role("button", name="Ota hoitoon").click()
            expect(expert.locator(".notice.success")).to_have_text("Asia otettiin hoitoon.")
            expect(expert.locator("#worklist-empty")).to_be_visible()
            expect(expert.locator("#nav-worklist")).to_have_text("Työjono (0 avointa)")

            # The coach sees the customer now held by the OEO experts; the code goes in a POST form.
            coach.get_by_role("link", name="Asiakkaan polku").click()
            coach.fill("#c-customer_id", IDENTITY_CODE)
            coach.get_by_role("button", name="Näytä asiakkuus").click()
            expect(coach.locator("#customership-now")).to_contain_text("OEO-asiantuntijat")
            assert IDENTITY_CODE not in coach.url
            check_page(coach, request, "customer-journey-at-oeo")

            # oeo.end returns the customer: the coach sees the handover back on the worklist.
            route_in_ui(coach, server, "oeo.end")
            coach.locator("#nav-worklist").click()
            coach.select_option("#w-kind", "handover_in")
            coach.get_by_role("button", name="Näytä", exact=True).click()
            back = coach.locator("li.work-item")
            expect(back).to_have_count(1)
            expect(back.locator(".kind")).to_have_text("Asiakkuus siirtyy yksikölle")
            expect(back).to_contain_text("OEO-asiantuntijat")
            check_page(coach, request, "worklist-coach-handover-back")
            coach.get_by_role("link", name="Asiakkaan polku").click()
            coach.fill("#c-customer_id", IDENTITY_CODE)
            coach.get_by_role("button", name="Näytä asiakkuus").click()
            expect(coach.locator("#customership-now")).to_contain_text("Kempele")
            expect(coach.locator("#customership-history tbody tr")).to_have_count(2)
            coach.locator("#language-switch").click()
            expect(coach.locator("h1")).to_have_text("Customer's journey")
            check_page(coach, request, "customer-journey-en")
        finally:
            coach_context.close()
            expert_context.close()

    def test_a_return_with_an_identity_code_is_refused_at_its_field_and_then_goes_back_to_the_coach(
        self, browser: Browser, server: Server, make_user: UserMaker, request: pytest.FixtureRequest
    ) -> None:
        coach_login = make_user("kaisa", display_name="Kaisa Kempeleläinen")
        expert_login = make_user("olli", role="unit", unit="central-oeo", display_name="Olli OEO")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fi-FI")
        try:
            page = context.new_page()
            log_in(page, server, *coach_login)
            route_in_ui(page, server, "oeo.start")
            page.locator("form.inline button.link").click()  # log out
            log_in(page, server, *expert_login)
            item = page.locator("li.work-item")
            item.locator("summary").click()
            item.get_by_label("Palautuksen syy").select_option("wrong_event_data")
            item.get_by_label("Lisätiedot (vapaaehtoinen)").fill(f"asiakas {IDENTITY_CODE}")
            item.get_by_role("button", name="Palauta lähettäjälle").click()
            expect(page.locator(".field-error")).to_have_text("Poista henkilötunnus lisätiedoista.")
            check_page(page, request, "worklist-return-refused")
            item = page.locator("li.work-item")
            item.get_by_label("Lisätiedot (vapaaehtoinen)").fill("OEO-päätös puuttuu vielä")
            item.get_by_role("button", name="Palauta lähettäjälle").click()
            expect(page.locator(".notice.success")).to_have_text("Asia palautettiin lähettäjälle.")
            page.locator("form.inline button.link").click()
            log_in(page, server, *coach_login)
            page.goto(f"{server.base_url}/ui/worklist?kind=returned")
            expect(page.locator("li.work-item .kind")).to_have_text("Palautettu (muutospyyntö)")
            expect(page.get_by_role("link", name="Muutospyyntö")).to_be_visible()
            check_page(page, request, "worklist-override-request")
        finally:
            context.close()
