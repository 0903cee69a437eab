"""Fixtures of the reports' tests: a decision log of a year, written once per database and test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from app.db import make_engine
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from tests.conftest import empty_the_log
from tests.reports.log import Logged, answer_items, read_log, write_log


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def log(database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine) -> Iterator[list[Logged]]:
    """A year's decisions in the test database, some of their items answered today; emptied after the module.

    The list is the decisions as the log's own rows say; the answers' tests read their tables.
    """
    write_log(database, rules, rule_engine, count=600)
    # Some items answered: the waiting times of the dashboard.
    answer_items(database, taken=120, returned=20)
    yield read_log(database)
    empty_the_log(database_url)
