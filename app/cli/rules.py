"""`reitti rules`: check, verify, test, diff and replay the rules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from app.cli.common import Commands
from app.config import Settings

if TYPE_CHECKING:
    from app.rules.engine import RuleEngine
    from app.rules.model import Rules


def rules_check(args: argparse.Namespace, settings: Settings) -> int:
    from app.rules.loader import load_rules
    from app.rules.model import RulesError

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
        release = ruleset.release
        signed = ", ".join(f"{s.approver} {s.signed_at:%Y-%m-%d}" for s in release.signatures) or "no one"
        state = "released" if release.released else "NOT released: " + "; ".join(release.problems)
        print(f"\tsigned by {signed}; {state}")
    return 0


def rules_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.rules.model import RulesError
    from app.rules.releases import APPROVERS_FOLDER, make_key_pair

    try:
        private, public = make_key_pair(Path(args.out), args.name)
    except RulesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"private key: {private} (keep it yourself; never commit it)")
    print(f"public key:  {public} (add it to {settings.rules_dir / APPROVERS_FOLDER}/ in a reviewed commit)")
    return 0


def rules_sign(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.rules.loader import load_rules
    from app.rules.model import RulesError
    from app.rules.releases import load_approvers, read_private_key, sign

    try:
        rules = load_rules(settings.rules_dir)
        ruleset = rules.version(args.version)
        if ruleset is None:
            print(f"error: versions are {', '.join(r.version for r in rules.rulesets)}", file=sys.stderr)
            return 2
        key = read_private_key(Path(args.key))
        folder = settings.rules_dir / ruleset.version
        written = sign(folder, ruleset.version, ruleset.sha256, key, load_approvers(settings.rules_dir))
        release = load_rules(settings.rules_dir).version(ruleset.version)
    except RulesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    assert release is not None
    print(f"signed {ruleset.version} (sha256 {ruleset.sha256}): {written}")
    if release.release.released:
        print(f"{ruleset.version} is released: " + ", ".join(s.approver for s in release.release.signatures))
    else:
        print(f"{ruleset.version} is not released yet: " + "; ".join(release.release.problems))
    return 0


def _loaded(settings: Settings) -> tuple[Rules, RuleEngine]:
    from app.rules.input_domain import loaded_engine
    from app.rules.loader import load_rules

    rules = load_rules(settings.rules_dir)
    return rules, loaded_engine(rules, settings.cache_dir)


def rules_verify(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.rules.input_domain import walk

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


def rules_test(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from app.rules.cases import CASES_FOLDER, load_cases, run_cases
    from app.rules.model import RulesError

    try:
        cases = load_cases(Path(args.cases) if args.cases else settings.rules_dir / CASES_FOLDER)
    except RulesError as error:
        print(f"cases are not valid: {error}", file=sys.stderr)
        return 1
    rules, engine = _loaded(settings)
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


def rules_diff(args: argparse.Namespace, settings: Settings) -> int:
    from app.rules.input_domain import diff

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


def rules_impact(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date, datetime

    from app.db import make_engine, make_sessions
    from app.rules.replay import impact
    from app.time import FINNISH_TIME

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


def rules_show(args: argparse.Namespace, settings: Settings) -> int:
    from app.rules.book import rule_as_text
    from app.rules.cases import CASES_FOLDER, load_cases
    from app.rules.loader import load_rules
    from app.time import today_in_finland
    from app.web.ui.i18n import Translator

    rules = load_rules(settings.rules_dir)
    ruleset = rules.version(args.version) if args.version else rules.in_force(today_in_finland())
    ruleset = ruleset or (None if args.version else rules.rulesets[-1])
    if ruleset is None:
        print(f"error: versions are {', '.join(r.version for r in rules.rulesets)}", file=sys.stderr)
        return 2
    rule = ruleset.rules_by_id.get(args.rule)
    if rule is None:
        print(
            f"error: {ruleset.version} has no rule {args.rule!r} (`reitti rules check` lists versions)", file=sys.stderr
        )
        return 2
    cases_dir = settings.rules_dir / CASES_FOLDER
    cases = [c.name for c in load_cases(cases_dir) if c.expect.get("rule") == rule.id] if cases_dir.exists() else []
    print(rule_as_text(Translator(args.language, rules.registry), rules, ruleset, rule, cases))
    return 0


def register(commands: Commands) -> None:
    """Add the `reitti rules` commands."""
    rules = commands.add_parser("rules", help="the rules").add_subparsers(dest="rules_command", required=True)
    rules.add_parser("check", help="validate rules/ and print versions, sha256 and who signed each").set_defaults(
        run=rules_check
    )
    show = rules.add_parser("show", help="one rule in plain words: conditions, outcome, the plan's text, golden cases")
    show.add_argument("rule", help="the rule's id")
    show.add_argument("--version", help="the rule set (default: the one in force today)")
    show.add_argument("--language", choices=("fi", "en"), default="fi")
    show.set_defaults(run=rules_show)
    keygen = rules.add_parser("keygen", help="make an approver's Ed25519 key pair: NAME.key and NAME.pub")
    keygen.add_argument("name", help="the approver's name: the public key is added as rules/approvers/NAME.pub")
    keygen.add_argument("--out", default=".", help="the folder to write the two files in (default: here)")
    keygen.set_defaults(run=rules_keygen)
    signer = rules.add_parser("sign", help="sign a version's sha256 with an approver's key (two approvers release it)")
    signer.add_argument("version")
    signer.add_argument("--key", required=True, help="the approver's private key file (from `reitti rules keygen`)")
    signer.set_defaults(run=rules_sign)
    rules.add_parser(
        "verify", help="walk every point of every version's input domain: exactly one rule each"
    ).set_defaults(run=rules_verify)
    test = rules.add_parser("test", help="run the golden cases; report rules without a case")
    test.add_argument("--cases", help="a folder of case files (default: cases/ in the rules folder)")
    test.add_argument("--version", action="append", help="check coverage of this version only (repeatable)")
    test.set_defaults(run=rules_test)
    compare = rules.add_parser("diff", help="every point of the domain whose outcome differs between two versions")
    compare.add_argument("before")
    compare.add_argument("after")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(run=rules_diff)
    replay = rules.add_parser("impact", help="replay logged decisions under a candidate version; writes nothing")
    replay.add_argument("--candidate", required=True)
    replay.add_argument("--since", help="only events that occurred on or after this date (YYYY-MM-DD)")
    replay.add_argument("--examples", type=int, default=5)
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(run=rules_impact)
