"""`reitti audit`: verify the chain, sign a checkpoint, count the log again."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.common import Commands
from app.config import Settings


def _sessions(settings: Settings) -> tuple[Any, Any]:
    """The read and write session factories of the configured database, with the chain keys."""
    from app.audit.keys import ChainKeys, session_info
    from app.db import make_engine, make_sessions

    return make_sessions(make_engine(settings.database_url), info=session_info(ChainKeys.from_settings(settings)))


def _kept_checkpoint(path: str | None, settings: Settings) -> tuple[Any, bytes | None, str | None]:
    """The checkpoint to verify against: the file given, else the newest in REITTI_CHECKPOINT_DIR, else none.

    (checkpoint, key, where it came from); raises OSError, ValueError, TypeError or RuntimeError.
    """
    import json

    from app.audit.checkpoints import Checkpoint, newest_checkpoint

    if path is not None:
        with open(path, encoding="utf-8") as handle:
            return Checkpoint(**json.load(handle)), settings.resolve_checkpoint_key(), path
    if settings.checkpoint_dir is None:
        return None, None, None
    key = settings.resolve_checkpoint_key()
    kept = newest_checkpoint(settings.checkpoint_dir, key)
    return kept, key, str(settings.checkpoint_dir) if kept else None


def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from app.audit.verification import verify

    try:
        kept, key, where = _kept_checkpoint(args.checkpoint, settings)
        read, _ = _sessions(settings)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        print(f"error: cannot verify: {error}", file=sys.stderr)
        return 2
    with read() as session:
        result = verify(session, checkpoint=kept, key=key)
    print(result.summary())
    if kept is not None:
        print(f"checked against the checkpoint of {kept.at} (sequence {kept.seq}) from {where}")
    elif settings.checkpoint_dir is not None:
        print(f"no checkpoint in {settings.checkpoint_dir}: links deleted from the end would not be found")
    return 0 if result.intact else 1


def audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from app.audit.checkpoints import checkpoint, write_checkpoint

    try:
        key = settings.resolve_checkpoint_key()
        read, _ = _sessions(settings)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with read() as session:
        kept = checkpoint(session, key)
    if settings.checkpoint_dir is not None:
        print(f"kept in {write_checkpoint(settings.checkpoint_dir, kept)}", file=sys.stderr)
    print(json.dumps(kept.as_json()))
    return 0


def audit_rebuild_counts(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.db import make_engine, make_sessions
    from app.decisions.counts import rebuild_counts

    _, write = make_sessions(make_engine(settings.database_url))  # counts are not chained: no key needed
    started = time.perf_counter()
    with write() as session:
        groups, decisions = rebuild_counts(session)
    print(f"decision counts rebuilt: {decisions} decisions in {groups} groups ({time.perf_counter() - started:.1f} s)")
    return 0


def register(commands: Commands) -> None:
    """Add the `reitti audit` commands."""
    audit = commands.add_parser("audit", help="the audit chain").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="walk the chain; exit 1 and name the first broken link if any")
    verify.add_argument("--checkpoint", help="a checkpoint file kept earlier: finds links deleted from the end")
    verify.set_defaults(run=audit_verify)
    checkpoint = audit.add_parser("checkpoint", help="print the head, signed with REITTI_CHECKPOINT_KEY, as JSON")
    checkpoint.set_defaults(run=audit_checkpoint)
    rebuild = audit.add_parser(
        "rebuild-counts", help="count the decision log again into the decision counts that stats are answered from"
    )
    rebuild.set_defaults(run=audit_rebuild_counts)
