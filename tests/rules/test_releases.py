"""Signed releases: two approvers release a version; with signed rules required, any doubt refuses to start.

Each refusal is made for real: keys made by `reitti rules keygen`, signatures by `reitti rules
sign`, then the bad case (a missing signature, a copy, an unknown key, a forged byte, an edit),
then the service is started — `reitti serve` in a subprocess and the app's own lifespan — and
refuses, naming the version and what is missing.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from app.cli.main import main
from app.config import REPOSITORY, Settings
from app.main import create_app
from app.rules.loader import load_rules
from app.rules.releases import UnreleasedRules
from tests.cli.test_cli import reitti
from tests.conftest import TEST_PSEUDONYM_KEY, Server, free_port

VERSION = "2025-01-01"


class Area:
    """A copy of the shipped rules with approvers whose keys this test made."""

    def __init__(self, root: Path) -> None:
        self.rules = root / "rules"
        self.keys = root / "keys"
        shutil.copytree(REPOSITORY / "rules", self.rules)
        (self.rules / "approvers").mkdir(exist_ok=True)

    def approver(self, name: str, *, known: bool = True) -> Path:
        """A key pair made by `reitti rules keygen`; its public half kept with the rules when `known`."""
        assert main(["rules", "keygen", name, "--out", str(self.keys)]) == 0
        if known:
            shutil.copy(self.keys / f"{name}.pub", self.rules / "approvers" / f"{name}.pub")
        return self.keys / f"{name}.key"

    def sign(self, key: Path, monkeypatch: pytest.MonkeyPatch) -> int:
        monkeypatch.setenv("REITTI_RULES_DIR", str(self.rules))
        return main(["rules", "sign", VERSION, "--key", str(key)])

    @property
    def signatures(self) -> Path:
        return self.rules / VERSION / "signatures"


@pytest.fixture
def area(tmp_path: Path) -> Area:
    return Area(tmp_path)


def refusal(area: Area) -> str:
    """What the loader says when signed rules are required."""
    with pytest.raises(UnreleasedRules) as refused:
        load_rules(area.rules, require_signed=True)
    return str(refused.value)


def serve_refuses(area: Area, tmp_path: Path) -> str:
    """`reitti serve` with signed rules required: it must exit at once with one line on stderr."""
    done = reitti(
        "serve",
        "--port",
        str(free_port()),
        env={
            "REITTI_RULES_DIR": str(area.rules),
            "REITTI_REQUIRE_SIGNED_RULES": "1",
            "REITTI_DATABASE_URL": f"sqlite:///{tmp_path / 'refused.db'}",
            "REITTI_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
            "REITTI_SESSION_SECRET": "s",
        },
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: refusing to serve: rule set {VERSION} is not released:")
    return lines[0]


class TestRelease:
    def test_two_distinct_approvers_release_a_version(self, area: Area, monkeypatch: pytest.MonkeyPatch) -> None:
        alice, bob = area.approver("alice"), area.approver("bob")
        assert area.sign(alice, monkeypatch) == 0
        assert not load_rules(area.rules).rulesets[0].release.released
        assert area.sign(bob, monkeypatch) == 0
        release = load_rules(area.rules, require_signed=True).rulesets[0].release
        assert release.released
        assert sorted(s.approver for s in release.signatures) == ["alice", "bob"]

    def test_an_approver_cannot_sign_the_same_content_twice(self, area: Area, monkeypatch: pytest.MonkeyPatch) -> None:
        alice = area.approver("alice")
        assert area.sign(alice, monkeypatch) == 0
        assert area.sign(alice, monkeypatch) == 1

    def test_a_key_that_is_no_approvers_cannot_sign(self, area: Area, monkeypatch: pytest.MonkeyPatch) -> None:
        assert area.sign(area.approver("mallory", known=False), monkeypatch) == 1
        assert not area.signatures.exists()

    def test_without_the_setting_an_unsigned_version_loads_and_says_it_is_not_released(self, area: Area) -> None:
        ruleset = load_rules(area.rules).rulesets[0]
        assert not ruleset.release.released
        assert ruleset.release.problems == ("signed by 0 approver(s) (nobody), 2 needed",)


class TestRefusals:
    """Signed rules required: each doubt refuses the load, `reitti serve` and the app's start."""

    def test_an_unsigned_version(self, area: Area, tmp_path: Path) -> None:
        assert "signed by 0 approver(s) (nobody), 2 needed" in refusal(area)
        assert "nobody" in serve_refuses(area, tmp_path)

    def test_one_approver(self, area: Area, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        area.approver("bob")
        area.sign(area.approver("alice"), monkeypatch)
        assert "signed by 1 approver(s) (alice), 2 needed" in refusal(area)
        assert "(alice), 2 needed" in serve_refuses(area, tmp_path)

    def test_one_approver_signing_twice(self, area: Area, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        area.approver("bob")
        area.sign(area.approver("alice"), monkeypatch)
        # A copy under bob's name is still alice's signature: the key decides, not the file name.
        shutil.copy(area.signatures / "alice.yaml", area.signatures / "bob.yaml")
        assert "alice signed twice" in refusal(area)
        assert "signatures/bob.yaml: alice signed twice" in serve_refuses(area, tmp_path)

    def test_an_unknown_key(self, area: Area, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        (area.rules / "approvers" / "bob.pub").unlink()  # bob's key was removed: his signature no longer counts
        assert "signatures/bob.yaml: signed with an unknown key" in refusal(area)
        assert "unknown key" in serve_refuses(area, tmp_path)

    def test_a_bad_signature(self, area: Area, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        path = area.signatures / "bob.yaml"
        document = yaml.safe_load(path.read_text())
        forged = bytearray(base64.b64decode(document["signature"]))
        forged[0] ^= 1
        document["signature"] = base64.b64encode(forged).decode()
        path.write_text(yaml.safe_dump(document))
        assert "bob's signature does not verify" in refusal(area)
        assert "bad signature" in serve_refuses(area, tmp_path)

    def test_a_signed_time_changed_is_a_bad_signature(self, area: Area, monkeypatch: pytest.MonkeyPatch) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        path = area.signatures / "alice.yaml"
        document = yaml.safe_load(path.read_text())
        document["signed_at"] = "2020-01-01T00:00:00+00:00"
        path.write_text(yaml.safe_dump(document))
        assert "alice's signature does not verify" in refusal(area)

    def test_a_file_changed_after_signing(self, area: Area, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        rule_file = area.rules / VERSION / "4.5-oeo.yaml"
        rule_file.write_text(rule_file.read_text().replace("handler: central-oeo", "handler: H", 1))
        message = refusal(area)
        assert "changed after signing" in message
        assert "alice signed" in message
        assert "bob signed" in message
        assert "changed after signing" in serve_refuses(area, tmp_path)

    def test_a_shared_registry_file_changed_after_signing(self, area: Area, monkeypatch: pytest.MonkeyPatch) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        units = area.rules / "units.yaml"
        units.write_text(units.read_text() + "\n# edited\n")
        assert "changed after signing" in refusal(area)


class TestServiceStart:
    """The app's own lifespan verifies too: `uvicorn app.main:app` without `reitti serve` fails closed."""

    def test_the_app_does_not_start_on_an_unsigned_version(self, area: Area, database_url: str) -> None:
        settings = Settings(
            database_url=database_url,
            rules_dir=area.rules,
            pseudonym_key=TEST_PSEUDONYM_KEY,
            require_signed_rules=True,
        )
        app = create_app(settings)

        async def start() -> None:
            async with app.router.lifespan_context(app):
                raise AssertionError("the app started on an unsigned version")

        with pytest.raises(UnreleasedRules, match=f"rule set {VERSION} is not released"):
            asyncio.run(start())
        assert app.state.services is None  # nothing was opened

    def test_a_released_version_is_served_and_said_to_be_released(
        self, area: Area, database_url: str, monkeypatch: pytest.MonkeyPatch, make_key: Callable[..., dict[str, str]]
    ) -> None:
        area.sign(area.approver("alice"), monkeypatch)
        area.sign(area.approver("bob"), monkeypatch)
        settings = Settings(database_url=database_url, rules_dir=area.rules, pseudonym_key=TEST_PSEUDONYM_KEY)
        with Server(replace(settings, require_signed_rules=True)) as server:
            headers = make_key()
            listed = httpx.get(f"{server.base_url}/v1/rulesets", headers=headers).json()
            assert [r["released"] for r in listed] == [True]
            detail = httpx.get(f"{server.base_url}/v1/rulesets/{VERSION}", headers=headers).json()
            assert sorted(s["approver"] for s in detail["signatures"]) == ["alice", "bob"]
            assert detail["release_problems"] == []


def test_the_setting_refuses_a_value_that_is_neither_yes_nor_no(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REITTI_REQUIRE_SIGNED_RULES", "ture")
    with pytest.raises(ValueError, match="REITTI_REQUIRE_SIGNED_RULES"):
        Settings.from_env()
