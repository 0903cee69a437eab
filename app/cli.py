"""The `reitti` command: serve, migrate, verify the audit chain, manage API keys, check the rules."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app.config import REPOSITORY, Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        log_level="info",
    )
    return 0


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPOSITORY / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    if path := settings.sqlite_path():
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(config, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from app.audit import Checkpoint, verify
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


def _audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from app.audit import checkpoint
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


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import create_key
    from app.db import make_engine, make_sessions
    from app.models import Role

    if args.municipality is not None and args.municipality not in _municipalities(settings):
        print(f"error: {args.municipality!r} is not a municipality code", file=sys.stderr)
        return 2
    _, write = make_sessions(make_engine(settings.database_url))
    try:
        with write() as session:
            row, plain = create_key(session, role=Role(args.role), name=args.name, municipality=args.municipality)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    where = f", municipality {row.municipality}" if row.municipality else ""
    print(f"key {row.id} for {row.name} ({row.role}{where}); it is shown only now:")
    print(plain)
    return 0


def _municipalities(settings: Settings) -> set[str]:
    from app.ruleset import load_registry

    return set(load_registry(settings.rules_dir).municipalities)


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth import revoke_key
    from app.db import make_engine, make_sessions

    _, write = make_sessions(make_engine(settings.database_url))
    with write() as session:
        row = revoke_key(session, key_id=args.key_id)
    if row is None:
        print(f"error: no key {args.key_id}", file=sys.stderr)
        return 1
    print(f"key {row.id} ({row.name}) revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.db import make_engine, make_sessions
    from app.models import ApiKey

    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            print(f"{row.id}\t{row.prefix}…\t{row.role}\t{row.municipality or '-'}\t{row.name}\t{state}")
    return 0


def _rules_check(args: argparse.Namespace, settings: Settings) -> int:
    from app.ruleset import RulesError, load_rules

    try:
        rules = load_rules(settings.rules_dir)
    except RulesError as error:
        print(f"rules are not valid: {error}", file=sys.stderr)
        return 1
    registry = rules.registry
    print(f"{settings.rules_dir}: {len(registry.event_types)} event types, {len(registry.units)} units")
    for ruleset in rules.rulesets:
        until = ruleset.valid_to or "…"
        print(f"{ruleset.version}\t{ruleset.valid_from} – {until}\t{len(ruleset.rules)} rules\tsha256 {ruleset.sha256}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="reitti", description="Reitti: routing by the Oulu employment area's plan.")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser("upgrade", help="run the migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_db_upgrade)

    audit = commands.add_parser("audit", help="the audit chain").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="walk the chain; exit 1 and name the first broken link if any")
    verify.add_argument("--checkpoint", help="a checkpoint file kept earlier: finds links deleted from the end")
    verify.set_defaults(run=_audit_verify)
    checkpoint = audit.add_parser("checkpoint", help="print the head, signed with REITTI_CHECKPOINT_KEY, as JSON")
    checkpoint.set_defaults(run=_audit_checkpoint)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a key; it is printed on the last line")
    create.add_argument("--role", required=True, choices=["integration", "coach", "auditor", "admin"])
    create.add_argument("--name", required=True, help="the client's name; idempotency is per name")
    create.add_argument("--municipality", help="a coach's municipality code")
    create.set_defaults(run=_keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=_keys_revoke)
    keys.add_parser("list", help="list the keys (never the keys themselves)").set_defaults(run=_keys_list)

    rules = commands.add_parser("rules", help="the rules").add_subparsers(dest="rules_command", required=True)
    rules.add_parser("check", help="validate rules/ and print versions and sha256").set_defaults(run=_rules_check)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    code: int = args.run(args, Settings.from_env())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
