"""The `reitti` command: one subcommand group per module of this package."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from app.cli import audit, keys, rules, serve, users, webhooks
from app.config import Settings


def parser() -> argparse.ArgumentParser:
    """The command line: each group of commands is added by its own module."""
    top = argparse.ArgumentParser(prog="reitti", description="Reitti: routing by the Oulu employment area's plan.")
    commands = top.add_subparsers(dest="command", required=True)
    for group in (serve, audit, keys, users, rules, webhooks):
        group.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    code: int = args.run(args, Settings.from_env())
    return code
