"""Checkpoints kept by the service itself in a directory outside the database, and the chain key's
rotation: truncation is caught without anyone remembering to take a checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from app.audit.checkpoints import Checkpoint, CheckpointWriter, newest_checkpoint, write_checkpoint
from app.audit.keys import ChainKeys, key_id, session_info
from app.audit.verification import verify
from app.config import Settings
from app.db import make_engine, make_sessions
from app.decisions.intake import prepare
from app.decisions.store import submit
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from app.schemas import EventIn
from tests.audit.test_chain import reitti_audit, tamper, three_decisions
from tests.conftest import (
    TEST_CHAIN_INFO,
    TEST_CHAIN_KEY,
    TEST_CHECKPOINT_KEY,
    TEST_PSEUDONYM_KEY,
    KeyMaker,
    Server,
)
from tests.web.api.test_decisions import post
from tests.web.api.test_events import oeo_start

KEY = TEST_CHECKPOINT_KEY.encode()


def cut_the_last_decision(database_url: str, decision_id: str) -> None:
    tamper(database_url, "DELETE FROM audit_chain WHERE record_id = :id", id=decision_id)
    tamper(database_url, "DELETE FROM decisions WHERE decision_id = :id", id=decision_id)


class TestTheCheckpointDirectory:
    def test_the_service_keeps_a_checkpoint_of_the_head_it_leaves_when_it_stops(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str, tmp_path: Path
    ) -> None:
        settings = Settings(database_url=database_url, pseudonym_key=TEST_PSEUDONYM_KEY, checkpoint_dir=tmp_path)
        settings = replace(settings, checkpoint_every=3600.0)  # the schedule never comes: only the stop keeps one
        key = make_key()
        with Server(settings) as server, httpx.Client(base_url=server.base_url) as client:
            posted = [post(client, key, f"s{number}", "244") for number in range(2)]
            assert list(tmp_path.iterdir()) == []
        kept = newest_checkpoint(tmp_path, KEY)
        assert kept is not None
        assert kept.seq == 2
        cut_the_last_decision(database_url, posted[-1]["decision_id"])
        verified = reitti_audit(database_url, "verify", env={"REITTI_CHECKPOINT_DIR": str(tmp_path)})
        assert verified.returncode == 1
        assert "links were deleted from the end" in verified.stdout
        assert f"from {tmp_path}" in verified.stdout

    def test_the_newest_signed_checkpoint_is_used_and_a_forged_one_is_skipped(self, tmp_path: Path) -> None:
        older = write_checkpoint(tmp_path, Checkpoint.signed(KEY, seq=1, hash="a" * 64, at="2026-11-30T10:00:00Z"))
        newest = Checkpoint.signed(KEY, seq=7, hash="b" * 64, at="2026-11-30T11:00:00Z")
        write_checkpoint(tmp_path, newest)
        forged = Checkpoint(seq=9, hash="c" * 64, at="2026-11-30T12:00:00Z", signature="0" * 64)
        (tmp_path / "checkpoint-forged.json").write_text(json.dumps(forged.as_json()))
        (tmp_path / "checkpoint-broken.json").write_text("{")
        assert older.exists()
        assert newest_checkpoint(tmp_path, KEY) == newest

    def test_a_checkpoint_is_kept_only_when_the_head_moved(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        read, _ = make_sessions(engine, info=TEST_CHAIN_INFO)
        writer = CheckpointWriter(read, KEY, tmp_path, every=3600.0)
        try:
            first = writer.take()
            assert first is not None
            assert writer.take() is None
            post(api, make_key(), "e1", "244")
            assert writer.take() is not None
        finally:
            writer.close()
            engine.dispose()
        kept = newest_checkpoint(tmp_path, KEY)
        assert kept is not None
        assert kept.seq == 1
        assert len(list(tmp_path.glob("checkpoint-*.json"))) == 2

    def test_verify_without_a_checkpoint_in_the_directory_says_so(self, database_url: str, tmp_path: Path) -> None:
        verified = reitti_audit(database_url, "verify", env={"REITTI_CHECKPOINT_DIR": str(tmp_path)})
        assert verified.returncode == 0, verified.stderr
        assert f"no checkpoint in {tmp_path}" in verified.stdout


class TestTheChainKey:
    def test_a_rotated_key_verifies_with_the_old_one_and_an_unknown_key_is_a_finding(
        self, api: httpx.Client, make_key: KeyMaker, database_url: str, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        three_decisions(api, make_key)
        engine = make_engine(database_url)
        try:
            rotated = ChainKeys.of(b"the next key", [TEST_CHAIN_KEY.encode()])
            read, write = make_sessions(engine, info=session_info(rotated))
            body = EventIn.model_validate(oeo_start("after-rotation"))
            with write() as session:  # a fourth link, signed with the new key
                submit(session, prepare(body, client="c", rules=rules, engine=rule_engine, pseudonym_key=b"k"))
            with read() as session:
                result = verify(session)
            assert (result.intact, result.links) == (True, 4)
            without_old, _ = make_sessions(engine, info=session_info(ChainKeys.of(b"the next key")))
            with without_old() as session:
                result = verify(session)
            assert (result.intact, result.intact_up_to) == (False, 0)
            assert f"key {key_id(TEST_CHAIN_KEY.encode())}" in result.findings[0].problem
            assert "unknown key" in result.findings[0].problem
        finally:
            engine.dispose()

    def test_the_chain_key_is_required_on_postgresql_and_kept_beside_sqlite(self, database_url: str) -> None:
        made = reitti_audit(database_url, "verify", env={"REITTI_CHAIN_KEY": None})
        if make_url(database_url).get_backend_name() == "postgresql":
            assert made.returncode == 2
            assert "REITTI_CHAIN_KEY" in made.stderr
            return
        key_file = Path(str(make_url(database_url).database) + ".chain-key")
        assert key_file.stat().st_mode & 0o077 == 0
        assert "REITTI_CHAIN_KEY is not set" in made.stderr
