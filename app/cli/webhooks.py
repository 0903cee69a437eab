"""`reitti webhooks`: subscriptions added, listed, disabled, enabled, rotated and removed; dead messages sent again."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.cli.common import Commands
from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.db import Transaction


@contextmanager
def _sessions(settings: Settings) -> Iterator[tuple[sessionmaker[Session], Transaction]]:
    """The database's sessions for one command; its connections closed after."""
    from app.db import make_engine, make_sessions

    engine = make_engine(settings.database_url)
    try:
        yield make_sessions(engine)
    finally:
        engine.dispose()


def webhooks_add(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from app.errors import InvalidBody
    from app.rules.registry import load_registry
    from app.schemas import WebhookIn
    from app.webhooks import subscriptions

    try:
        body = WebhookIn(
            url=args.url,
            kinds=args.kind or [],
            units=args.unit or [],
            event_types=args.event_type or [],
            full_record=args.full_record,
        )
        with _sessions(settings) as (_, write), write() as session:
            row = subscriptions.create(
                session,
                body,
                created_by="cli",
                registry=load_registry(settings.rules_dir),
                allow_hosts=settings.webhook_allow_hosts,
            )
    except ValidationError as invalid:
        for error in invalid.errors():
            print(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    except InvalidBody as refused:
        for field_error in refused.errors:
            print(f"error: {'.'.join(map(str, field_error.loc[1:]))} {field_error.msg}", file=sys.stderr)
        return 2
    print(f"webhook {row.id} to {row.url}; its signing secret is shown only now:")
    print(row.secret)
    return 0


def webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.webhooks import subscriptions

    with _sessions(settings) as (read, _), read() as session:
        counts = subscriptions.by_subscription(session)
        for row in subscriptions.listed(session):
            state = f"disabled ({row.disabled_reason})" if row.disabled_at else "enabled"
            filters = " ".join(
                f"{name}={','.join(values) or 'all'}"
                for name, values in (("kinds", row.kinds), ("units", row.units), ("event_types", row.event_types))
            )
            pending, dead = counts.get(row.id, (0, 0))
            print(f"{row.id}\t{state}\t{row.url}\t{filters}\tpending={pending} dead={dead}")
    return 0


def _change(args: argparse.Namespace, settings: Settings) -> int:
    from app.errors import NotFound
    from app.webhooks import subscriptions

    try:
        with _sessions(settings) as (_, write), write() as session:
            if args.webhooks_command in ("disable", "enable"):
                subscriptions.set_enabled(session, args.webhook_id, enabled=args.webhooks_command == "enable")
                print(f"webhook {args.webhook_id} {args.webhooks_command}d")
            elif args.webhooks_command == "rotate":
                row = subscriptions.rotate(session, args.webhook_id)
                print(
                    f"webhook {row.id} has a new secret; the previous one signs too until {row.previous_secret_until}:"
                )
                print(row.secret)
            elif args.webhooks_command == "remove":
                subscriptions.remove(session, args.webhook_id)
                print(f"webhook {args.webhook_id} removed, with its messages")
            else:
                count = subscriptions.redeliver(session, args.webhook_id, delivery_id=args.delivery)
                print(f"{count} dead message(s) of webhook {args.webhook_id} due again")
    except NotFound as missing:
        print(f"error: {missing.detail}", file=sys.stderr)
        return 1
    return 0


def register(commands: Commands) -> None:
    """Add the `reitti webhooks` commands."""
    hooks = commands.add_parser("webhooks", help="webhook subscriptions").add_subparsers(
        dest="webhooks_command", required=True
    )
    add = hooks.add_parser("add", help="subscribe a receiver; its secret is printed on the last line")
    add.add_argument("url")
    add.add_argument("--kind", action="append", choices=["decision", "handover", "acknowledgement", "override"])
    add.add_argument("--unit", action="append", help="a unit id; repeat for more (none: all)")
    add.add_argument("--event-type", action="append", help="an event type code; repeat for more (none: all)")
    add.add_argument("--full-record", action="store_true", help="the whole record in each message")
    add.set_defaults(run=webhooks_add)
    hooks.add_parser("list", help="list the subscriptions (never their secrets)").set_defaults(run=webhooks_list)
    for name, text in (
        ("disable", "stop sending; its messages wait"),
        ("enable", "send again"),
        ("rotate", "a new secret; the previous one signs too for 24 hours"),
        ("remove", "delete it with its messages"),
        ("redeliver", "send dead messages again: all, or --delivery ID"),
    ):
        command = hooks.add_parser(name, help=text)
        command.add_argument("webhook_id", type=int)
        if name == "redeliver":
            command.add_argument("--delivery", type=int, help="one message's id (the delivery log's id)")
        command.set_defaults(run=_change)
