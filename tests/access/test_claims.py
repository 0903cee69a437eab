"""The operator's claims mapping: read strictly, and never guessing between two roles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.access.claims import Grant, MappingError, NotMapped, read_mapping
from app.access.oidc import provider_from
from app.config import Settings
from app.models import Role
from tests.oidc.providers import CLAIMS


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestReadMapping:
    def test_the_tests_mapping_reads_as_an_operator_would_write_it(self) -> None:
        mapping = read_mapping(CLAIMS)
        assert mapping.grant_for({"groups": ["staff", "reitti-coaches-244"]}) == Grant(Role.coach, "244")
        assert mapping.grant_for({"groups": "reitti-auditors"}) == Grant(Role.auditor)
        assert mapping.grant_for({"groups": ["reitti-oeo-experts"]}) == Grant(Role.unit, unit="central-oeo")
        assert mapping.client_for({"client_id": "ura"}) == "ura"
        assert mapping.display_name({"name": " Kaisa K. "}) == "Kaisa K."

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("people: {claim: groups, values: {a: {role: coach}}}", "a coach needs a municipality"),
            ("people: {claim: groups, values: {a: {role: unit}}}", "a unit's staff need a unit"),
            ("people: {claim: groups, values: {a: {role: unit, unit: 'Central OEO'}}}", "a unit's staff need a unit"),
            ("people: {claim: groups, values: {a: {role: auditor, unit: central-oeo}}}", "only a unit's staff"),
            ("people: {claim: groups, values: {a: {role: coach, municipality: '244', unit: x}}}", "only a unit's"),
            ("people: {claim: groups, values: {a: {role: auditor, municipality: '564'}}}", "only a coach"),
            ("people: {claim: groups, values: {a: {role: integration}}}", "role must be one of coach"),
            ("people: {claim: groups, values: {a: {role: admin, team: x}}}", "unknown key 'team'"),
            ("people: {claim: groups, values: {a: {role: admin}, a: {role: auditor}}}", "duplicate key 'a'"),
            ("people: {claim: groups, values: {a: {role: coach, municipality: 564}}}", "three digits in quotes"),
            ("people: {claim: groups, values: {}}", "people.values"),
            ("people: {values: {a: {role: admin}}}", "'claim' is missing"),
            (
                "people: {claim: g, values: {a: {role: admin}}}\nintegrations: {claim: azp, clients: {x: 'ui:x'}}",
                "client",
            ),
        ],
    )
    def test_a_mapping_that_is_not_usable_is_refused_naming_the_entry(
        self, tmp_path: Path, text: str, says: str
    ) -> None:
        with pytest.raises(MappingError, match=says) as refused:
            read_mapping(mapping_file(tmp_path, text))
        assert str(tmp_path) in str(refused.value)

    def test_claims_that_map_to_nothing_or_to_two_roles_are_not_mapped(self) -> None:
        mapping = read_mapping(CLAIMS)
        with pytest.raises(NotMapped) as nothing:
            mapping.grant_for({"groups": ["staff"]})
        assert nothing.value.reason == "unmapped"
        with pytest.raises(NotMapped) as two:
            mapping.grant_for({"groups": ["reitti-auditors", "reitti-admins"]})
        assert two.value.reason == "ambiguous"
        with pytest.raises(NotMapped):
            mapping.client_for({"client_id": "stranger"})


class TestSettings:
    def test_local_accounts_off_without_a_provider_is_refused_at_start(self) -> None:
        with pytest.raises(ValueError, match="REITTI_LOCAL_ACCOUNTS=off needs REITTI_OIDC_ISSUER"):
            provider_from(Settings(local_accounts=False))

    def test_an_issuer_without_client_secret_is_refused_at_start(self) -> None:
        settings = Settings(oidc_issuer="https://id.example", oidc_client_id="reitti", oidc_claims=CLAIMS)
        with pytest.raises(ValueError, match="REITTI_OIDC_CLIENT_SECRET"):
            provider_from(settings)
        with pytest.raises(ValueError, match="openid"):
            provider_from(replace(settings, oidc_client_secret="s", oidc_scopes="profile"))

    def test_the_switch_reads_on_and_off_and_nothing_else(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REITTI_LOCAL_ACCOUNTS", "off")
        assert Settings.from_env().local_accounts is False
        monkeypatch.setenv("REITTI_LOCAL_ACCOUNTS", "maybe")
        with pytest.raises(ValueError, match="REITTI_LOCAL_ACCOUNTS must be on or off"):
            Settings.from_env()
