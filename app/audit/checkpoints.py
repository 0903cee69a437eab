"""Checkpoints of the audit chain: its head at a moment, signed with a key the database does not hold.

A checkpoint is what finds links removed from the end, which leave a shorter chain that is
still whole. The service takes them itself (`CheckpointWriter`): on a schedule and when it
stops, into a directory the operator names (REITTI_CHECKPOINT_DIR), outside the database,
so that truncation is caught without anyone remembering to take one. `reitti audit verify`
checks against the newest one there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.audit.access_log import access_head
from app.audit.chain import canonical_json, head

log = logging.getLogger("reitti")


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain (and of the access log's) at a moment, signed with a key the database does not hold.

    A checkpoint without the access log's head (as kept before it was chained) still checks the chain.
    """

    seq: int
    hash: str
    at: str
    signature: str
    access_seq: int | None = None
    access_hash: str | None = None

    @classmethod
    def signed(
        cls, key: bytes, *, seq: int, hash: str, at: str, access_seq: int | None = None, access_hash: str | None = None
    ) -> Checkpoint:
        """A checkpoint of (seq, hash, at[, access_seq, access_hash]) with its HMAC-SHA256 under `key`."""
        unsigned = cls(seq, hash, at, "", access_seq, access_hash)
        return cls(seq, hash, at, unsigned._signature(key), access_seq, access_hash)

    def signed_with(self, key: bytes) -> bool:
        """Whether this checkpoint was signed with `key` and not changed since."""
        return hmac.compare_digest(self.signature, self._signature(key))

    def as_json(self) -> dict[str, Any]:
        """The checkpoint as the auditor keeps it."""
        kept = {"seq": self.seq, "hash": self.hash, "at": self.at, "signature": self.signature}
        if self.access_seq is not None:
            kept |= {"access_seq": self.access_seq, "access_hash": self.access_hash}
        return kept

    def _signature(self, key: bytes) -> str:
        signed: dict[str, Any] = {"seq": self.seq, "hash": self.hash, "at": self.at}
        if self.access_seq is not None:
            signed |= {"access_seq": self.access_seq, "access_hash": self.access_hash}
        return hmac.new(key, canonical_json(signed).encode("utf-8"), hashlib.sha256).hexdigest()


def checkpoint(session: Session, key: bytes) -> Checkpoint:
    """The heads now, signed; the auditor keeps it elsewhere to find rows later deleted from the end."""
    seq, hash = head(session)
    access_seq, access_hash = access_head(session)
    at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Checkpoint.signed(key, seq=seq, hash=hash, at=at, access_seq=access_seq, access_hash=access_hash)


def write_checkpoint(directory: Path, kept: Checkpoint) -> Path:
    """Keep a checkpoint in `directory` as `checkpoint-<seq>-<at>.json`, whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = kept.at.replace(":", "").replace("-", "").replace(".", "")
    path = directory / f"checkpoint-{kept.seq:012d}-{stamp}.json"
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_text(json.dumps(kept.as_json()) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def newest_checkpoint(directory: Path, key: bytes) -> Checkpoint | None:
    """The checkpoint in `directory` with the highest sequence number (then the latest) signed with `key`.

    A file that does not parse or is not signed with the key is skipped with a warning: a
    forged file must not stand in for a real one, and must not hide the real ones either.
    """
    found: list[Checkpoint] = []
    for path in directory.glob("checkpoint-*.json"):
        try:
            kept = Checkpoint(**json.loads(path.read_text(encoding="utf-8")))
            valid = isinstance(kept.seq, int) and kept.signed_with(key)
        except (OSError, ValueError, TypeError) as error:
            log.warning("checkpoint %s is skipped: it does not read (%s)", path, type(error).__name__)
            continue
        if not valid:
            log.warning("checkpoint %s is skipped: it is not signed with the checkpoint key", path)
            continue
        found.append(kept)
    return max(found, key=lambda kept: (kept.seq, kept.at), default=None)


class CheckpointWriter:
    """A thread that keeps a checkpoint in a directory every `every` seconds when the head moved, and at close."""

    def __init__(self, read: sessionmaker[Session], key: bytes, directory: Path, every: float) -> None:
        self._read, self._key, self._directory, self._every = read, key, directory, every
        self._stop = threading.Event()
        self._last: tuple[int, str, int | None, str | None] | None = None
        self._thread = threading.Thread(target=self._run, name="reitti-checkpoints", daemon=True)
        self._thread.start()

    def take(self) -> Path | None:
        """Keep a checkpoint of the head now, unless the last one kept has the same head."""
        with self._read() as session:
            kept = checkpoint(session, self._key)
        heads = (kept.seq, kept.hash, kept.access_seq, kept.access_hash)
        if heads == self._last:
            return None
        path = write_checkpoint(self._directory, kept)
        self._last = heads
        return path

    def close(self) -> None:
        """Stop the schedule, then keep a last checkpoint: the head as the service leaves it."""
        self._stop.set()
        self._thread.join()
        self._take_logged()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._take_logged()

    def _take_logged(self) -> None:
        try:
            self.take()
        except Exception as error:  # the database away, the disk full: say so and try again next time
            log.error("a checkpoint could not be kept in %s: %s", self._directory, type(error).__name__)
