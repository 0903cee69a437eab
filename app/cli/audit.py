"""`reitti audit`: verify the chain, sign a checkpoint, count the log again."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import Commands
from app.config import Settings


def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from app.audit.chain import Checkpoint, verify
    from app.db import make_engine, make_sessions

    kept, key = None, None
    if args.checkpoint is not None:
        try:
            with open(args.checkpoint, encoding="utf-8") as handle:
                kept = Checkpoint(**json.load(handle))
            key = settings.resolve_checkpoint_key()
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            print(f"error: cannot check against {args.checkpoint}: {error}", file=sys.stderr)
            return 2
    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        result = verify(session, checkpoint=kept, key=key)
    print(result.summary())
    return 0 if result.intact else 1


def audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from app.audit.chain import checkpoint
    from app.db import make_engine, make_sessions

    try:
        key = settings.resolve_checkpoint_key()
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        kept = checkpoint(session, key)
    print(json.dumps(kept.as_json()))
    return 0


def audit_rebuild_counts(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.db import make_engine, make_sessions
    from app.decisions.counts import rebuild_counts

    _, write = make_sessions(make_engine(settings.database_url))
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
