"""`reitti keys`: API keys made, revoked, listed."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import Commands
from app.config import Settings
from app.models import Role


def keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.access.keys import create_key
    from app.db import make_engine, make_sessions
    from app.models import Role

    if args.municipality is not None and args.municipality not in known_municipalities(settings):
        print(f"error: {args.municipality!r} is not a municipality code", file=sys.stderr)
        return 2
    if args.unit is not None and args.unit not in known_units(settings):
        print(f"error: {args.unit!r} is not a unit id (GET /v1/units lists them)", file=sys.stderr)
        return 2
    _, write = make_sessions(make_engine(settings.database_url))
    try:
        with write() as session:
            row, plain = create_key(
                session, role=Role(args.role), name=args.name, municipality=args.municipality, unit=args.unit
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    where = f", unit {row.unit}" if row.unit else ""
    print(f"key {row.id} for {row.name} ({row.role}{where}); it is shown only now:")
    print(plain)
    return 0


def known_municipalities(settings: Settings) -> set[str]:
    from app.rules.registry import load_registry

    return set(load_registry(settings.rules_dir).municipalities)


def known_units(settings: Settings) -> set[str]:
    from app.rules.registry import load_registry

    return set(load_registry(settings.rules_dir).units)


def keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.access.keys import revoke_key
    from app.db import make_engine, make_sessions

    _, write = make_sessions(make_engine(settings.database_url))
    with write() as session:
        row = revoke_key(session, key_id=args.key_id)
    if row is None:
        print(f"error: no key {args.key_id}", file=sys.stderr)
        return 1
    print(f"key {row.id} ({row.name}) revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.db import make_engine, make_sessions
    from app.models import ApiKey

    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            print(f"{row.id}\t{row.prefix}…\t{row.role}\t{row.unit or '-'}\t{row.name}\t{state}")
    return 0


def register(commands: Commands) -> None:
    """Add the `reitti keys` commands."""
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a key; it is printed on the last line")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", required=True, help="the client's name; idempotency is per name")
    create.add_argument("--municipality", help="a coach's municipality code (staff of local-<code>)")
    create.add_argument("--unit", help="the unit whose staff the key is, for --role unit (e.g. central-oeo)")
    create.set_defaults(run=keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=keys_revoke)
    keys.add_parser("list", help="list the keys (never the keys themselves)").set_defaults(run=keys_list)
