"""The one thread of a worker process that stores its decisions, many to a transaction.

Every decision is chained, and the chain has one head: appends are serialised by a lock
held from reading the head to the commit. One transaction per decision therefore pays a
BEGIN, the lock and a COMMIT (on PostgreSQL a flush to disk, about 3 ms here) for each
decision, one after the other, and request threads queue on the lock meanwhile. Here the
requests that arrive while a transaction commits wait for the next one and go in it
together (group commit): the lock and the flush are paid once for all of them. A request
is answered only after the transaction that holds its decision has committed.

The thread forms the batches and runs their transactions through its `Storing` (`StoringHere`:
in this process). A worker with a storing process of its own (app/decisions/storing.py) has no
such thread: its `ProcessWriter` forms the batches on the event loop and answers them with
`settle`, as the thread does.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from app.access.keys import live_keys
from app.db import Transaction
from app.decisions.store import FirstStored, Row, Stored, Submission, answer, store_rows
from app.errors import Unauthenticated

log = logging.getLogger("reitti")
T = TypeVar("T")

# At most this many decisions to a transaction: enough to share a disk flush among all
# the requests a worker has in flight, few enough that the transaction stays short.
MAX_BATCH = 64

# A submission, the API key it came with, and where its outcome goes.
Queued = tuple[Submission, int | None, "Future[Stored | Unauthenticated]"]


class _LoopInbox:
    """Where the writer thread hands a batch's outcomes to one event loop: many outcomes, one wake-up.

    `asyncio.wrap_future` wakes the loop once per outcome (a write to its self-pipe, a pass of
    its selector): for a batch of 16, sixteen wake-ups while one does. Here the first outcome of
    a burst wakes the loop, and it settles every outcome that has arrived by then.
    """

    _inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopInbox] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._arrived: list[tuple[Future[Any], asyncio.Future[Any]]] = []

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _LoopInbox:
        """The inbox of this loop (a thread-safe first creation is not needed: only the loop itself asks)."""
        inbox = cls._inboxes.get(loop)
        if inbox is None:
            inbox = cls._inboxes[loop] = cls(loop)
        return inbox

    def waiter_for(self, future: Future[T]) -> asyncio.Future[T]:
        """An awaitable on this loop that `future`'s outcome settles; cancelling it cancels `future`."""
        waiter: asyncio.Future[T] = self._loop.create_future()
        future.add_done_callback(lambda done: self._arrive(done, waiter))
        waiter.add_done_callback(lambda settled: future.cancel() if settled.cancelled() else None)
        return waiter

    def _arrive(self, done: Future[Any], waiter: asyncio.Future[Any]) -> None:
        with self._lock:
            self._arrived.append((done, waiter))
            first = len(self._arrived) == 1
        if first:
            try:
                self._loop.call_soon_threadsafe(self._settle)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _settle(self) -> None:
        with self._lock:
            arrived, self._arrived = self._arrived, []
        for done, waiter in arrived:
            if waiter.done():  # cancelled meanwhile: its client went away
                continue
            if done.cancelled():
                waiter.cancel()
            elif (error := done.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


# A row whose API key was revoked before its transaction: it was not stored.
REVOKED: Literal["revoked"] = "revoked"

# What became of each row of a batch: None when stored now, the decision stored first under
# its key, or REVOKED.
RowOutcome = FirstStored | None | Literal["revoked"]


def settle(
    future: Future[Stored | Unauthenticated] | asyncio.Future[Stored | Unauthenticated],
    submission: Submission,
    outcome: RowOutcome,
) -> None:
    """Answer one request with what became of its row: its decision, the first one, a conflict or a revoked key.

    A first decision read back that no longer validates fails its own repeat (500), not the rest
    of the batch, nor the writer that answers them.
    """
    if outcome == REVOKED:
        future.set_result(Unauthenticated("The API key is not valid or has been revoked."))
        return
    try:
        stored = answer(submission, outcome)
    except Exception as error:
        future.set_exception(error)
        return
    future.set_result(stored)


def log_one_by_one(count: int, error: Exception) -> None:
    """Say that a batch failed for something in one submission, not the database: each is now stored alone.

    The error's type only: its text carries the statement's parameters.
    """
    log.warning("a batch of %d decisions failed (%s); storing them one by one", count, type(error).__name__)


class Storing(Protocol):
    """Stores a batch of rows, each with the API key it came with, in one transaction."""

    def __call__(self, batch: Sequence[tuple[Row, int | None]]) -> list[RowOutcome]:
        """What became of each row, in order; OperationalError when the database is away."""
        ...

    def close(self) -> None:
        """Release what it holds; called once the writer has stored its last batch."""
        ...


class StoringHere:
    """Storing in this process: each batch one transaction of `write`, its keys checked in it."""

    def __init__(self, write: Transaction) -> None:
        self._write = write

    def __call__(self, batch: Sequence[tuple[Row, int | None]]) -> list[RowOutcome]:
        with self._write() as session:
            # None is no API key but the provider's access token, checked when it arrived.
            live: set[int | None] = {None, *live_keys(session, {key_id for _, key_id in batch if key_id})}
            stored = iter(store_rows(session, [row for row, key_id in batch if key_id in live]))
            return [next(stored) if key_id in live else REVOKED for _, key_id in batch]

    def close(self) -> None:
        """Nothing to release: the transactions are the caller's sessions."""


class Writer(Protocol):
    """Stores submissions, many to a transaction: `DecisionWriter`, or `ProcessWriter` (app/decisions/storing.py)."""

    async def store(self, submission: Submission, *, key_id: int | None) -> Stored | Unauthenticated:
        """What storing the submission came to, once its transaction has committed."""
        ...

    def close(self) -> None:
        """Store what was queued, then stop."""
        ...


class DecisionWriter:
    """Stores submissions from one thread; `store` awaits the outcome of one."""

    def __init__(self, storing: Storing, max_batch: int = MAX_BATCH) -> None:
        self._storing = storing
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Queued | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="reitti-decision-writer", daemon=True)
        self._thread.start()

    async def store(self, submission: Submission, *, key_id: int | None) -> Stored | Unauthenticated:
        """What storing the submission came to, once its transaction has committed.

        The key it came with is checked in that transaction: a key revoked meanwhile stores nothing.
        None is no key: an access token of the provider, checked when it arrived.
        """
        future: Future[Stored | Unauthenticated] = Future()
        waiter = _LoopInbox.of(asyncio.get_running_loop()).waiter_for(future)
        self._queue.put((submission, key_id, future))
        return await waiter

    def close(self) -> None:
        """Store what was queued, then stop the thread and its storing."""
        self._queue.put(None)
        self._thread.join()
        self._storing.close()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            # A request whose client went away before its turn is not stored: it was never
            # answered, and a retry stores it. From here on, a future can no longer be cancelled.
            self._store([queued for queued in batch if queued[2].set_running_or_notify_cancel()])

    def _next_batch(self) -> list[Queued] | None:
        """Wait for one submission, then take those already queued behind it; None when closed."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                break
            if queued is None:  # closing: store this batch, then stop
                self._queue.put(None)
                break
            batch.append(queued)
        return batch

    def _store(self, batch: Sequence[Queued]) -> None:
        if not batch:
            return
        try:
            outcomes = self._storing([(submission.row(), key_id) for submission, key_id, _ in batch])
        except OperationalError as error:
            # The database is away: nothing of this batch was written, each request says so.
            for _, _, future in batch:
                future.set_exception(error)
            return
        except Exception as error:
            if len(batch) > 1:
                # Something in one submission, not the database: store each alone, so that
                # one bad submission fails only its own request.
                log_one_by_one(len(batch), error)
                for queued in batch:
                    self._store([queued])
                return
            batch[0][2].set_exception(error)
            return
        for (submission, _, future), outcome in zip(batch, outcomes, strict=True):
            settle(future, submission, outcome)
