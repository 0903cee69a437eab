"""The audit chain on SQLite and PostgreSQL: links, append-only tables, verification,
checkpoints, the migration that chains an existing log, and `reitti audit`.

Tampering is done as an intruder with the database's owner rights would do it: directly in
the database, on a connection where the append-only triggers do not fire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from app.audit import chain, verification
from app.audit.keys import key_id
from app.db import make_engine, make_sessions
from app.decisions.store import decision_values, request_fingerprint
from app.models import ChainLink, Decision, RecordKind
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from tests.cli.test_cli import reitti
from tests.conftest import (
    TEST_CHAIN_INFO,
    TEST_CHAIN_KEY,
    TEST_CHECKPOINT_KEY,
    KeyMaker,
    count_rows,
    empty_database,
    migrate,
    without_append_only_triggers,
)
from tests.web.api.test_decisions import post
from tests.web.api.test_events import oeo_start

GENESIS = "0" * 64
# Events whose decisions carry every kind of value a document holds: an offset other than
# UTC, booleans, a null customership (a person), an employer's business id, echoed choices.
ROUND_TRIP: list[dict[str, Any]] = [
    {},
    {"occurred_at": "2025-06-30T23:59:59.123456-05:00"},
    {
        "event_type": "integration.eligibility",
        "customer": {"type": "jobseeker", "id": "x-42", "home_municipality": "139"},
        "attributes": {
            "integration_plan_entitled": True,
            "integration_period_exceeded": False,
            "needs_integration_services": True,
        },
    },
    {
        "event_type": "labour_policy_statement",
        "customer": {"type": "jobseeker", "id": "010594Y9032", "home_municipality": "425"},
        "attributes": {"requires_special_expertise": True},
    },
    {
        "event_type": "employer.advice",
        "customer": {"type": "employer", "id": "0112038-9", "home_municipality": "564"},
        "attributes": {"channel": "phone", "topic": "training"},
    },
    {
        "event_type": "startup_grant.statement",
        "customer": {"type": "person", "id": "010594Y9032", "home_municipality": "564"},
    },
]


def auditor_key(make_key: KeyMaker) -> dict[str, str]:
    return make_key(role="auditor", name="auditor")


def verify(api: httpx.Client, auditor: dict[str, str], **checkpoint: Any) -> dict[str, Any]:
    response = api.get("/v1/audit/verify", params=checkpoint, headers=auditor)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def tamper(database_url: str, statement: str, **params: Any) -> None:
    """Change the database behind the service's back."""
    with without_append_only_triggers(database_url) as connection:
        connection.execute(text(statement), params)


def three_decisions(api: httpx.Client, make_key: KeyMaker) -> list[dict[str, Any]]:
    key = make_key()
    return [post(api, key, f"e{i}", "244") for i in range(1, 4)]


class TestChainLinks:
    def test_each_decision_is_linked_in_order_and_its_hash_can_be_recomputed(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        posted = three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        links = [api.get(f"/v1/decisions/{d['decision_id']}/link", headers=auditor).json() for d in posted]
        assert [link["seq"] for link in links] == [1, 2, 3]
        assert [link["prev_hash"] for link in links] == [GENESIS, links[0]["hash"], links[1]["hash"]]
        for link, decision in zip(links, posted, strict=True):
            # What an auditor can do by hand: printf %s%s "$prev_hash" "$document" | sha256sum
            assert hashlib.sha256((link["prev_hash"] + link["document"]).encode()).hexdigest() == link["hash"]
            # and, with the chain key: printf %s "$hash" | openssl dgst -sha256 -hmac "$REITTI_CHAIN_KEY"
            assert link["mac"] == hmac.new(TEST_CHAIN_KEY.encode(), link["hash"].encode(), hashlib.sha256).hexdigest()
            assert link["mac_key"] == key_id(TEST_CHAIN_KEY.encode())
            document = json.loads(link["document"])
            assert document["seq"] == link["seq"]
            assert document["mac_key"] == link["mac_key"]
            assert document["record"]["decision"] == decision
            assert document["record"]["home_municipality"] == "244"
        result = verify(api, auditor)
        assert result["intact"] is True
        reads = result["access_entries"]  # the auditor's reads of the links are logged, and chained
        assert (reads, result["access_intact_up_to"]) == (3, 3)
        assert result["summary"] == f"intact up to sequence 3, head {links[2]['hash']}; access log intact up to entry 3"

    def test_a_replayed_event_adds_no_link(self, api: httpx.Client, make_key: KeyMaker, database_url: str) -> None:
        key = make_key()
        assert api.post("/v1/events", json=oeo_start(), headers=key).status_code == 201
        assert api.post("/v1/events", json=oeo_start(), headers=key).status_code == 200
        assert count_rows(database_url, "audit_chain") == 1

    def test_concurrent_posts_never_fork_the_chain(self, api: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key()
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def post_five(thread: int) -> None:
            with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
                barrier.wait()
                for n in range(5):
                    statuses.append(
                        client.post("/v1/events", json=oeo_start(f"t{thread}-{n}"), headers=key).status_code
                    )

        threads = [threading.Thread(target=post_five, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [201] * 80
        result = verify(api, auditor_key(make_key))
        assert (result["intact"], result["links"], result["intact_up_to"]) == (True, 80, 80)

    def test_every_kind_of_value_verifies_after_its_round_trip_through_the_database(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        """Timestamps with offsets, JSONB's key order, booleans, nulls and Finnish text all hash as stored."""
        key = make_key()
        posted = [post(api, key, f"r{number}", "244", **changes) for number, changes in enumerate(ROUND_TRIP)]
        assert None in [decision["customership"] for decision in posted]
        result = verify(api, auditor_key(make_key))
        assert (result["intact"], result["links"]) == (True, len(ROUND_TRIP))


class TestVerify:
    def test_an_edited_decision_is_named_as_the_first_broken_link(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        posted = three_decisions(api, make_key)
        edited = posted[1]["decision_id"]
        tamper(database_url, "UPDATE decisions SET home_municipality = '139' WHERE decision_id = :id", id=edited)
        result = verify(api, auditor_key(make_key))
        assert result["intact"] is False
        assert result["intact_up_to"] == 1
        first = result["findings"][0]
        assert (first["seq"], first["record_id"]) == (2, edited)
        assert "edited" in first["problem"]
        assert result["summary"].startswith("NOT intact")

    def test_an_edit_whose_link_is_rehashed_breaks_at_its_mac(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        """An intruder who knows the algorithm can re-hash a link, but not MAC it without the chain key."""
        posted = three_decisions(api, make_key)
        edited = posted[1]["decision_id"]
        with without_append_only_triggers(database_url) as connection:
            decisions = Decision.__table__
            connection.execute(update(decisions).where(decisions.c.decision_id == edited).values(handler_unit="x"))
            link = connection.execute(select(ChainLink.__table__).where(ChainLink.record_id == edited)).one()
            row = connection.execute(select(decisions).where(decisions.c.decision_id == edited)).one()
            record = chain.record_of(RecordKind.decision, row)
            document = chain.link_document(
                seq=2, kind=RecordKind.decision, chained_at=link.chained_at, record=record, mac_key=link.mac_key
            )
            rehashed = chain.link_hash(link.prev_hash, document)
            connection.execute(update(ChainLink.__table__).where(ChainLink.seq == 2).values(hash=rehashed))
        result = verify(api, auditor_key(make_key))
        assert result["intact_up_to"] == 1
        assert result["findings"][0]["seq"] == 2
        assert "MAC does not match" in result["findings"][0]["problem"]

    def test_a_link_whose_kind_was_edited_is_named_not_a_crash(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        three_decisions(api, make_key)
        tamper(database_url, "UPDATE audit_chain SET kind = 'nonsense' WHERE seq = 2")
        first = verify(api, auditor_key(make_key))["findings"][0]
        assert first["seq"] == 2
        assert "'nonsense'" in first["problem"]

    def test_a_deleted_middle_decision_is_named(self, api: httpx.Client, make_key: KeyMaker, database_url: str) -> None:
        posted = three_decisions(api, make_key)
        gone = posted[1]["decision_id"]
        tamper(database_url, "DELETE FROM decisions WHERE decision_id = :id", id=gone)
        first = verify(api, auditor_key(make_key))["findings"][0]
        assert (first["seq"], first["record_id"]) == (2, gone)
        assert "not in the log" in first["problem"]

    def test_a_deleted_middle_link_and_its_decision_leave_a_gap(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        posted = three_decisions(api, make_key)
        gone = posted[1]["decision_id"]
        tamper(database_url, "DELETE FROM audit_chain WHERE record_id = :id", id=gone)
        tamper(database_url, "DELETE FROM decisions WHERE decision_id = :id", id=gone)
        result = verify(api, auditor_key(make_key))
        assert result["intact_up_to"] == 1
        assert result["findings"][0]["seq"] == 3
        assert "sequence 2 is missing" in result["findings"][0]["problem"]

    def test_a_decision_written_beside_the_service_has_no_link(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        posted = three_decisions(api, make_key)
        decisions = Decision.__table__
        engine = make_engine(database_url)
        try:
            with engine.begin() as connection:  # inserting is allowed: the log only grows
                row = dict(connection.execute(select(decisions).order_by(decisions.c.seq).limit(1)).one()._mapping)
                del row["seq"]
                row.update(decision_id="00000000-0000-7000-8000-000000000000", event_id="forged")
                connection.execute(insert(decisions), row)
        finally:
            engine.dispose()
        result = verify(api, auditor_key(make_key))
        assert result["intact_up_to"] == len(posted)
        assert result["findings"] == [
            {
                "seq": None,
                "record_id": row["decision_id"],
                "problem": f"decision {row['decision_id']} has no link: it was written outside the service",
                "log": "decisions",
            }
        ]


class TestCheckpoints:
    def test_the_checkpoint_is_the_head_signed_with_the_key_outside_the_database(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        result = verify(api, auditor)
        assert (checkpoint["seq"], checkpoint["hash"]) == (3, result["head_hash"])
        signed = ("seq", "hash", "at", "access_seq", "access_hash")  # and the access log's head
        payload = json.dumps({k: checkpoint[k] for k in signed}, sort_keys=True, separators=(",", ":"))
        expected = hmac.new(TEST_CHECKPOINT_KEY.encode(), payload.encode(), hashlib.sha256).hexdigest()
        assert checkpoint["signature"] == expected
        assert verify(api, auditor, **checkpoint)["intact"] is True

    def test_links_deleted_from_the_end_are_found_only_against_a_checkpoint(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        posted = three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        last = posted[2]["decision_id"]
        tamper(database_url, "DELETE FROM audit_chain WHERE record_id = :id", id=last)
        tamper(database_url, "DELETE FROM decisions WHERE decision_id = :id", id=last)
        alone = verify(api, auditor)
        assert (alone["intact"], alone["intact_up_to"]) == (True, 2)  # the chain alone cannot tell
        against = verify(api, auditor, **checkpoint)
        assert against["intact"] is False
        assert "deleted from the end" in against["findings"][0]["problem"]

    def test_a_chain_rewritten_after_the_checkpoint_does_not_match_it(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        """Rows deleted from the end and the service carried on: the same length, another history."""
        posted = three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        # Every trace of them: the link, the row, and what the writer recorded beside it (worklists,
        # register), so that the service carries on with the deleted rows' sequence numbers.
        for decision in posted[1:]:
            for table, column in (
                ("audit_chain", "record_id"),
                ("worklist_items", "decision_id"),
                ("customerships", "decision_id"),
                ("decisions", "decision_id"),
            ):
                tamper(database_url, f"DELETE FROM {table} WHERE {column} = :id", id=decision["decision_id"])  # noqa: S608
        tamper(database_url, "DELETE FROM customer_holders")
        key = make_key(name="later")
        post(api, key, "e4", "244")
        post(api, key, "e5", "244")
        against = verify(api, auditor, **checkpoint)
        assert against["intact_up_to"] == 3
        assert [f["seq"] for f in against["findings"]] == [3]
        assert "rewritten" in against["findings"][0]["problem"]

    def test_a_changed_checkpoint_fails_its_signature(self, api: httpx.Client, make_key: KeyMaker) -> None:
        three_decisions(api, make_key)
        auditor = auditor_key(make_key)
        checkpoint = api.get("/v1/audit/checkpoints", headers=auditor).json()
        result = verify(api, auditor, **{**checkpoint, "seq": 2})
        assert result["intact"] is False
        assert "signature" in result["findings"][0]["problem"]

    def test_a_partial_or_impossible_checkpoint_is_422_naming_the_field(
        self, api: httpx.Client, make_key: KeyMaker
    ) -> None:
        auditor = auditor_key(make_key)
        response = api.get("/v1/audit/verify", params={"seq": 1, "hash": GENESIS}, headers=auditor)
        assert response.status_code == 422
        assert {tuple(e["loc"]) for e in response.json()["errors"]} == {("query", "at"), ("query", "signature")}
        huge = {"seq": 2**64, "hash": GENESIS, "at": "x", "signature": GENESIS}
        response = api.get("/v1/audit/verify", params=huge, headers=auditor)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "seq"]


class TestMigration:
    def test_decisions_stored_before_the_chain_are_chained_in_order_and_then_protected(
        self, database_url: str, tmp_path: Path, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        kind = make_url(database_url).get_backend_name()
        with empty_database(kind, tmp_path) as url:
            migrate(url, "0001")
            rows = []
            for number in range(5):
                body = EventIn.model_validate(oeo_start(f"old-{number}"))
                event = read_event(body, rules, pseudonym_key=b"k")
                decision = decide(event, engine=rule_engine, registry=rules.registry)
                fingerprint = request_fingerprint(body, event.customer_pseudonym)
                rows.append(decision_values(client="c", event=event, fingerprint=fingerprint, decision=decision))
            engine = make_engine(url)
            with engine.begin() as connection:
                connection.execute(insert(Decision.__table__), rows)
            migrate(url)
            read, _ = make_sessions(engine, info=TEST_CHAIN_INFO)
            with read() as session:
                result = verification.verify(session)
                linked = session.scalars(select(ChainLink.record_id).order_by(ChainLink.seq)).all()
            assert (result.intact, result.links) == (True, 5)
            assert linked == [row["decision_id"] for row in rows]
            with pytest.raises(IntegrityError, match="append-only"), engine.begin() as connection:
                connection.execute(text("DELETE FROM decisions"))
            engine.dispose()


def reitti_audit(
    database_url: str, *args: str, key: str | None = TEST_CHECKPOINT_KEY, env: dict[str, str | None] | None = None
) -> Any:
    """`reitti audit ...` on the test database with the test keys; `env` on top."""
    variables = {"REITTI_DATABASE_URL": database_url, "REITTI_CHECKPOINT_KEY": key, "REITTI_CHAIN_KEY": TEST_CHAIN_KEY}
    return reitti("audit", *args, env={**variables, **(env or {})})


class TestAuditCommand:
    def test_verify_prints_the_head_and_checks_a_checkpoint_kept_in_a_file(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str, tmp_path: Path
    ) -> None:
        posted = three_decisions(api, make_key)
        made = reitti_audit(database_url, "checkpoint")
        assert made.returncode == 0, made.stderr
        checkpoint = json.loads(made.stdout)
        kept = tmp_path / "checkpoint.json"
        kept.write_text(made.stdout)
        verified = reitti_audit(database_url, "verify", "--checkpoint", str(kept))
        assert verified.returncode == 0, verified.stderr
        assert (
            verified.stdout.splitlines()[0]
            == f"intact up to sequence 3, head {checkpoint['hash']}; access log intact up to entry 0"
        )
        assert verified.stdout.splitlines()[1].startswith("checked against the checkpoint of")
        tamper(database_url, "UPDATE decisions SET rule_id = 'x' WHERE decision_id = :id", id=posted[0]["decision_id"])
        broken = reitti_audit(database_url, "verify")
        assert broken.returncode == 1
        assert "sequence 1:" in broken.stdout
        assert posted[0]["decision_id"] in broken.stdout

    def test_a_checkpoint_needs_its_key_on_postgresql_and_keeps_one_beside_sqlite(self, database_url: str) -> None:
        made = reitti_audit(database_url, "checkpoint", key=None)
        if make_url(database_url).get_backend_name() == "postgresql":
            assert made.returncode == 2
            assert "REITTI_CHECKPOINT_KEY" in made.stderr
            return
        assert made.returncode == 0, made.stderr
        key_file = Path(str(make_url(database_url).database) + ".checkpoint-key")
        assert key_file.stat().st_mode & 0o077 == 0
        assert "REITTI_CHECKPOINT_KEY is not set" in made.stderr
