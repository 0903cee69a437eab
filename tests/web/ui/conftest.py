"""The UI tests' visitors and browser, for every module here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import Server
from tests.web.ui.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.ui.test_pages import Visitor, VisitorMaker


@pytest.fixture
def new_visitor(server: Server) -> Iterator[VisitorMaker]:
    """Make visitors of the test server; their connections are closed after the test."""
    made: list[Visitor] = []

    def make() -> Visitor:
        made.append(Visitor(server))
        return made[-1]

    yield make
    for visitor in made:
        visitor.client.close()


@pytest.fixture
def visitor(new_visitor: VisitorMaker) -> Visitor:
    return new_visitor()


# The browser, for every module here: one Playwright and one Chromium for the whole run.
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
