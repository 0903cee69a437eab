"""The UI tests' visitors, for every module here (the browser is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server
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
