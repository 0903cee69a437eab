"""The rule book (every signed-in role: the rules are the area's public law), the diff between two
versions (auditors and admins, as GET /v1/rulesets/{a}/diff/{b}) and the interpretations register
(roles.READ_INTERPRETATIONS, as GET /v1/interpretations).

The pages call the services the API and `reitti rules show` call: app/rules/book.py writes the
rules out, app/decisions/interpretations.py counts the readings of the plan.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.access import roles
from app.decisions.interpretations import read_register, register_csv
from app.errors import NotFound
from app.rules.book import book
from app.rules.cases import CASES_FOLDER, load_cases
from app.rules.model import Rules, RulesError, RuleSet
from app.time import today_in_finland
from app.web.deps import ReadSessionDep, RulesDep, cached_diff, services
from app.web.ui.auth import AuditorDep, InterpretationsDep, UserDep, reader
from app.web.ui.forms import parse_day
from app.web.ui.i18n import Translator
from app.web.ui.render import LanguageDep, format_time, redirect, render

router = APIRouter(prefix="/ui", include_in_schema=False)


@functools.cache
def _cases_by_rule(folder: Path) -> Mapping[str, tuple[str, ...]]:
    """The golden cases' sentences by the rule each names (read once per process; none if the folder has none)."""
    named: dict[str, list[str]] = defaultdict(list)
    try:
        cases = load_cases(folder)
    except RulesError:
        return {}
    for case in cases:
        if "rule" in case.expect:
            named[str(case.expect["rule"])].append(case.name)
    return {rule: tuple(names) for rule, names in named.items()}


def cases_by_rule(request: Request) -> Mapping[str, tuple[str, ...]]:
    """The golden cases beside the rules this service serves."""
    return _cases_by_rule(services(request).settings.rules_dir / CASES_FOLDER)


def _version(rules: Rules, version: str) -> RuleSet:
    ruleset = rules.version(version)
    if ruleset is None:
        raise NotFound("No such rule set.")
    return ruleset


@router.get("/rules")
def rule_book_now(user: UserDep, rules: RulesDep) -> Response:
    """The version in force today, or the latest."""
    ruleset = rules.in_force(today_in_finland()) or rules.rulesets[-1]
    return redirect(f"/ui/rules/{ruleset.version}")


@router.get("/rules/diff")
def rule_diff_page(
    request: Request,
    user: AuditorDep,
    rules: RulesDep,
    before: Annotated[str, Query(max_length=32)],
    after: Annotated[str, Query(max_length=32)],
) -> HTMLResponse:
    """Every situation whose outcome changes between two versions, grouped, with examples."""
    old, new = _version(rules, before), _version(rules, after)
    found = cached_diff(request, rules, old, new)
    return render(request, "rule_diff.html", user=user, active="rules", diff=found, before=old, after=new)


@router.get("/rules/{version}")
def rule_book_page(
    request: Request, user: UserDep, rules: RulesDep, version: str, language: LanguageDep
) -> HTMLResponse:
    """The version by the plan's sections: the plan's paragraph, its rules written out, their golden cases."""
    ruleset = _version(rules, version)
    t = Translator(language, rules.registry)
    written = book(t, rules, ruleset)
    signatures = [(s.approver, format_time(language, s.signed_at)) for s in ruleset.release.signatures]
    return render(
        request,
        "rule_book.html",
        user=user,
        active="rules",
        book=written,
        ruleset=ruleset,
        rulesets=rules.rulesets,
        signatures=signatures,
        cases=cases_by_rule(request),
        may_diff=user.role in roles.AUDIT,
    )


def _period(request: Request, t: Translator) -> tuple[dict[str, str], dict[str, str]]:
    asked = {name: request.query_params.get(name, "") for name in ("since", "until")}
    errors: dict[str, str] = {}
    for name, value in asked.items():
        parse_day(value, errors, name, t)
    return asked, errors


@router.get("/interpretations")
def interpretations_page(
    request: Request, user: InterpretationsDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> HTMLResponse:
    """The interpretations register: each reading of the plan by the decisions it made in the period."""
    t = Translator(language, rules.registry)
    asked, errors = _period(request, t)
    rows = []
    if not errors:
        days = {name: parse_day(value, {}, name, t) for name, value in asked.items()}
        rows = read_register(reader(request, user, session), rules, since=days["since"], until=days["until"])
    status = 422 if errors else 200  # as the log search answers a day it cannot read
    return render(
        request, "interpretations.html", user=user, status=status, active="interpretations", rows=rows,
        asked=asked, errors=errors,
    )  # fmt: skip


@router.get("/interpretations.csv")
def interpretations_csv(
    request: Request, user: InterpretationsDep, session: ReadSessionDep, rules: RulesDep, language: LanguageDep
) -> Response:
    """The register of the page's period as CSV."""
    t = Translator(language, rules.registry)
    asked, errors = _period(request, t)
    if errors:
        raise NotFound("Not a period.")
    days = {name: parse_day(value, {}, name, t) for name, value in asked.items()}
    rows = read_register(reader(request, user, session), rules, since=days["since"], until=days["until"])
    return Response(
        register_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="interpretations.csv"'},
    )
