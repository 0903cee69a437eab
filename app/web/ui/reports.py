"""The reports' pages: the dashboard for management, and cost sharing with its downloads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from markupsafe import Markup

from app.reports import charts, formats
from app.reports.cost_sharing import OUTSIDE_AREA, CostSharingReport, GroupBy, cost_sharing
from app.reports.dashboard import Figures, figures, months_of
from app.reports.exports import CSV, XLSX, cost_sharing_csv, cost_sharing_workbook, report_filename
from app.time import today_in_finland
from app.web.deps import ReadSessionDep, RulesDep
from app.web.ui.auth import CostSharingDep, DashboardDep
from app.web.ui.forms import parse_day
from app.web.ui.i18n import Translator
from app.web.ui.render import LanguageDep, render

router = APIRouter(prefix="/ui/reports", include_in_schema=False)
# The longest period a page draws: its charts have a bar a month.
LONGEST_YEARS = 10


def _period(
    t: Translator, first: str | None, last: str | None, errors: dict[str, str]
) -> tuple[date, date, dict[str, str]]:
    """The period the form asks for; by default the twelve months up to today. Its fields, as typed, for the form."""
    today = today_in_finland()
    default_first = months_of(date(today.year - 1, today.month, 1), today)[1]
    start = parse_day(first, errors, "from", t) or default_first
    end = parse_day(last, errors, "to", t) or today
    if not errors and end < start:
        errors["to"] = t("reports.backwards")
    elif not errors and end.year - start.year > LONGEST_YEARS:
        errors["to"] = t("reports.too_long", years=LONGEST_YEARS)
    fields = {
        "from": start.isoformat() if first is None else first,
        "to": end.isoformat() if last is None else last,
    }
    return start, end, fields


def _line_name(t: Translator, code: str) -> str:
    return t("reports.outside_area") if code == OUTSIDE_AREA else t.municipality(code)


def _charts(t: Translator, language: str, found: Figures) -> dict[str, Markup]:
    """Each panel's chart, drawn with the page's language."""

    def count(value: int) -> str:
        return formats.number(value, language)

    volumes = [
        charts.Bar(formats.month(v.month, language, short=True), v.decisions, count(v.decisions)) for v in found.volumes
    ]
    shares = [
        charts.StackedBar(
            _line_name(t, row.municipality),
            (row.local, row.central, row.external),
            formats.percent(row.local_share, language, 0),
        )
        for row in found.shares
    ]
    overrides = [charts.Bar(rule.rule_id, rule.rate, formats.percent(rule.rate, language)) for rule in found.overrides]
    routes = [
        charts.Bar(f"{t.event_type(r.event_type)} → {t.unit(r.handler_unit)}", r.decisions, count(r.decisions))
        for r in found.routes
    ]
    handovers = [
        charts.GroupedBar(
            t.unit(row.unit), (row.handovers_in, row.handovers_out), (count(row.handovers_in), count(row.handovers_out))
        )
        for row in found.waiting
        if row.handovers_in or row.handovers_out
    ]
    waited = [
        charts.GroupedBar(
            t.unit(row.unit),
            (row.median_seconds / 3600, row.p90_seconds / 3600),
            (hours(row.median_seconds, language), hours(row.p90_seconds, language)),
        )
        for row in found.waiting
        if row.median_seconds is not None and row.p90_seconds is not None
    ]
    legend = [t("reports.dashboard.local"), t("reports.dashboard.central"), t("reports.dashboard.external")]
    see_table = t("reports.dashboard.see_table")
    drawn = {
        "volumes": Markup(
            charts.columns(volumes, chart_id="volumes", title=t("reports.dashboard.volumes"), description=see_table)
        ),
        "shares": Markup(
            charts.stacked(
                shares, legend, chart_id="shares", title=t("reports.dashboard.shares"), description=see_table
            )
        ),
        "overrides": Markup(
            charts.bars(overrides, chart_id="overrides", title=t("reports.dashboard.overrides"), description=see_table)
        ),
        "routes": Markup(
            charts.bars(routes, chart_id="routes", title=t("reports.dashboard.routes"), description=see_table)
        ),
    }
    # The waiting panel's two charts, each only where it has a bar: a period may have handovers and nothing taken.
    if handovers:
        in_and_out = [t("reports.dashboard.waiting_in"), t("reports.dashboard.waiting_out")]
        title = t("reports.dashboard.waiting_handovers")
        drawn["handovers"] = Markup(
            charts.grouped(handovers, in_and_out, chart_id="handovers", title=title, description=see_table)
        )
    if waited:
        median_and_p90 = [t("reports.dashboard.waiting_median_legend"), t("reports.dashboard.waiting_p90_legend")]
        title = t("reports.dashboard.waiting_times")
        drawn["waiting"] = Markup(
            charts.grouped(waited, median_and_p90, chart_id="waiting", title=title, description=see_table)
        )
    return drawn


def hours(seconds: float | None, language: str) -> str:
    """A waiting time in hours with one decimal, as the language writes it; a dash where there is none."""
    return "–" if seconds is None else formats.number(seconds / 3600, language, 1)


def _formatting(language: str) -> dict[str, Any]:
    """The number and date formats of the page's language, for its templates."""
    return {
        "number": lambda value: formats.number(value, language),
        "percent": lambda share, decimals=1: formats.percent(share, language, decimals),
        "day": lambda value: formats.day(value, language),
        "month": lambda value: formats.month(value, language),
        "hours": lambda seconds: hours(seconds, language),
    }


@router.get("")
def dashboard(
    request: Request,
    user: DashboardDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
    first_day: Annotated[str | None, Query(alias="from")] = None,
    last_day: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """Volumes by month, the local and central shares per municipality, handovers and waiting times per unit,
    override rates and the busiest routes."""
    t = Translator(language, rules.registry)
    errors: dict[str, str] = {}
    first, last, fields = _period(t, first_day, last_day, errors)
    found = None
    drawn: dict[str, Markup] = {}
    if not errors:
        found = figures(session, rules, user.principal, first=first, last=last, made_at=datetime.now(UTC))
        drawn = _charts(t, language, found)
    return render(
        request,
        "reports.html",
        user=user,
        status=422 if errors else 200,
        errors=errors,
        fields=fields,
        figures=found,
        charts=drawn,
        line_name=lambda code: _line_name(t, code),
        **_formatting(language),
    )


@router.get("/cost-sharing")
def cost_sharing_page(
    request: Request,
    user: CostSharingDep,
    session: ReadSessionDep,
    rules: RulesDep,
    language: LanguageDep,
    first_day: Annotated[str | None, Query(alias="from")] = None,
    last_day: Annotated[str | None, Query(alias="to")] = None,
    group_by: str | None = None,
    format: str | None = None,
) -> Response:
    """The cost-sharing table of a period, and the same as CSV or as a workbook in the page's language."""
    t = Translator(language, rules.registry)
    errors: dict[str, str] = {}
    first, last, fields = _period(t, first_day, last_day, errors)
    breakdown = None
    if group_by:
        try:
            breakdown = GroupBy(group_by)
        except ValueError:
            errors["group_by"] = t("errors.invalid_value")
    fields["group_by"] = group_by or ""
    report: CostSharingReport | None = None
    if not errors:
        made_at = datetime.now(UTC)
        report = cost_sharing(
            session, rules, user.principal, first=first, last=last, group_by=breakdown, made_at=made_at
        )
        if format == "csv":
            disposition = f'attachment; filename="{report_filename(first, last, "csv")}"'
            headers = {"Content-Disposition": disposition}
            return Response(cost_sharing_csv(report), media_type=f"{CSV}; charset=utf-8", headers=headers)
        if format == "xlsx":
            disposition = f'attachment; filename="{report_filename(first, last, "xlsx")}"'
            headers = {"Content-Disposition": disposition}
            return Response(cost_sharing_workbook(report, t), media_type=XLSX, headers=headers)
    return render(
        request,
        "cost_sharing.html",
        user=user,
        status=422 if errors else 200,
        errors=errors,
        fields=fields,
        report=report,
        line_name=lambda code: _line_name(t, code),
        **_formatting(language),
    )
