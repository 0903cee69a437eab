"""The database helpers, on each database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from app.db import make_engine, refresh_sqlite_statistics
from app.decisions.store import decision_values, request_fingerprint
from app.models import Decision
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from tests.conftest import empty_database, migrate
from tests.web.api.test_events import oeo_start


def test_sqlite_statistics_are_made_once_the_log_is_large_and_again_when_it_has_doubled(
    database_url: str, tmp_path: Path, rules: Rules, rule_engine: RuleEngine
) -> None:
    kind = make_url(database_url).get_backend_name()
    with empty_database(kind, tmp_path) as url:
        migrate(url)
        body = EventIn.model_validate(oeo_start())
        event = read_event(body, rules, pseudonym_key=b"k")
        decision = decide(event, engine=rule_engine, registry=rules.registry)
        values = decision_values(client="c", event=event, fingerprint=request_fingerprint(body, "p"), decision=decision)
        engine = make_engine(url)

        def add(count: int, start: int) -> None:
            rows = [{**values, "decision_id": f"d-{n}", "event_id": f"e-{n}"} for n in range(start, start + count)]
            with engine.begin() as connection:
                connection.execute(insert(Decision.__table__), rows)

        try:
            add(999, 0)
            assert refresh_sqlite_statistics(engine, least=1000) is False  # too small to matter
            add(1, 999)
            ran = refresh_sqlite_statistics(engine, least=1000)
            if kind == "postgresql":
                assert ran is False  # PostgreSQL keeps its own
                return
            assert ran is True
            with engine.connect() as connection:
                stat = connection.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'decisions'")).scalar()
            assert str(stat).startswith("1000 ")
            add(999, 1000)
            assert refresh_sqlite_statistics(engine, least=1000) is False  # not yet twice as large
            add(1, 1999)
            assert refresh_sqlite_statistics(engine, least=1000) is True
        finally:
            engine.dispose()
