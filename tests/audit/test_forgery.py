"""Forgeries by someone who can write to the database but does not hold the chain key.

Each test plays the intruder the security issue described: a link computed as the README
says, an edit re-hashed through to the head, two decisions' numbers swapped, the access log
re-attributed, added to or cut. Before the chain key's MAC each of these verified as intact.
The documents are taken from the service's own output, so the intruder knows the format.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from sqlalchemy import insert, inspect, select, text

from app.db import make_engine
from app.models import ChainLink, Decision
from tests.audit.test_chain import auditor_key, tamper, three_decisions, verify
from tests.conftest import KeyMaker, without_append_only_triggers
from tests.web.api.test_decisions import post


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_of(api: httpx.Client, auditor: dict[str, str], decision_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/decisions/{decision_id}/link", headers=auditor)
    assert response.status_code == 200, response.text
    link: dict[str, Any] = response.json()
    return link


def forge_append(api: httpx.Client, auditor: dict[str, str], database_url: str) -> str:
    """Append a copy of the last decision and a link computed as the README describes; its id."""
    engine = make_engine(database_url)
    links, decisions = ChainLink.__table__, Decision.__table__
    try:
        with engine.connect() as connection:
            last = dict(connection.execute(select(links).order_by(links.c.seq.desc()).limit(1)).one()._mapping)
        # Read before the intruder's transaction: on SQLite the service's logging of this read waits for it.
        document = json.loads(link_of(api, auditor, last["record_id"])["document"])
        with engine.begin() as connection:  # plain INSERTs: the log may grow
            row = dict(
                connection.execute(select(decisions).where(decisions.c.decision_id == last["record_id"])).one()._mapping
            )
            del row["seq"]
            row.update(decision_id="00000000-0000-7000-8000-00000000f0f0", event_id="forged")
            connection.execute(insert(decisions), row)
            new_seq = connection.execute(select(decisions.c.seq).where(decisions.c.event_id == "forged")).scalar_one()
            document["seq"] = last["seq"] + 1
            document["record"].update(decision_id=row["decision_id"], event_id="forged")
            if "seq" in document["record"]:
                document["record"]["seq"] = new_seq
            forged = {**last, "seq": last["seq"] + 1, "record_id": row["decision_id"], "prev_hash": last["hash"]}
            forged["hash"] = hashlib.sha256((last["hash"] + canonical(document)).encode()).hexdigest()
            columns = {column["name"] for column in inspect(connection).get_columns("audit_chain")}
            connection.execute(insert(links), {name: value for name, value in forged.items() if name in columns})
    finally:
        engine.dispose()
    return str(row["decision_id"])


class TestTheChainKey:
    def test_a_decision_and_link_appended_as_the_readme_describes_are_found_even_past_a_checkpoint(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        forged = forge_append(api, auditor, database_url)
        result = verify(api, auditor, **checkpoint)
        assert result["intact"] is False
        assert result["intact_up_to"] == 3
        assert (result["findings"][0]["seq"], result["findings"][0]["record_id"]) == (4, forged)

    def test_an_edit_rehashed_through_to_the_head_is_found(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        posted = three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        tamper(
            database_url, "UPDATE decisions SET handler_unit = 'x' WHERE decision_id = :id", id=posted[1]["decision_id"]
        )
        prev_hash = link_of(api, auditor, posted[0]["decision_id"])["hash"]
        for decision in posted[1:]:  # every link from the edit to the head, computed anew
            document = link_of(api, auditor, decision["decision_id"])["document"]
            digest = hashlib.sha256((prev_hash + document).encode()).hexdigest()
            statement = "UPDATE audit_chain SET prev_hash = :prev, hash = :hash WHERE record_id = :id"
            tamper(database_url, statement, prev=prev_hash, hash=digest, id=decision["decision_id"])
            prev_hash = digest
        result = verify(api, auditor)
        assert result["intact"] is False
        assert result["findings"][0]["seq"] == 2

    def test_two_decisions_whose_numbers_are_swapped_are_found(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        three_decisions(api, make_key)
        with without_append_only_triggers(database_url) as connection:
            first, second = connection.execute(text("SELECT seq FROM decisions ORDER BY seq LIMIT 2")).scalars()
            for old, new in ((first, -1), (second, first), (-1, second)):
                connection.execute(text("UPDATE decisions SET seq = :new WHERE seq = :old"), {"new": new, "old": old})
        result = verify(api, auditor_key(make_key))
        assert result["intact"] is False
        assert result["findings"][0]["seq"] == 1


def coach_reads(api: httpx.Client, make_key: KeyMaker, times: int) -> None:
    decision = post(api, make_key(), "e1", "244")
    coach = make_key(role="coach", name="coach-244", municipality="244")
    for _ in range(times):
        assert api.get(f"/v1/decisions/{decision['decision_id']}", headers=coach).status_code == 200


class TestTheAccessLogIsChained:
    def test_a_read_re_attributed_to_someone_else_is_found(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        coach_reads(api, make_key, 3)
        tamper(
            database_url,
            "UPDATE access_log SET key_name = 'someone-else' WHERE seq = (SELECT min(seq) FROM access_log)",
        )
        result = verify(api, auditor_key(make_key))
        assert result["intact"] is False
        assert "access log" in result["summary"]

    def test_an_entry_removed_from_the_middle_is_found(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        coach_reads(api, make_key, 3)
        tamper(database_url, "DELETE FROM access_log WHERE seq = (SELECT min(seq) + 1 FROM access_log)")
        result = verify(api, auditor_key(make_key))
        assert result["intact"] is False
        assert "access log" in result["summary"]

    def test_an_entry_added_beside_the_service_is_found(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        coach_reads(api, make_key, 2)
        engine = make_engine(database_url)
        try:
            with engine.begin() as connection:
                table = inspect(connection).get_columns("access_log")
                listed = ", ".join(column["name"] for column in table if column["name"] != "seq")
                last = "(SELECT max(seq) FROM access_log)"
                copy = f"INSERT INTO access_log (seq, {listed}) SELECT seq + 1, {listed} FROM access_log WHERE seq = "
                copy += last
                connection.execute(text(copy))
        finally:
            engine.dispose()
        result = verify(api, auditor_key(make_key))
        assert result["intact"] is False
        assert "access log" in result["summary"]

    def test_entries_removed_from_the_end_are_found_against_a_checkpoint(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        coach_reads(api, make_key, 3)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        assert checkpoint["access_seq"] == 3
        tamper(database_url, "DELETE FROM access_log WHERE seq = (SELECT max(seq) FROM access_log)")
        result = verify(api, auditor, **checkpoint)
        assert result["intact"] is False
        assert "entries were deleted from the end" in result["summary"]
