"""`reitti serve` and `reitti db upgrade`."""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

from app.cli.common import Commands
from app.config import REPOSITORY, Settings


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its access log filtered through PathOnly."""
    from uvicorn.config import LOGGING_CONFIG

    from app.web.request_log import PathOnly

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["path_only"] = {"()": PathOnly}
    config["handlers"]["access"]["filters"] = ["path_only"]
    return config


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # Make (or refuse to go without) the keys once, here, before workers start: N workers
    # racing to create the same key file beside a SQLite database would not all survive.
    try:
        settings.resolve_pseudonym_key()
        settings.resolve_session_secret()
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The rules, checked here once as each worker will: an unreleased version (when signed rules
    # are required) or a broken file is one line naming it, not a traceback from every worker.
    from app.rules.loader import load_rules
    from app.rules.model import RulesError

    try:
        load_rules(settings.rules_dir, require_signed=settings.require_signed_rules)
    except RulesError as error:
        print(f"error: refusing to serve: {error}", file=sys.stderr)
        return 2
    uvicorn.run("app.main:app", **uvicorn_options(args))
    return 0


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """How `reitti serve` runs uvicorn: Nagle's algorithm off with any number of workers (app/web/transport.py)."""
    from app.web.transport import PROTOCOL

    return {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "http": PROTOCOL,
        "proxy_headers": False,
        "log_level": "info",
        "log_config": log_config(),
    }


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPOSITORY / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    if path := settings.sqlite_path():
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(config, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def register(commands: Commands) -> None:
    """Add `reitti serve` and `reitti db`."""
    server = commands.add_parser("serve", help="run the HTTP service")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--workers", type=int, default=1)
    server.set_defaults(run=serve)

    db = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser("upgrade", help="run the migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=db_upgrade)
