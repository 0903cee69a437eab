"""The admin's webhooks page in Debian's Chromium: a subscription added, its secret shown once, its log read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect
from standardwebhooks.webhooks import Webhook

from app.access.users import create_user
from app.db import make_engine, make_sessions
from app.models import Role, UiSession, User
from tests.conftest import TEST_CHAIN_INFO, TEST_PASSWORD, Server
from tests.web.ui.test_browser import axe_violations, every_control_has_a_label, log_in, screenshot
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_delivery import post_events

pytestmark = pytest.mark.slow


@pytest.fixture
def admin_user(webhook_database: str) -> Iterator[str]:
    engine = make_engine(webhook_database)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
    with write() as session:
        create_user(
            session, username="aino", display_name="Aino A.", role=Role.admin, municipality=None, password=TEST_PASSWORD
        )
    yield "aino"
    with engine.begin() as connection:
        connection.execute(UiSession.__table__.delete())
        connection.execute(User.__table__.delete())
    engine.dispose()


def test_the_admin_subscribes_a_receiver_and_reads_its_delivery_log_in_both_languages(
    page: Page,  # noqa: F811 - the fixture imported above
    webhook_server: Server,
    hooks_api: httpx.Client,
    hook_keys: dict[str, dict[str, str]],
    admin_user: str,
    receiver: Receiver,
    request: pytest.FixtureRequest,
) -> None:
    log_in(page, webhook_server, admin_user, TEST_PASSWORD)
    page.goto(f"{webhook_server.base_url}/ui/admin")
    page.get_by_role("link", name="Webhookit").click()
    assert every_control_has_a_label(page) == []
    assert axe_violations(page) == []

    page.fill("#webhook-url", "https://10.0.0.1/hook")
    page.get_by_role("button", name="Lisää", exact=True).click()
    expect(page.locator("#webhook-url-error")).to_contain_text("https://")
    expect(page.locator("#webhook-url")).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []

    page.fill("#webhook-url", receiver.url)
    page.get_by_label("Päätökset").check()
    page.get_by_role("button", name="Lisää", exact=True).click()
    secret = page.locator("#secret code").inner_text()
    assert secret.startswith("whsec_")
    assert axe_violations(page) == []

    post_events(hooks_api, hook_keys["integration"], 1, "page")
    receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    (got,) = receiver.received
    Webhook(secret).verify(got.body, got.headers)
    page.goto(f"{webhook_server.base_url}/ui/admin/webhooks")
    expect(page.locator("main table")).to_contain_text("Toimitettu")
    expect(page.locator("main table")).to_contain_text(got.message_id)
    assert secret not in page.content()  # shown once
    assert axe_violations(page) == []
    screenshot(page, request, "admin-webhooks-fi")

    page.locator("#language-switch").click()
    expect(page.locator("main table")).to_contain_text("Delivered")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("main")).to_contain_text("The subscription is disabled.")
    screenshot(page, request, "admin-webhooks-en")
