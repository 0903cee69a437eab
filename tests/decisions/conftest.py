"""Fixtures of the decision log's service-level tests: an engine on each test database, emptied after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from app.db import make_engine
from tests.conftest import empty_the_log


@pytest.fixture
def database(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
    empty_the_log(database_url)
