"""The one thread of a worker process that stores its decisions, many to a transaction.

Every decision is chained, and the chain has one head: appends are serialised by a lock
held from reading the head to the commit. One transaction per decision therefore pays a
BEGIN, the lock and a COMMIT (on PostgreSQL a flush to disk, about 3 ms here) for each
decision, one after the other, and request threads queue on the lock meanwhile. Here the
requests that arrive while a transaction commits wait for the next one and go in it
together (group commit): the lock and the flush are paid once for all of them. A request
is answered only after the transaction that holds its decision has committed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from sqlalchemy.exc import OperationalError

from app.access.keys import live_keys
from app.db import Transaction
from app.decisions.store import Stored, Submission, store
from app.errors import Unauthenticated

log = logging.getLogger("reitti")

# At most this many decisions to a transaction: enough to share a disk flush among all
# the requests a worker has in flight, few enough that the transaction stays short.
MAX_BATCH = 64

# A submission, the API key it came with, and where its outcome goes.
Queued = tuple[Submission, int | None, "Future[Stored | Unauthenticated]"]


class DecisionWriter:
    """Stores submissions from one thread; `store` awaits the outcome of one."""

    def __init__(self, write: Transaction, max_batch: int = MAX_BATCH) -> None:
        self._write = write
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
        self._queue.put((submission, key_id, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Store what was queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

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
            with self._write() as session:
                # None is no API key but the provider's access token, checked when it arrived.
                live: set[int | None] = {None, *live_keys(session, {key_id for _, key_id, _ in batch if key_id})}
                allowed = [queued for queued in batch if queued[1] in live]
                outcomes = store(session, [submission for submission, _, _ in allowed])
        except OperationalError as error:
            # The database is away: nothing of this batch was written, each request says so.
            for _, _, future in batch:
                future.set_exception(error)
            return
        except Exception as error:
            if len(batch) > 1:
                # Something in one submission, not the database: store each alone, so that
                # one bad submission fails only its own request.
                # The error's type only: its text carries the statement's parameters.
                log.warning(
                    "a batch of %d decisions failed (%s); storing them one by one", len(batch), type(error).__name__
                )
                for queued in batch:
                    self._store([queued])
                return
            batch[0][2].set_exception(error)
            return
        for (_, _, future), outcome in zip(allowed, outcomes, strict=True):
            future.set_result(outcome)
        for _, key_id, future in batch:
            if key_id not in live:
                future.set_result(Unauthenticated("The API key is not valid or has been revoked."))
