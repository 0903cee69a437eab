"""The storing process (app/decisions/storing.py): a worker's batches stored beside it, on both databases."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.audit.keys import ChainKeys
from app.decisions.store import FirstStored, Row, Submission
from app.decisions.storing import ProcessWriter, StoringProcess, can_store_apart
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from tests.conftest import TEST_CHAIN_KEY, chain_verifies, count_rows
from tests.decisions.test_writer import decision_ids, run, submission

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


@dataclass(frozen=True)
class Unstorable(Submission):
    """A submission whose row the database refuses: it names no handler."""

    def row(self) -> Row:
        row = super().row()
        return row._replace(values={**row.values, "handler_unit": None})


@dataclass(frozen=True)
class Unreadable(Submission):
    """A submission whose row cannot even be made."""

    def row(self) -> Row:
        raise ValueError("no row")


def test_the_event_loop_hands_batches_over_and_one_bad_submission_fails_alone(
    database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
) -> None:
    good = [submission(rules, rule_engine, f"good-{n}") for n in range(4)]
    refused = Unstorable(**vars(submission(rules, rule_engine, "refused")))
    unreadable = Unreadable(**vars(submission(rules, rule_engine, "unreadable")))

    async def post_all() -> list[Any]:
        writer = ProcessWriter(StoringProcess(database_url, TEST_CHAIN_KEYS))
        try:
            # The first goes at once; the rest queue behind it and go together, as one batch that
            # the database refuses: then each is stored alone.
            stores = [writer.store(s, key_id=None) for s in [good[0], good[1], refused, unreadable, *good[2:]]]
            return await asyncio.gather(*stores, return_exceptions=True)
        finally:
            writer.close()

    outcomes = run(post_all())

    assert outcomes[:2] == [(good[0].decision, True), (good[1].decision, True)]
    assert isinstance(outcomes[2], RuntimeError)  # the database's refusal, by type only
    assert isinstance(outcomes[3], ValueError)
    assert outcomes[4:] == [(s.decision, True) for s in good[2:]]
    assert sorted(decision_ids(database_url)) == sorted(s.decision.decision_id for s in good)
    assert chain_verifies(database_url)[:2] == (True, 4)


def test_a_lost_storing_process_fails_its_batch_and_the_next_goes_to_a_new_one(
    database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
) -> None:
    async def post() -> list[Any]:
        writer = ProcessWriter(StoringProcess(database_url, TEST_CHAIN_KEYS))
        try:
            before = await writer.store(submission(rules, rule_engine, "before"), key_id=None)
            process = writer._process._process  # noqa: SLF001 - the process itself is what is tested
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=30)
            lost = await asyncio.gather(
                writer.store(submission(rules, rule_engine, "lost"), key_id=None), return_exceptions=True
            )
            after = await writer.store(submission(rules, rule_engine, "after"), key_id=None)
            return [before, *lost, after]
        finally:
            writer.close()

    before, lost, after = run(post())

    assert before[1] is True
    assert isinstance(lost, OperationalError)  # answered 503: the client retries
    assert after[1] is True
    assert count_rows(database_url) == 2
    assert chain_verifies(database_url)[:2] == (True, 2)


def test_closing_stores_what_was_queued_before_the_process_ends(
    database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
) -> None:
    queued = [submission(rules, rule_engine, f"queued-{n}") for n in range(5)]

    async def close_early() -> list[Any]:
        writer = ProcessWriter(StoringProcess(database_url, TEST_CHAIN_KEYS))
        stores = [asyncio.ensure_future(writer.store(s, key_id=None)) for s in queued]
        await asyncio.sleep(0)  # each has queued, the first is in flight
        writer.close()  # as the lifespan closes it: the loop waits
        return await asyncio.wait_for(asyncio.gather(*stores), timeout=30)  # never answered: a failure, not a hang

    assert run(close_early()) == [(s.decision, True) for s in queued]
    assert count_rows(database_url) == 5


class AnsweringWith:
    """A storing process's stand-in that answers every row of each batch with one outcome, at once."""

    def __init__(self, outcome: FirstStored) -> None:
        self._outcome = outcome
        self._ours, self._theirs = socket.socketpair()
        self._rows = 0

    def send(self, batch: list[Any]) -> None:
        self._rows = len(batch)
        self._theirs.send(b".")  # the answer is there: the pipe is readable

    def receive(self) -> list[Any]:
        self._ours.recv(1)
        return [self._outcome] * self._rows

    def fileno(self) -> int:
        return self._ours.fileno()

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()


def test_a_repeat_whose_first_decision_no_longer_reads_fails_alone_and_the_writer_goes_on(
    rules: Rules, rule_engine: RuleEngine
) -> None:
    repeat = submission(rules, rule_engine, "repeat")
    unreadable = FirstStored("d-1", repeat.fingerprint, {"not": "a decision"})

    async def post() -> list[Any]:
        writer = ProcessWriter(AnsweringWith(unreadable))  # type: ignore[arg-type]
        try:
            stores = [asyncio.wait_for(writer.store(repeat, key_id=None), timeout=10) for _ in range(2)]
            first = await asyncio.gather(stores[0], return_exceptions=True)
            then = await asyncio.gather(stores[1], return_exceptions=True)  # the writer goes on
            return [*first, *then]
        finally:
            writer.close()

    outcomes = run(post())
    # pydantic's ValidationError, each repeat's own 500; never answered would be a TimeoutError
    assert [type(outcome).__name__ for outcome in outcomes] == ["ValidationError", "ValidationError"]
