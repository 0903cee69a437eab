"""Signing in through a real OpenID provider (oidc-provider on Node.js), in Chromium and over HTTP.

People sign in as a coach and as an auditor, route and read, and sign out of Reitti and of the
provider; a person the mapping does not name gets a clear page. Every refused sign-in — a callback
of another browser or with the wrong state, an ID token with the wrong issuer or audience, expired,
with another nonce, unsigned (`none`) or signed with a key not in the JWKS — leaves no row behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from app.access.users import create_user, disable_user
from app.db import make_engine, make_sessions
from app.models import Role
from tests.conftest import (
    TEST_CHAIN_INFO,
    TEST_PASSWORD,
    Server,
    count_rows,
)
from tests.oidc.providers import UI_CLIENT, ForgingProvider, sign, signing_key
from tests.web.api.test_events import IDENTITY_CODE
from tests.web.conftest import SignInSite, VisitorOf, sso_settings
from tests.web.ui.test_browser import axe_violations, screenshot
from tests.web.ui.test_pages import Visitor

pytestmark = pytest.mark.slow


def nothing_stored(database_url: str) -> None:
    assert count_rows(database_url, "users") == 0
    assert count_rows(database_url, "ui_sessions") == 0


def sign_in(page: Page, site: SignInSite, login: str) -> None:
    """From Reitti's login page through the provider's login form, back to Reitti."""
    page.goto(f"{site.server.base_url}/ui")
    expect(page).to_have_url(f"{site.server.base_url}/ui/login")
    page.locator("#sso-start").click()
    page.wait_for_url(f"{site.provider.issuer}/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password: the provider's development login")
    page.locator("button[type=submit]").click()


def sign_out(page: Page, site: SignInSite) -> None:
    """Reitti's logout, then the provider's own confirmation, back to Reitti's login page."""
    page.get_by_role("button", name="Kirjaudu ulos").click()
    page.wait_for_url(f"{site.provider.issuer}/**")
    page.locator("button[name=logout][value=yes]").click()
    page.wait_for_url(f"{site.server.base_url}/ui/login?out")
    expect(page.locator(".notice")).to_have_text("Olet kirjautunut ulos.")


class TestSignInInTheBrowser:
    def test_a_coach_signs_in_routes_as_herself_by_issuer_and_subject_and_signs_out_of_both(
        self, page: Page, site: SignInSite, database_url: str, clean: None, request: pytest.FixtureRequest
    ) -> None:
        page.goto(f"{site.server.base_url}/ui/login")
        assert axe_violations(page) == []
        screenshot(page, request, "sso-login")
        sign_in(page, site, "kaisa")
        page.wait_for_url(f"{site.server.base_url}/ui/route")
        expect(page.locator("p.who")).to_contain_text("Kaisa Koutsi")
        expect(page.locator("p.who")).to_contain_text("Omavalmentaja")
        assert axe_violations(page) == []

        page.select_option("#event_type", "oeo.start")
        page.wait_for_url("**/ui/route?event_type=oeo.start")
        page.fill("#customer_id", IDENTITY_CODE)
        page.get_by_role("button", name="Reititä", exact=True).click()
        page.wait_for_url("**/ui/decisions/*")
        expect(page.locator("#handler")).to_contain_text("central-oeo")
        screenshot(page, request, "sso-coach-decision")

        engine = make_engine(database_url)
        with engine.connect() as connection:
            client = connection.execute(text("SELECT client FROM decisions")).scalar_one()
            readers = connection.execute(text("SELECT DISTINCT key_id, key_name FROM access_log")).all()
        engine.dispose()
        assert client == site.name_of("kaisa")
        assert [tuple(reader) for reader in readers] == [(0, site.name_of("kaisa"))]

        sign_out(page, site)
        assert count_rows(database_url, "ui_sessions") == 0
        page.goto(f"{site.server.base_url}/ui/route")
        expect(page).to_have_url(f"{site.server.base_url}/ui/login?next=/ui/route")
        # The provider's session ended too: signing in again asks for the login again.
        page.locator("#sso-start").click()
        page.wait_for_url(f"{site.provider.issuer}/**")
        expect(page.locator("input[name=login]")).to_be_visible()

    def test_an_auditor_signs_in_reads_the_log_and_signs_out(
        self, page: Page, site: SignInSite, database_url: str, clean: None, request: pytest.FixtureRequest
    ) -> None:
        sign_in(page, site, "aino")
        page.wait_for_url(f"{site.server.base_url}/ui/decisions")
        expect(page.locator("p.who")).to_contain_text("Aino Auditoija")
        expect(page.locator("p.who")).to_contain_text("Tarkastaja")
        page.get_by_role("link", name="Käyttöloki").click()
        expect(page.locator("h1")).to_be_visible()
        assert axe_violations(page) == []
        screenshot(page, request, "sso-auditor-access-log")
        sign_out(page, site)
        assert count_rows(database_url, "ui_sessions") == 0

    def test_a_unit_s_staff_sign_in_to_their_unit_s_worklist(
        self, page: Page, site: SignInSite, database_url: str, clean: None
    ) -> None:
        sign_in(page, site, "olli")
        page.wait_for_url(f"{site.server.base_url}/ui/worklist")
        expect(page.locator("p.who")).to_contain_text("Olli OEO")
        expect(page.locator("h1")).to_have_text("Työjono")
        assert axe_violations(page) == []
        engine = make_engine(database_url)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT role, unit, municipality FROM users")).one()
        engine.dispose()
        assert tuple(row) == ("unit", "central-oeo", None)
        sign_out(page, site)

    @pytest.mark.parametrize(("login", "reason"), [("ville", "unmapped"), ("kaksi", "ambiguous")])
    def test_a_person_the_mapping_does_not_make_one_role_gets_a_clear_page_and_nothing_is_stored(
        self,
        page: Page,
        site: SignInSite,
        database_url: str,
        clean: None,
        login: str,
        reason: str,
        request: pytest.FixtureRequest,
    ) -> None:
        sign_in(page, site, login)
        page.wait_for_url(f"{site.server.base_url}/ui/sso/callback?**")
        expect(page.locator("h1")).to_have_text("Kirjautuminen ei onnistunut")
        expect(page.locator("#sso-refused")).to_have_attribute("data-reason", reason)
        assert axe_violations(page) == []
        page.get_by_role("link", name="English").click()
        expect(page.locator("h1")).to_have_text("Sign-in failed")
        screenshot(page, request, f"sso-refused-{reason}")
        nothing_stored(database_url)

    def test_a_person_disabled_in_reitti_is_refused_whatever_the_provider_says(
        self, browser: Browser, site: SignInSite, database_url: str, clean: None
    ) -> None:
        context = browser.new_context(locale="fi-FI")
        page = context.new_page()
        try:
            sign_in(page, site, "kaisa")
            page.wait_for_url(f"{site.server.base_url}/ui/route")
            engine = make_engine(database_url)
            _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
            with write() as session:
                username = session.execute(text("SELECT username FROM users")).scalar_one()
                disable_user(session, username=username)
            engine.dispose()
            page.goto(f"{site.server.base_url}/ui/route")
            expect(page).to_have_url(f"{site.server.base_url}/ui/login?next=/ui/route")
            page.locator("#sso-start").click()  # the provider still has her session: straight back
            page.wait_for_url(f"{site.server.base_url}/ui/sso/callback?**")
            expect(page.locator("#sso-refused")).to_have_attribute("data-reason", "disabled")
            assert count_rows(database_url, "ui_sessions") == 0
        finally:
            context.close()


def begin(visitor: Visitor) -> dict[str, str]:
    """Start a sign-in over HTTP: the authorisation request's parameters, the pending cookie kept."""
    started = visitor.get("/ui/sso/start")
    assert started.status_code == 303
    return {name: values[0] for name, values in parse_qs(urlsplit(started.headers["location"]).query).items()}


class TestRefusedCallbacks:
    def test_the_authorisation_request_carries_pkce_state_and_nonce(
        self, site: SignInSite, clean: None, visitor_of: VisitorOf
    ) -> None:
        asked = begin(visitor_of(site.server))
        assert asked["code_challenge_method"] == "S256"
        assert len(asked["code_challenge"]) == 43
        assert len(asked["state"]) >= 32
        assert len(asked["nonce"]) >= 32

    def test_a_callback_with_another_state_is_refused(
        self, site: SignInSite, database_url: str, clean: None, visitor_of: VisitorOf
    ) -> None:
        visitor = visitor_of(site.server)
        begin(visitor)
        refused = visitor.get("/ui/sso/callback?code=anything&state=not-this-browsers")
        assert refused.status_code == 400
        assert 'data-reason="state"' in refused.text
        nothing_stored(database_url)

    def test_a_callback_in_a_browser_that_did_not_begin_the_sign_in_is_refused(
        self, site: SignInSite, database_url: str, clean: None, visitor_of: VisitorOf
    ) -> None:
        state = begin(visitor_of(site.server))["state"]
        refused = visitor_of(site.server).get(f"/ui/sso/callback?code=anything&state={state}")
        assert refused.status_code == 400
        nothing_stored(database_url)

    def test_a_code_the_provider_never_issued_is_refused(
        self, site: SignInSite, database_url: str, clean: None, visitor_of: VisitorOf
    ) -> None:
        visitor = visitor_of(site.server)
        state = begin(visitor)["state"]
        refused = visitor.get(f"/ui/sso/callback?code=made-up&state={state}")
        assert refused.status_code == 502
        assert 'data-reason="provider"' in refused.text
        nothing_stored(database_url)


@dataclass
class ForgedSite:
    server: Server
    forger: ForgingProvider


@pytest.fixture(scope="session")
def forged(database_url: str) -> Iterator[ForgedSite]:
    """Reitti whose provider's token endpoint hands out the ID token the test forged."""
    forger = ForgingProvider(signing_key())
    with forger, Server(sso_settings(database_url, forger.issuer)) as server:
        yield ForgedSite(server, forger)


def id_token_claims(issuer: str, sign_ins_nonce: str, **changes: Any) -> dict[str, Any]:
    """A coach's ID token's claims, with `changes` (None leaves a claim out)."""
    now = int(time.time())
    claims = {"iss": issuer, "aud": UI_CLIENT[0], "sub": "kaisa", "iat": now, "exp": now + 300}
    claims |= {"nonce": sign_ins_nonce, "groups": ["reitti-coaches-244"], **changes}
    return {name: value for name, value in claims.items() if value is not None}


class TestForgedIdTokens:
    def sign_in_with(self, site: ForgedSite, forge: Any, visitor_of: VisitorOf) -> httpx.Response:
        visitor = visitor_of(site.server)
        asked = begin(visitor)
        site.forger.id_token = forge(site.forger, asked["nonce"])
        return visitor.get(f"/ui/sso/callback?code=anything&state={asked['state']}")

    def test_a_well_made_token_signs_in_so_each_refusal_below_is_for_its_one_fault(
        self, forged: ForgedSite, database_url: str, clean: None, visitor_of: VisitorOf
    ) -> None:
        well_made = self.sign_in_with(
            forged, lambda f, nonce: sign(f.key, id_token_claims(f.issuer, nonce)), visitor_of
        )
        answer = well_made
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui"
        assert count_rows(database_url, "ui_sessions") == 1

    @pytest.mark.parametrize(
        ("fault", "forge"),
        [
            ("'iss'", lambda f, n: sign(f.key, id_token_claims("https://login.example.com/other", n))),
            ("'aud'", lambda f, n: sign(f.key, id_token_claims(f.issuer, n, aud="someone-else"))),
            ("expired_token", lambda f, n: sign(f.key, id_token_claims(f.issuer, n, exp=int(time.time()) - 3600))),
            ("nonce is not this sign-in's", lambda f, n: sign(f.key, id_token_claims(f.issuer, "another-nonce"))),
            ("nonce is not this sign-in's", lambda f, n: sign(f.key, id_token_claims(f.issuer, n, nonce=None))),
            ("signed with 'none'", lambda f, n: sign(f.key, id_token_claims(f.issuer, n), alg="none")),
            ("not in the provider's JWKS", lambda f, n: sign(signing_key("rogue"), id_token_claims(f.issuer, n))),
            ("bad_signature", lambda f, n: sign(signing_key(), id_token_claims(f.issuer, n))),  # the JWKS's kid
        ],
        ids=["issuer", "audience", "expired", "another-nonce", "no-nonce", "alg-none", "unknown-key", "other-key"],
    )
    def test_a_forged_id_token_is_refused_for_its_fault_and_nothing_is_stored(
        self,
        forged: ForgedSite,
        database_url: str,
        clean: None,
        fault: str,
        forge: Any,
        visitor_of: VisitorOf,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="reitti"):
            answer = self.sign_in_with(forged, forge, visitor_of)
        assert answer.status_code == 401
        assert 'data-reason="token"' in answer.text
        refusals = [record.getMessage() for record in caplog.records if "sign-in refused" in record.getMessage()]
        assert len(refusals) == 1
        assert fault in refusals[0]
        nothing_stored(database_url)


class TestLocalAccountsOff:
    def test_only_the_provider_is_offered_a_password_is_refused_and_local_sessions_end(
        self, site: SignInSite, database_url: str, clean: None, page: Page, visitor_of: VisitorOf
    ) -> None:
        engine = make_engine(database_url)
        _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
        with write() as session:
            create_user(
                session, username="paikallinen", display_name="P", role=Role.auditor, municipality=None,
                password=TEST_PASSWORD,
            )  # fmt: skip
        engine.dispose()
        local = visitor_of(site.server)
        assert local.login("paikallinen", TEST_PASSWORD).status_code == 303
        assert local.get("/ui/decisions").status_code == 200

        settings = sso_settings(database_url, site.provider.issuer, local_accounts=False)
        with Server(settings) as server:
            visitor = visitor_of(server)
            login_page = visitor.get("/ui/login")
            assert 'id="sso-start"' in login_page.text
            assert 'id="password"' not in login_page.text
            refused = visitor.post("/ui/login", {"username": "paikallinen", "password": TEST_PASSWORD})
            assert refused.status_code == 403
            assert "Ei oikeutta" in refused.text  # the role's refusal, not the CSRF one
            # The session the local account had is over here: same database, same cookie.
            ended = server_visitor_with(visitor_of(server), local.cookies).get("/ui/decisions")
            assert ended.status_code == 303
            assert ended.headers["location"].startswith("/ui/login")
            page.goto(f"{server.base_url}/ui/login")
            assert axe_violations(page) == []
        assert count_rows(database_url, "ui_sessions") == 0


def server_visitor_with(visitor: Visitor, cookies: dict[str, str]) -> Visitor:
    """A visitor carrying another visitor's cookies: the same browser, at another server."""
    visitor.cookies = dict(cookies)
    return visitor
