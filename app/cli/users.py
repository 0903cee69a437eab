"""`reitti users`: the web UI's accounts."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import Commands
from app.cli.keys import known_municipalities, known_units
from app.config import Settings
from app.models import Role


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input, or typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def users_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.access.users import create_user
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
        password = _read_password(args)
        with write() as session:
            row = create_user(
                session,
                username=args.name,
                display_name=args.display_name or args.name,
                role=Role(args.role),
                municipality=args.municipality,
                unit=args.unit,
                password=password,
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    where = f", unit {row.unit}" if row.unit else ""
    print(f"user {row.id} {row.username} ({row.role}{where}) can log in at /ui")
    return 0


def users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from app.access.users import disable_user
    from app.db import make_engine, make_sessions

    _, write = make_sessions(make_engine(settings.database_url))
    with write() as session:
        row = disable_user(session, username=args.name)
    if row is None:
        print(f"error: no user {args.name}", file=sys.stderr)
        return 1
    print(f"user {row.username} disabled at {row.disabled_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def users_password(args: argparse.Namespace, settings: Settings) -> int:
    from app.access.users import set_password
    from app.db import make_engine, make_sessions

    _, write = make_sessions(make_engine(settings.database_url))
    try:
        password = _read_password(args)
        with write() as session:
            row = set_password(session, username=args.name, password=password)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if row is None:
        print(f"error: no user {args.name}", file=sys.stderr)
        return 1
    print(f"user {row.username} has a new password; its sessions have ended")
    return 0


def users_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.db import make_engine, make_sessions
    from app.models import User

    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        for row in session.scalars(select(User).order_by(User.id)):
            state = f"disabled {row.disabled_at:%Y-%m-%d}" if row.disabled_at else "active"
            print(f"{row.id}\t{row.username}\t{row.role}\t{row.unit or '-'}\t{row.display_name}\t{state}")
    return 0


def register(commands: Commands) -> None:
    """Add the `reitti users` commands."""
    users = commands.add_parser("users", help="accounts of the web UI").add_subparsers(
        dest="users_command", required=True
    )
    make = users.add_parser("create", help="make an account; the password is asked for, or read from stdin")
    # Every role but an integration's is a person's.
    make.add_argument("--role", required=True, choices=[role.value for role in Role if role is not Role.integration])
    make.add_argument("--name", required=True, help="the login name (lower case)")
    make.add_argument("--municipality", help="a coach's municipality code (staff of local-<code>)")
    make.add_argument("--unit", help="the unit whose staff the account is, for --role unit (e.g. central-oeo)")
    make.add_argument("--display-name", help="the name shown in the UI (default: the login name)")
    make.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    make.set_defaults(run=users_create)
    disable = users.add_parser("disable", help="end an account; its sessions end at once")
    disable.add_argument("name")
    disable.set_defaults(run=users_disable)
    password = users.add_parser("password", help="set a new password; the account's sessions end at once")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read it from the first line of stdin")
    password.set_defaults(run=users_password)
    users.add_parser("list", help="list the accounts (never a password hash)").set_defaults(run=users_list)
