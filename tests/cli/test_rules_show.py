"""`reitti rules show`: one rule as the rule book writes it, in the language asked for."""

from __future__ import annotations

import pytest

from app.cli.main import main


def test_show_writes_the_rule_out_with_its_plan_text_and_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "show", "oeo.suitability", "--language", "en"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("oeo.suitability (2025-01-01, 4.5-oeo.yaml)")
    assert "  - the customer is not a central integration customer" in shown
    assert "  Handled by: the customer's home municipality's unit (H)" in shown
    assert "2.2.3 a Omaehtoinen opiskelu työttömyysetuudella (OEO)" in shown  # the plan's own words
    assert "  - The suitability decision for a Kempele jobseeker's self-motivated studies" in shown


def test_show_in_finnish_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "show", "oeo.suitability", "--version", "2025-01-01"]) == 0
    assert "  Käsittelee: asiakkaan kotikunnan yksikkö (H)" in capsys.readouterr().out


def test_an_unknown_rule_or_version_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "show", "no.such.rule"]) == 2
    assert "has no rule 'no.such.rule'" in capsys.readouterr().err
    assert main(["rules", "show", "oeo.start", "--version", "1999-01-01"]) == 2
    assert "versions are 2025-01-01" in capsys.readouterr().err
