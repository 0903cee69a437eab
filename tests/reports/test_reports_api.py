"""GET /v1/reports/cost-sharing over real HTTP: JSON, CSV and XLSX equal the log's own counts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime

import httpx
import pytest
from openpyxl import load_workbook

from app.rules.model import Rules
from tests.conftest import KeyMaker, Server
from tests.reports.log import Logged, counted

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
YEAR = {"from": "2025-01-01", "to": "2025-12-31"}
FIRST, LAST = date(2025, 1, 1), date(2025, 12, 31)
URL = "/v1/reports/cost-sharing"
# The columns' order in the workbook: the municipality's own group first, then those shared.
GROUPS = ("local", "shared_central", "purchased", "support_payments", "external")


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    """A client of the test server that leaves the module's log in place (the `api` fixture empties it)."""
    with httpx.Client(base_url=server.base_url, timeout=30) as opened:
        yield opened


def area(rules: Rules) -> frozenset[str]:
    return rules.rulesets[0].area_municipalities


class TestCostSharing:
    def test_json_lines_are_the_logs_counts(
        self, client: httpx.Client, make_key: KeyMaker, rules: Rules, log: list[Logged]
    ) -> None:
        response = client.get(URL, params=YEAR, headers=make_key(role="management", name="johto"))
        assert response.status_code == 200, response.text
        body = response.json()
        expected = counted(log, FIRST, LAST, area(rules))
        got = {
            (line["municipality"], g["cost_group"]): g["decisions"] for line in body["lines"] for g in line["groups"]
        }
        assert {key: n for key, n in got.items() if n} == dict(expected)
        assert body["area_total"] == len([row for row in log if FIRST <= row.day <= LAST])
        assert body["period"] == YEAR
        assert [r["version"] for r in body["rulesets"]] == [rules.rulesets[0].version]

    def test_csv_rows_are_the_logs_counts(
        self, client: httpx.Client, make_key: KeyMaker, rules: Rules, log: list[Logged]
    ) -> None:
        key = make_key(role="auditor", name="auditor")
        response = client.get(URL, params=YEAR, headers={**key, "Accept": "text/csv"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "kustannustenjako-2025-01-01-2025-12-31.csv" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        expected = counted(log, FIRST, LAST, area(rules))
        lines = {(r["municipality"], r["cost_group"]): int(r["decisions"]) for r in rows if r["municipality"] != "area"}
        assert {k: n for k, n in lines.items() if n} == dict(expected)
        totals = {r["cost_group"]: int(r["decisions"]) for r in rows if r["municipality"] == "area"}
        for group, total in totals.items():
            assert total == sum(n for (_, g), n in expected.items() if g == group)

    def test_csv_breakdown_by_unit_is_the_logs_counts(
        self, client: httpx.Client, make_key: KeyMaker, rules: Rules, log: list[Logged]
    ) -> None:
        key = make_key(role="admin", name="admin")
        params = {**YEAR, "group_by": "unit"}
        response = client.get(URL, params=params, headers={**key, "Accept": "text/csv"})
        rows = list(csv.DictReader(io.StringIO(response.text)))
        got = {(r["municipality"], r["unit"], r["cost_group"]): int(r["decisions"]) for r in rows}
        assert {k: n for k, n in got.items() if n} == dict(counted(log, FIRST, LAST, area(rules), by="unit"))

    def test_xlsx_cells_are_the_logs_counts_under_finnish_headings(
        self, client: httpx.Client, make_key: KeyMaker, rules: Rules, log: list[Logged]
    ) -> None:
        key = make_key(role="management", name="johto")
        params = {**YEAR, "group_by": "event_type"}
        response = client.get(URL, params=params, headers={**key, "Accept": XLSX})
        assert response.status_code == 200
        assert response.headers["content-type"] == XLSX
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == ["Kunnittain", "Tapahtumatyypeittäin", "Sääntöversiot"]
        sheet = book["Kunnittain"]
        assert sheet["A1"].value == "Kustannustenjako kunnittain"
        assert (sheet["A2"].value, sheet["B2"].value, sheet["C2"].value) == (
            "Ajanjakso",
            datetime(2025, 1, 1),
            datetime(2025, 12, 31),
        )
        assert sheet["B2"].number_format == "d.m.yyyy"
        assert sheet["A3"].value == "Raportti laadittu"
        assert isinstance(sheet["B3"].value, datetime)
        headings = [cell.value for cell in sheet[6]]
        assert headings[:4] == ["Kunta", "Koodi", "Kunnan oma: päätöksiä", "Kunnan oma: osuus"]
        expected = counted(log, FIRST, LAST, area(rules))
        got = {}
        totals_row = None
        for row in sheet.iter_rows(min_row=7, values_only=True):
            if row[0] == "Alue yhteensä":
                totals_row = row
                break
            line = row[1] or "outside_area"
            for index, group in enumerate(GROUPS):
                got[(line, group)] = row[2 + 2 * index]
        assert {k: n for k, n in got.items() if n} == dict(expected)
        assert totals_row is not None
        assert totals_row[12] == sum(expected.values())
        assert sheet.cell(row=7, column=3).number_format == "#,##0"
        assert sheet.cell(row=7, column=4).number_format == "0.0%"
        by_type = book["Tapahtumatyypeittäin"]
        assert [cell.value for cell in by_type[1]][:3] == ["Kunta", "Tapahtumatyyppi", "Koodi"]
        names = rules.registry.municipalities
        got_types = {}
        for row in by_type.iter_rows(min_row=2, values_only=True):
            line = next((code for code, name in names.items() if name == row[0]), "outside_area")
            for index, group in enumerate(GROUPS):
                got_types[(line, row[2], group)] = row[3 + index]
        assert {k: n for k, n in got_types.items() if n} == dict(
            counted(log, FIRST, LAST, area(rules), by="event_type")
        )

    def test_a_coach_gets_their_own_municipalitys_line(
        self, client: httpx.Client, make_key: KeyMaker, rules: Rules, log: list[Logged]
    ) -> None:
        key = make_key(role="coach", name="coach-564", municipality="564")
        body = client.get(URL, params=YEAR, headers=key).json()
        assert [line["municipality"] for line in body["lines"]] == ["564"]
        expected = counted(log, FIRST, LAST, area(rules))
        assert body["lines"][0]["total"] == sum(n for (line, _), n in expected.items() if line == "564")

    def test_an_integration_key_is_refused(self, client: httpx.Client, make_key: KeyMaker) -> None:
        assert client.get(URL, params=YEAR, headers=make_key()).status_code == 403

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2025-13-01", "to": "2025-12-31"}, "from"),
            ({"from": "2025-01-01", "to": "31.12.2025"}, "to"),
            ({"from": "2025-06-01", "to": "2025-05-31"}, "to"),
            ({**YEAR, "group_by": "client"}, "group_by"),
            ({"to": "2025-12-31"}, "from"),
        ],
    )
    def test_bad_input_is_a_problem_that_names_the_field(
        self, client: httpx.Client, make_key: KeyMaker, params: dict[str, str], field: str
    ) -> None:
        response = client.get(URL, params=params, headers=make_key(role="management", name="johto"))
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [error["loc"] for error in response.json()["errors"]] == [["query", field]]

    def test_the_first_and_last_dates_there_are_make_a_period(
        self, client: httpx.Client, make_key: KeyMaker, log: list[Logged]
    ) -> None:
        params = {"from": "0001-01-01", "to": "9999-12-31"}
        response = client.get(URL, params=params, headers=make_key(role="management", name="johto"))
        assert response.status_code == 200, response.text
        assert response.json()["area_total"] == len(log)
