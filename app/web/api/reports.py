"""Reports over HTTP: cost sharing by municipality, as JSON, CSV or XLSX."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from app.reports.cost_sharing import CostSharingReport, GroupBy, cost_sharing
from app.reports.exports import CSV, XLSX, cost_sharing_csv, cost_sharing_workbook, report_filename
from app.web.api import EVERY_OPERATION
from app.web.deps import ReadSessionDep, ReportReaderDep, RulesDep
from app.web.ui.i18n import Translator

router = APIRouter(responses=EVERY_OPERATION)


@router.get(
    "/v1/reports/cost-sharing",
    tags=["reports"],
    response_model=CostSharingReport,
    responses={
        200: {
            "content": {CSV: {}, XLSX: {}},
            "description": f"The report; with `Accept: {CSV}` as CSV, with `Accept: {XLSX}` as a workbook in Finnish",
        }
    },
)
def get_cost_sharing(
    principal: ReportReaderDep,
    session: ReadSessionDep,
    rules: RulesDep,
    first: Annotated[date, Query(alias="from", description="the first Finnish day of the period")],
    last: Annotated[date, Query(alias="to", description="the last Finnish day of the period, included")],
    group_by: Annotated[GroupBy | None, Query(description="a breakdown of each municipality's line")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> CostSharingReport | Response:
    """Decisions by municipality and cost group, with each one's share of the area's decisions in the group.

    A coach's report holds their own municipality's line; the shares are of the whole area's.
    Counted by the Finnish day the decision was made.
    """
    report = cost_sharing(
        session, rules, principal, first=first, last=last, group_by=group_by, made_at=datetime.now(UTC)
    )
    if accept is not None and XLSX in accept:
        workbook = cost_sharing_workbook(report, Translator("fi", rules.registry))
        disposition = f'attachment; filename="{report_filename(first, last, "xlsx")}"'
        return Response(workbook, media_type=XLSX, headers={"Content-Disposition": disposition})
    if accept is not None and CSV in accept:
        disposition = f'attachment; filename="{report_filename(first, last, "csv")}"'
        return Response(
            cost_sharing_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )
    return report
