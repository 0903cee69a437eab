"""The cost-sharing report as CSV (for machines) and as an XLSX workbook (for finance, in Finnish).

The CSV is long: one row a municipality and cost group, plain codes and a decimal point, so
that any tool reads it the same. The workbook has a sheet a view, Finnish headings, the
period and the time of the report on the first sheet; its numbers are numbers, with number
formats that a spreadsheet shows by its reader's locale (a Finnish Excel writes 12 345 and
12,3 %), and its days are dates shown as d.m.yyyy.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Protocol

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from app.reports.cost_sharing import OUTSIDE_AREA, CostSharingReport, GroupBy
from app.time import FINNISH_TIME

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The CSV's line for the whole area, beside the municipalities' codes.
AREA = "area"
COUNT_FORMAT = "#,##0"
SHARE_FORMAT = "0.0%"
DAY_FORMAT = "d.m.yyyy"
TIME_FORMAT = "d.m.yyyy h:mm"


class Names(Protocol):
    """The texts of one language: the UI's catalogue and the registries' names (app.web.ui.i18n.Translator)."""

    def __call__(self, key: str, **values: Any) -> str: ...

    def municipality(self, code: str) -> str: ...

    def unit(self, unit_id: str | None) -> str: ...

    def event_type(self, code: str) -> str: ...


def report_filename(first: date, last: date, extension: str) -> str:
    """The file a download is saved as: the report and its period."""
    return f"kustannustenjako-{first.isoformat()}-{last.isoformat()}.{extension}"


def cost_sharing_csv(report: CostSharingReport) -> str:
    """The report as CSV: municipality, [breakdown,] cost group, decisions, share."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if report.group_by is None:
        writer.writerow(["municipality", "cost_group", "decisions", "share"])
        for line in report.lines:
            for group in line.groups:
                writer.writerow([line.municipality, group.cost_group, group.decisions, _share(group.share)])
        for total in report.area_totals:
            writer.writerow([AREA, total.cost_group, total.decisions, "1" if total.decisions else ""])
        return out.getvalue()
    writer.writerow(["municipality", report.group_by.value, "cost_group", "decisions"])
    for line in report.lines:
        for row in line.breakdown or []:
            for name in report.cost_groups:
                writer.writerow([line.municipality, row.key, name, row.by_group[name]])
    return out.getvalue()


def _share(share: float | None) -> str:
    return "" if share is None else f"{share:.4f}"


def _line_name(names: Names, code: str) -> str:
    return names("reports.outside_area") if code == OUTSIDE_AREA else names.municipality(code)


def _headings(sheet: Worksheet, row: int, headings: list[str]) -> None:
    for column, text in enumerate(headings, start=1):
        sheet.cell(row=row, column=column, value=text).font = Font(bold=True)


def _cell(sheet: Worksheet, row: int, column: int, value: Any, number_format: str | None = None) -> None:
    cell = sheet.cell(row=row, column=column, value=value)
    if number_format is not None:
        cell.number_format = number_format


def cost_sharing_workbook(report: CostSharingReport, names: Names) -> bytes:
    """The report as an XLSX workbook: the municipalities' lines, the breakdown asked for, the rule sets."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has its one sheet
    _municipalities_sheet(first, report, names)
    if report.group_by is not None:
        _breakdown_sheet(book.create_sheet(), report, names)
    _rulesets_sheet(book.create_sheet(), report, names)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _municipalities_sheet(sheet: Worksheet, report: CostSharingReport, names: Names) -> None:
    sheet.title = names("reports.sheets.municipalities")
    sheet.cell(row=1, column=1, value=names("reports.cost_sharing.title")).font = Font(bold=True, size=14)
    sheet.cell(row=2, column=1, value=names("reports.period"))
    _cell(sheet, 2, 2, report.period.from_, DAY_FORMAT)
    _cell(sheet, 2, 3, report.period.to, DAY_FORMAT)
    sheet.cell(row=3, column=1, value=names("reports.made_at"))
    # A spreadsheet keeps no time zone: the time in Finland, as the period's days are.
    _cell(sheet, 3, 2, report.made_at.astimezone(FINNISH_TIME).replace(tzinfo=None), TIME_FORMAT)
    sheet.cell(row=4, column=1, value=names("reports.scope"))
    scope = names("reports.whole_area") if report.scope == "area" else names.municipality(report.scope)
    sheet.cell(row=4, column=2, value=scope)
    headings = [names("reports.municipality"), names("reports.code")]
    for name in report.cost_groups:
        label = names(f"cost_groups.{name}")
        headings += [names("reports.decisions_in", group=label), names("reports.share_in", group=label)]
    headings.append(names("reports.total"))
    _headings(sheet, 6, headings)
    row = 7
    for line in report.lines:
        sheet.cell(row=row, column=1, value=_line_name(names, line.municipality))
        sheet.cell(row=row, column=2, value="" if line.municipality == OUTSIDE_AREA else line.municipality)
        for index, group in enumerate(line.groups):
            _cell(sheet, row, 3 + 2 * index, group.decisions, COUNT_FORMAT)
            _cell(sheet, row, 4 + 2 * index, group.share, SHARE_FORMAT)
        _cell(sheet, row, 3 + 2 * len(line.groups), line.total, COUNT_FORMAT)
        row += 1
    sheet.cell(row=row, column=1, value=names("reports.area_total")).font = Font(bold=True)
    for index, total in enumerate(report.area_totals):
        _cell(sheet, row, 3 + 2 * index, total.decisions, COUNT_FORMAT)
    _cell(sheet, row, 3 + 2 * len(report.area_totals), report.area_total, COUNT_FORMAT)
    sheet.column_dimensions["A"].width = 28


def _breakdown_sheet(sheet: Worksheet, report: CostSharingReport, names: Names) -> None:
    by_unit = report.group_by is GroupBy.unit
    sheet.title = names("reports.sheets.by_unit" if by_unit else "reports.sheets.by_event_type")
    key_label = names("reports.provider" if by_unit else "reports.event_type")
    headings = [names("reports.municipality"), key_label, names("reports.code")]
    headings += [names(f"cost_groups.{group}") for group in report.cost_groups]
    headings.append(names("reports.total"))
    _headings(sheet, 1, headings)
    row = 2
    for line in report.lines:
        for item in line.breakdown or []:
            sheet.cell(row=row, column=1, value=_line_name(names, line.municipality))
            sheet.cell(row=row, column=2, value=names.unit(item.key) if by_unit else names.event_type(item.key))
            sheet.cell(row=row, column=3, value=item.key)
            for index, group in enumerate(report.cost_groups):
                _cell(sheet, row, 4 + index, item.by_group[group], COUNT_FORMAT)
            _cell(sheet, row, 4 + len(report.cost_groups), item.total, COUNT_FORMAT)
            row += 1
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 40


def _rulesets_sheet(sheet: Worksheet, report: CostSharingReport, names: Names) -> None:
    sheet.title = names("reports.sheets.rulesets")
    _headings(
        sheet,
        1,
        [names("reports.ruleset"), names("reports.valid_from"), names("reports.in_force_until"), "SHA-256"],
    )
    for row, ruleset in enumerate(report.rulesets, start=2):
        sheet.cell(row=row, column=1, value=ruleset.version)
        _cell(sheet, row, 2, ruleset.valid_from, DAY_FORMAT)
        _cell(sheet, row, 3, ruleset.in_force_until, DAY_FORMAT)
        sheet.cell(row=row, column=4, value=ruleset.sha256)
