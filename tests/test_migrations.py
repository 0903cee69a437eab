"""Migrations: up, down to nothing, up again, with decisions in the log; no drift from the models;
the decision counts of a log that was there before them."""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.config import REPOSITORY
from app.db import make_engine, make_sessions
from app.decisions.intake import prepare
from app.decisions.store import submit
from app.models import Base
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from app.schemas import EventIn
from tests.conftest import COUNT_TABLES, POSTGRES_ADMIN_URL, TEST_CHAIN_INFO, TEST_CHAIN_KEY
from tests.decisions.test_stats import kept_counts, random_log


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"reitti_migrations_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def alembic(url: str, *args: str) -> None:
    config = Config(str(REPOSITORY / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    config.attributes["chain_key"] = TEST_CHAIN_KEY
    getattr(command, args[0])(config, *args[1:])


def seed(url: str, rules: Rules, engine: RuleEngine, count: int = 5) -> None:
    database = make_engine(url)
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    for number in range(count):
        body = EventIn.model_validate(
            {
                "event_id": f"m{number}",
                "event_type": "oeo.start",
                "occurred_at": "2025-03-03T09:15:00+02:00",
                "customer": {"type": "jobseeker", "id": f"opaque-{number}", "home_municipality": "244"},
            }
        )
        submission = prepare(body, client="seed", rules=rules, engine=engine, pseudonym_key=b"k")
        with write() as session:
            submit(session, submission)
    database.dispose()


def test_up_down_up_with_decisions_and_no_drift(empty_database: str, rules: Rules, rule_engine: RuleEngine) -> None:
    alembic(empty_database, "upgrade", "head")
    seed(empty_database, rules, rule_engine)
    database = make_engine(empty_database)
    with database.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 5
    alembic(empty_database, "downgrade", "base")
    assert set(inspect(database).get_table_names()) <= {"alembic_version"}
    alembic(empty_database, "upgrade", "head")
    seed(empty_database, rules, rule_engine)
    with database.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 5
        drift = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    database.dispose()
    assert drift == [], "the models and the migrations differ"


def test_the_counts_made_from_a_log_are_the_counts_kept_while_it_was_written(
    empty_database: str, rules: Rules, rule_engine: RuleEngine
) -> None:
    alembic(empty_database, "upgrade", "head")
    database = make_engine(empty_database)
    _, write = make_sessions(database, info=TEST_CHAIN_INFO)
    random_log(write, rules, rule_engine, random.Random(5), count=300)
    kept = kept_counts(database)
    alembic(empty_database, "downgrade", "0003")
    assert not set(COUNT_TABLES) & set(inspect(database).get_table_names())
    alembic(empty_database, "upgrade", "head")
    made = kept_counts(database)
    database.dispose()
    assert [sum(row[-2] for row in made[table]) for table in COUNT_TABLES] == [300, 300]
    assert made == kept
