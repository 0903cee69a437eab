"""The `reitti` command: serve, migrate, verify the audit chain and rebuild the decision counts,
manage API keys, check the rules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.config import REPOSITORY, Settings

if TYPE_CHECKING:
    from app.engine import RuleEngine
    from app.ruleset import Rules


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # Make (or refuse to go without) the keys once, here, before workers start: N workers
    # racing to create the same key file beside a SQLite database would not all survive.
    try:
        settings.resolve_pseudonym_key()
        settings.resolve_session_secret()
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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


def _audit_rebuild_counts(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.db import make_engine, make_sessions
    from app.decisions import rebuild_counts

    _, write = make_sessions(make_engine(settings.database_url))
    started = time.perf_counter()
    with write() as session:
        groups, decisions = rebuild_counts(session)
    print(f"decision counts rebuilt: {decisions} decisions in {groups} groups ({time.perf_counter() - started:.1f} s)")
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
        until = ruleset.ends or "…"
        print(f"{ruleset.version}\t{ruleset.valid_from} – {until}\t{len(ruleset.rules)} rules\tsha256 {ruleset.sha256}")
    return 0


def _loaded(settings: Settings) -> tuple[Rules, RuleEngine]:
    from app.engine import RuleEngine
    from app.ruleset import load_rules

    rules = load_rules(settings.rules_dir)
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    return rules, engine


def _rules_verify(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.domain import walk

    rules, engine = _loaded(settings)
    sound = True
    for ruleset in rules.rulesets:
        started = time.perf_counter()
        report = walk(rules, ruleset, engine)
        seconds = time.perf_counter() - started
        print(
            f"{ruleset.version}: {report.points} points, {report.valid} valid, {report.invalid} refused (422); "
            f"{len(report.by_rule)}/{len(ruleset.rules)} rules reached; {len(report.gaps)} gaps, "
            f"{len(report.overlaps)} overlaps, {len(report.disagreements)} engine/reference disagreements "
            f"({seconds:.1f} s)"
        )
        for example in report.gaps[:3]:
            print(f"  gap: no rule decides {json.dumps(example, ensure_ascii=False)}")
        for example, ids in report.overlaps[:3]:
            print(f"  overlap: {', '.join(ids)} all decide {json.dumps(example, ensure_ascii=False)}")
        for example, by_engine, by_reference in report.disagreements[:3]:
            print(f"  disagreement: engine {by_engine}, reference {by_reference}: {json.dumps(example)}")
        unreached = sorted({rule.id for rule in ruleset.rules} - set(report.by_rule))
        if unreached:
            print(f"  rules no valid event reaches: {', '.join(unreached)}")
        sound = sound and report.sound and not unreached
    print("verified: every valid point has exactly one rule" if sound else "NOT verified")
    return 0 if sound else 1


def _rules_test(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.cases import CASES_DIR, load_cases, run_cases

    rules, engine = _loaded(settings)
    cases = load_cases(Path(args.cases) if args.cases else CASES_DIR)
    versions = args.version or [r.version for r in rules.rulesets]
    report = run_cases(cases, rules, engine, versions)
    for name, problems in report.failures.items():
        print(f"FAIL {name}")
        for problem in problems:
            print(f"     {problem}")
    for name, rule_id in report.cases_with_unknown_rule.items():
        print(f"case names a rule that does not exist ({rule_id}): {name}")
    for version, missing in report.rules_without_case.items():
        print(f"{version}: rules no case exercises: {', '.join(missing)}")
    print(f"{report.cases} cases, {len(report.failures)} failed")
    return 0 if report.passed else 1


def _rules_diff(args: argparse.Namespace, settings: Settings) -> int:
    from app.domain import diff

    rules, engine = _loaded(settings)
    before, after = rules.version(args.before), rules.version(args.after)
    if before is None or after is None:
        print(f"error: versions are {', '.join(r.version for r in rules.rulesets)}", file=sys.stderr)
        return 2
    report = diff(rules, before, after, engine).as_json()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"{before.version} -> {after.version}: {report['changed']} of {report['points']} points change")
    for group in report["by_event_type"]:
        print(f"  {group['event_type']}: {group['changed']} points")
        for change in group["changes"]:
            event = change["example"]
            who = f"{event['customer']['type']} of {event['customer']['home_municipality']}"
            print(f"    {change['points']} points, e.g. {who} {json.dumps(event['attributes'], ensure_ascii=False)}")
            print(f"      before: {change['before']}")
            print(f"      after:  {change['after']}")
    return 0


def _rules_impact(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date, datetime

    from app.db import make_engine, make_sessions
    from app.events import FINNISH_TIME
    from app.replay import impact

    rules, engine = _loaded(settings)
    candidate = rules.version(args.candidate)
    if candidate is None:
        print(f"error: versions are {', '.join(r.version for r in rules.rulesets)}", file=sys.stderr)
        return 2
    since = None
    if args.since:
        since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(), FINNISH_TIME)
    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        report = impact(session, rules, engine, candidate, since=since, examples=args.examples)
    document = report.as_json()
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        rate = report.decisions / report.seconds if report.seconds else 0.0
        print(
            f"replayed {report.decisions} logged decisions under {candidate.version} in {report.seconds:.1f} s "
            f"({rate:,.0f}/s): {report.changed} would change"
        )
        for title, key in (
            ("by event type", "by_event_type"),
            ("by rule", "by_rule"),
            ("by handler", "by_handler"),
            ("refused by the candidate", "refused_by_candidate"),
        ):
            if document[key]:
                print(f"  {title}: " + ", ".join(f"{k} {v}" for k, v in document[key].items()))
        for example in document["examples"]:
            print(f"  e.g. {example['decision_id']} {example['event_type']}: {example['before']} -> {example['after']}")
        findings = document["integrity_findings"]
        print(f"integrity: {len(findings)} findings" + ("" if findings else " (every decision replays as logged)"))
        for finding in findings[:20]:
            print(f"  {finding}")
    return 1 if report.integrity_findings else 0


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input, or typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def _users_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.db import make_engine, make_sessions
    from app.models import Role
    from app.web_auth import create_user

    if args.municipality is not None and args.municipality not in _municipalities(settings):
        print(f"error: {args.municipality!r} is not a municipality code", file=sys.stderr)
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
                password=password,
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    where = f", municipality {row.municipality}" if row.municipality else ""
    print(f"user {row.id} {row.username} ({row.role}{where}) can log in at /ui")
    return 0


def _users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from app.db import make_engine, make_sessions
    from app.web_auth import disable_user

    _, write = make_sessions(make_engine(settings.database_url))
    with write() as session:
        row = disable_user(session, username=args.name)
    if row is None:
        print(f"error: no user {args.name}", file=sys.stderr)
        return 1
    print(f"user {row.username} disabled at {row.disabled_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.db import make_engine, make_sessions
    from app.models import User

    read, _ = make_sessions(make_engine(settings.database_url))
    with read() as session:
        for row in session.scalars(select(User).order_by(User.id)):
            state = f"disabled {row.disabled_at:%Y-%m-%d}" if row.disabled_at else "active"
            print(f"{row.id}\t{row.username}\t{row.role}\t{row.municipality or '-'}\t{row.display_name}\t{state}")
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
    rebuild = audit.add_parser(
        "rebuild-counts", help="count the decision log again into the decision counts that stats are answered from"
    )
    rebuild.set_defaults(run=_audit_rebuild_counts)

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

    users = commands.add_parser("users", help="accounts of the web UI").add_subparsers(
        dest="users_command", required=True
    )
    make = users.add_parser("create", help="make an account; the password is asked for, or read from stdin")
    make.add_argument("--role", required=True, choices=["coach", "auditor", "admin"])
    make.add_argument("--name", required=True, help="the login name (lower case)")
    make.add_argument("--municipality", help="a coach's municipality code")
    make.add_argument("--display-name", help="the name shown in the UI (default: the login name)")
    make.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    make.set_defaults(run=_users_create)
    disable = users.add_parser("disable", help="end an account; its sessions end at once")
    disable.add_argument("name")
    disable.set_defaults(run=_users_disable)
    users.add_parser("list", help="list the accounts (never a password hash)").set_defaults(run=_users_list)

    rules = commands.add_parser("rules", help="the rules").add_subparsers(dest="rules_command", required=True)
    rules.add_parser("check", help="validate rules/ and print versions and sha256").set_defaults(run=_rules_check)
    rules.add_parser(
        "verify", help="walk every point of every version's input domain: exactly one rule each"
    ).set_defaults(run=_rules_verify)
    test = rules.add_parser("test", help="run the golden cases; report rules without a case")
    test.add_argument("--cases", help="a folder of case files (default tests/cases)")
    test.add_argument("--version", action="append", help="check coverage of this version only (repeatable)")
    test.set_defaults(run=_rules_test)
    compare = rules.add_parser("diff", help="every point of the domain whose outcome differs between two versions")
    compare.add_argument("before")
    compare.add_argument("after")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(run=_rules_diff)
    replay = rules.add_parser("impact", help="replay logged decisions under a candidate version; writes nothing")
    replay.add_argument("--candidate", required=True)
    replay.add_argument("--since", help="only events that occurred on or after this date (YYYY-MM-DD)")
    replay.add_argument("--examples", type=int, default=5)
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(run=_rules_impact)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    code: int = args.run(args, Settings.from_env())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
