"""The storing process (app/decisions/storing.py): a worker's batches stored beside it, on both databases."""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.audit.keys import ChainKeys
from app.decisions.storing import StoringProcess, can_store_apart
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from tests.conftest import TEST_CHAIN_KEY, chain_verifies, count_rows
from tests.decisions.test_writer import submission

TEST_CHAIN_KEYS = ChainKeys.of(TEST_CHAIN_KEY.encode("utf-8"))


def test_a_batch_is_stored_there_as_here_and_a_lost_process_costs_one_batch(
    database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
) -> None:
    storing = StoringProcess(database_url, TEST_CHAIN_KEYS)
    try:
        first = [submission(rules, rule_engine, f"first-{n}") for n in range(3)]
        repeat = submission(rules, rule_engine, "first-0")
        outcomes = storing([(s.row(), None) for s in [*first, repeat]])
        assert outcomes[:3] == [None, None, None]  # stored now
        assert outcomes[3] is not None
        assert outcomes[3].decision_id == first[0].decision.decision_id  # a repeat: the first decision

        os.kill(storing._process.pid, signal.SIGKILL)  # noqa: SLF001 - the process itself is what is tested
        storing._process.join(timeout=30)  # noqa: SLF001
        with pytest.raises(OperationalError):
            storing([(submission(rules, rule_engine, "lost").row(), None)])

        after = submission(rules, rule_engine, "after")
        assert storing([(after.row(), None)]) == [None]  # a new process took over
    finally:
        storing.close()
    assert count_rows(database_url) == 4
    assert chain_verifies(database_url)[:2] == (True, 4)


def test_the_process_ends_when_its_worker_closes_the_pipe_without_a_word(database_url: str) -> None:
    """A worker that dies closes its end of the pipe: the storing process must not outlive it."""
    storing = StoringProcess(database_url, TEST_CHAIN_KEYS)
    storing._pipe.close()  # noqa: SLF001 - as a killed worker's end closes
    storing._process.join(timeout=60)  # noqa: SLF001
    assert storing._process.exitcode == 0  # noqa: SLF001


def test_an_in_memory_database_is_stored_in_the_worker_itself() -> None:
    assert not can_store_apart("sqlite://")
    assert not can_store_apart("sqlite:///:memory:")
    assert can_store_apart("sqlite:///var/reitti.db")
    assert can_store_apart("postgresql://postgres@127.0.0.1:5432/reitti")
