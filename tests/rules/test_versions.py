"""Rule sets as law: versions by event time, simulation, the domain diff, replay and impact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import REPOSITORY, Settings
from app.db import make_engine
from app.rules.engine import RuleEngine
from app.rules.input_domain import diff
from app.rules.loader import load_rules
from tests.conftest import TEST_CHAIN_INFO, TEST_PSEUDONYM_KEY, KeyMaker, Server, count_rows, empty_the_log


def referral(event_id: str, occurred_at: str, home: str = "244") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "labour_market_training.referral",
        "occurred_at": occurred_at,
        "customer": {"type": "jobseeker", "id": "131052-308T", "home_municipality": home},
        "attributes": {"training_type": "vocational"},
    }


@pytest.fixture
def client_2026(server_2026: Server, database_url: str) -> Any:
    with httpx.Client(base_url=server_2026.base_url, timeout=60) as client:
        yield client
    empty_the_log(database_url)


class TestVersionsByEventTime:
    def test_the_version_in_force_at_occurred_at_decides(self, client_2026: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key()
        cases = [
            ("2025-12-31T23:30:00+02:00", "2025-01-01", "purchased"),
            ("2025-12-31T22:30:00+00:00", "2026-01-01", "central-training"),  # 00:30 on 1.1.2026 in Finland
            ("2026-01-01T00:30:00+02:00", "2026-01-01", "central-training"),
        ]
        for number, (occurred_at, version, provider) in enumerate(cases):
            response = client_2026.post("/v1/events", json=referral(f"r{number}", occurred_at), headers=key)
            assert response.status_code == 201, response.text
            decision = response.json()
            assert (decision["rule"]["ruleset"], decision["provider"]["unit"]) == (version, provider)
            assert response.headers["reitti-ruleset"] == version

    def test_rulesets_list_their_periods(self, client_2026: httpx.Client, make_key: KeyMaker) -> None:
        listed = {r["version"]: r for r in client_2026.get("/v1/rulesets", headers=make_key()).json()}
        assert listed["2025-01-01"]["in_force_until"] == "2025-12-31"
        assert listed["2026-01-01"]["valid_from"] == "2026-01-01"
        assert listed["2026-01-01"]["in_force_until"] is None
        assert listed["2025-01-01"]["sha256"] != listed["2026-01-01"]["sha256"]


class TestSimulate:
    def test_named_version_decides_with_a_trace_and_stores_nothing(
        self, client_2026: httpx.Client, make_key: KeyMaker, database_url: str
    ) -> None:
        coach = make_key(role="coach", name="coach", municipality="244")
        body = referral("s1", "2025-03-03T09:15:00+02:00")
        simulated = client_2026.post("/v1/simulate", params={"ruleset": "2026-01-01"}, json=body, headers=coach)
        assert simulated.status_code == 200, simulated.text
        result = simulated.json()
        assert result["ruleset"] == "2026-01-01"
        assert result["decision"]["provider"]["unit"] == "central-training"
        assert result["matched_rules"] == ["labour_market_training.referral"]
        winner = [entry for entry in result["trace"] if entry["matched"]]
        assert [entry["rule"] for entry in winner] == ["labour_market_training.referral"]
        assert all(test["held"] for test in winner[0]["tests"])
        losers = [entry for entry in result["trace"] if not entry["matched"]]
        assert losers, "the outside-area rules were considered and did not match"
        assert all(any(not test["held"] for test in entry["tests"]) for entry in losers)
        in_force = client_2026.post("/v1/simulate", json=body, headers=coach).json()
        assert in_force["ruleset"] == "2025-01-01"
        assert in_force["decision"]["provider"]["unit"] == "purchased"
        assert count_rows(database_url) == 0

    def test_unknown_version_is_404_and_invalid_event_422(self, client_2026: httpx.Client, make_key: KeyMaker) -> None:
        key = make_key()
        body = referral("s1", "2025-03-03T09:15:00+02:00")
        assert client_2026.post("/v1/simulate", params={"ruleset": "1999"}, json=body, headers=key).status_code == 404
        body["attributes"] = {}
        invalid = client_2026.post("/v1/simulate", json=body, headers=key)
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["loc"] == ["body", "attributes", "training_type"]


def test_domain_diff_lists_only_what_the_change_changes(rules_2026_dir: Path) -> None:
    rules = load_rules(rules_2026_dir)
    engine = RuleEngine()
    for ruleset in rules.rulesets:
        engine.load(ruleset)
    before, after = rules.version("2025-01-01"), rules.version("2026-01-01")
    assert before is not None
    assert after is not None
    report = diff(rules, before, after, engine, event_types={"labour_market_training.referral", "oeo.start"})
    engine.close()
    document = report.as_json()
    assert [group["event_type"] for group in document["by_event_type"]] == ["labour_market_training.referral"]
    kinds = {(c["before"]["provider"], c["after"]["provider"]) for c in document["by_event_type"][0]["changes"]}
    assert kinds == {("purchased", "central-training"), ("purchased", "other-area")}
    inside = sum(c["points"] for c in document["by_event_type"][0]["changes"] if c["after"]["provider"] != "other-area")
    # 4 training types × (1 + 8 integration statuses) × 11 municipalities, all inside the area.
    assert inside == 4 * 9 * 11


@pytest.mark.slow
def test_diff_endpoint_for_auditors_and_admins_only(rules_2026_dir: Path, tmp_path: Path) -> None:
    """The whole domain, over HTTP, once (on SQLite: the diff does not touch the database)."""
    from app.access.keys import create_key
    from app.db import make_sessions
    from app.models import Role
    from tests.conftest import migrate

    url = f"sqlite:///{tmp_path / 'diff.db'}"
    migrate(url)
    _, write = make_sessions(make_engine(url), info=TEST_CHAIN_INFO)
    keys = {}
    with write() as session:
        for role in ("auditor", "integration", "coach"):
            _, plain = create_key(session, role=Role(role), name=role, municipality="244" if role == "coach" else None)
            keys[role] = {"Authorization": f"Bearer {plain}"}
    settings = Settings(database_url=url, rules_dir=rules_2026_dir, pseudonym_key=TEST_PSEUDONYM_KEY)
    with Server(settings) as server, httpx.Client(base_url=server.base_url, timeout=300) as client:
        path = "/v1/rulesets/2025-01-01/diff/2026-01-01"
        answer = client.get(path, headers=keys["auditor"])
        refused = [client.get(path, headers=keys[role]).status_code for role in ("integration", "coach")]
        unknown = client.get("/v1/rulesets/2025-01-01/diff/2099-01-01", headers=keys["auditor"]).status_code
    assert answer.status_code == 200
    document = answer.json()
    assert document["changed"] == 432
    assert [group["event_type"] for group in document["by_event_type"]] == ["labour_market_training.referral"]
    assert refused == [403, 403]
    assert unknown == 404


def reitti(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )


class TestImpact:
    def test_replay_reports_the_candidates_changes_and_finds_no_integrity_problem(
        self, client_2026: httpx.Client, make_key: KeyMaker, database_url: str, rules_2026_dir: Path
    ) -> None:
        key = make_key()
        for number, home in enumerate(["244", "139", "091"]):
            response = client_2026.post(
                "/v1/events", json=referral(f"i{number}", "2025-05-05T10:00:00+03:00", home), headers=key
            )
            assert response.status_code == 201
        oeo = referral("i9", "2025-05-05T10:00:00+03:00") | {"event_type": "oeo.start", "attributes": {}}
        assert client_2026.post("/v1/events", json=oeo, headers=key).status_code == 201
        env = {"REITTI_DATABASE_URL": database_url, "REITTI_RULES_DIR": str(rules_2026_dir)}
        replayed = reitti("rules", "impact", "--candidate", "2026-01-01", "--json", env=env)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        report = json.loads(replayed.stdout)
        assert report["decisions"] == 4
        assert report["changed"] == 3
        assert report["by_event_type"] == {"labour_market_training.referral": 3}
        assert report["integrity_findings"] == []
        assert count_rows(database_url) == 4  # replay wrote nothing

    def test_a_rule_set_edited_in_place_is_an_integrity_finding(
        self, client_2026: httpx.Client, make_key: KeyMaker, database_url: str, tmp_path: Path
    ) -> None:
        key = make_key(name="edited-in-place")
        response = client_2026.post("/v1/events", json=referral("edited-1", "2025-05-05T10:00:00+03:00"), headers=key)
        assert response.status_code == 201, response.text
        decision_id = response.json()["decision_id"]
        edited = tmp_path / "rules"
        shutil.copytree(REPOSITORY / "rules", edited)
        training = edited / "2025-01-01" / "4.7-purchased-competence.yaml"
        training.write_text(
            training.read_text(encoding="utf-8").replace(
                "the customership stays with the coach.", "the customer stays with the coach.", 1
            ),
            encoding="utf-8",
        )
        env = {"REITTI_DATABASE_URL": database_url, "REITTI_RULES_DIR": str(edited)}
        replayed = reitti("rules", "impact", "--candidate", "2025-01-01", "--json", env=env)
        assert replayed.returncode == 1
        findings = json.loads(replayed.stdout)["integrity_findings"]
        assert [f["decision_id"] for f in findings] == [decision_id]
        assert "sha256" in findings[0]["problem"]
        assert "explanation" in findings[0]["problem"]


def test_verify_and_test_commands_pass_on_the_shipped_rules() -> None:
    verified = reitti("rules", "verify", env={})
    assert verified.returncode == 0, verified.stdout
    assert "0 gaps, 0 overlaps, 0 engine/reference disagreements" in verified.stdout
    tested = reitti("rules", "test", env={})
    assert tested.returncode == 0, tested.stdout
    assert " 0 failed" in tested.stdout


def test_rules_test_reads_the_cases_beside_the_rules_it_is_given(tmp_path: Path) -> None:
    """No tests/ folder needed: the cases travel with the rules (REITTI_RULES_DIR, the image's /app/rules)."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(REPOSITORY / "rules", rules_dir)
    oeo_cases = rules_dir / "cases" / "4.5-oeo.yaml"
    text = oeo_cases.read_text(encoding="utf-8")
    oeo_cases.write_text(text.replace("    handler:", "    handlr:", 1), encoding="utf-8")
    line = text[: text.index("    handler:")].count("\n") + 1
    tested = reitti("rules", "test", env={"REITTI_RULES_DIR": str(rules_dir)})
    assert tested.returncode == 1
    [message] = tested.stderr.strip().splitlines()
    assert message.startswith(f"cases are not valid: {oeo_cases}: line {line}: ")
    assert "unknown key(s) handlr" in message
