"""Append-only means append-only: every statement form that changes or removes a row, on every
guarded table, on SQLite and PostgreSQL, is refused by the database itself.

On SQLite, INSERT OR REPLACE and REPLACE INTO delete the row in their way without firing
DELETE triggers; the access log was rewritten that way once. Each form replaces an existing
row with itself but for one column, as re-attributing a read would.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from app.db import make_engine
from tests.conftest import KeyMaker
from tests.web.api.test_decisions import post

# Each guarded table and a column an intruder would change.
TABLES = {"decisions": "client", "audit_chain": "kind", "overrides": "text", "access_log": "key_name"}

# Every form, written for each database; {t} the table, {c} the changed column, {cols} all columns,
# {vals} all columns with {c} changed, {one} a condition that picks one existing row.
FORMS: dict[str, dict[str, str | None]] = {
    "update": {"sqlite": "UPDATE {t} SET {c} = 'x'", "postgresql": "UPDATE {t} SET {c} = 'x'"},
    "update or replace": {"sqlite": "UPDATE OR REPLACE {t} SET {c} = 'x'", "postgresql": None},
    "delete": {"sqlite": "DELETE FROM {t}", "postgresql": "DELETE FROM {t}"},
    "insert or replace": {
        "sqlite": "INSERT OR REPLACE INTO {t} ({cols}) SELECT {vals} FROM {t} WHERE {one}",
        "postgresql": None,
    },
    "replace into": {"sqlite": "REPLACE INTO {t} ({cols}) SELECT {vals} FROM {t} WHERE {one}", "postgresql": None},
    "insert on conflict do update": {
        "sqlite": "INSERT INTO {t} ({cols}) SELECT {cols} FROM {t} WHERE {one} "
        "ON CONFLICT (seq) DO UPDATE SET {c} = 'x'",
        "postgresql": "INSERT INTO {t} ({cols}) SELECT {cols} FROM {t} WHERE {one} "
        "ON CONFLICT (seq) DO UPDATE SET {c} = 'x'",
    },
    "merge update": {
        "sqlite": None,
        "postgresql": "MERGE INTO {t} USING (SELECT seq FROM {t} WHERE {one}) AS s ON {t}.seq = s.seq "
        "WHEN MATCHED THEN UPDATE SET {c} = 'x'",
    },
    "merge delete": {
        "sqlite": None,
        "postgresql": "MERGE INTO {t} USING (SELECT seq FROM {t} WHERE {one}) AS s ON {t}.seq = s.seq "
        "WHEN MATCHED THEN DELETE",
    },
    "truncate": {"sqlite": None, "postgresql": "TRUNCATE {t} CASCADE"},
}


def snapshot(database_url: str, table: str) -> list[tuple[object, ...]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY seq"))]  # noqa: S608
    finally:
        engine.dispose()


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("table", list(TABLES))
def test_every_form_of_change_is_refused_on_every_guarded_table(
    api: httpx.Client, make_key: KeyMaker, database_url: str, table: str, form: str
) -> None:
    dialect = make_url(database_url).get_backend_name()
    template = FORMS[form][dialect]
    if template is None:
        pytest.skip(f"{dialect} has no {form}")
    decision = post(api, make_key(), "e1", "244")
    coach = make_key(role="coach", name="coach-244", municipality="244")
    assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=coach).status_code == 200
    body = {"customership": "local-244", "reason": "customer_request"}
    assert api.post(f"/v1/decisions/{decision['decision_id']}/overrides", json=body, headers=coach).status_code == 201
    before = snapshot(database_url, table)
    assert before
    engine = make_engine(database_url)
    try:
        columns = [column["name"] for column in inspect(engine).get_columns(table)]
        column = TABLES[table]
        statement = template.format(
            t=table,
            c=column,
            cols=", ".join(columns),
            vals=", ".join("'x'" if name == column else name for name in columns),
            one=f"seq = (SELECT min(seq) FROM {table})",
        )
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
    assert snapshot(database_url, table) == before


def test_a_decision_replayed_under_its_event_id_replaces_nothing_on_sqlite(
    api: httpx.Client, make_key: KeyMaker, database_url: str
) -> None:
    """A new seq and decision id under a logged (client, event_id) is skipped, as the service's DO NOTHING asks."""
    if make_url(database_url).get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL has no REPLACE")
    post(api, make_key(), "e1", "244")
    before = snapshot(database_url, "decisions")
    engine = make_engine(database_url)
    try:
        columns = [column["name"] for column in inspect(engine).get_columns("decisions") if column["name"] != "seq"]
        values = ", ".join({"decision_id": "'forged'", "handler_unit": "'x'"}.get(name, name) for name in columns)
        with engine.begin() as connection:
            connection.execute(text(f"REPLACE INTO decisions ({', '.join(columns)}) SELECT {values} FROM decisions"))  # noqa: S608
    finally:
        engine.dispose()
    assert snapshot(database_url, "decisions") == before
