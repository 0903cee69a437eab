"""Fixtures of the API's and the UI's tests: Reitti with sign-in through a real OpenID provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine
from app.models import sso_name
from tests.conftest import TEST_CHECKPOINT_KEY, TEST_PSEUDONYM_KEY, Server, empty_the_log
from tests.oidc.providers import API, CLAIMS, UI_CLIENT, RealProvider, signing_key
from tests.web.ui.test_pages import Visitor


def sso_settings(database_url: str, issuer: str, **changes: Any) -> Settings:
    settings = Settings(
        database_url=database_url,
        pseudonym_key=TEST_PSEUDONYM_KEY,
        checkpoint_key=TEST_CHECKPOINT_KEY,
        oidc_issuer=issuer,
        oidc_client_id=UI_CLIENT[0],
        oidc_client_secret=UI_CLIENT[1],
        oidc_scopes="openid profile groups",
        oidc_claims=CLAIMS,
        oidc_api_audience=API,
    )
    return replace(settings, **changes)


@dataclass
class SignInSite:
    """Reitti, and the provider its people sign in with."""

    server: Server
    provider: RealProvider

    def name_of(self, login: str) -> str:
        """How records name the provider's person `login`: by issuer and subject."""
        return sso_name(self.provider.issuer, login)


@pytest.fixture(scope="session")
def provider_key() -> RSAKey:
    return signing_key()


@pytest.fixture(scope="session")
def site(database_url: str, provider_key: RSAKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignInSite]:
    """Reitti with sign-in through the real provider, on each database."""
    provider = RealProvider(provider_key, tmp_path_factory.mktemp("oidc") / "provider.log")
    server = Server(sso_settings(database_url, provider.issuer))
    provider.reitti_base_url = server.base_url
    with provider, server:
        yield SignInSite(server, provider)


def remove_people(database_url: str) -> None:
    """Remove every session and user: the test's own, made by signing in."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM ui_sessions"))
        connection.execute(text("DELETE FROM users"))
    engine.dispose()


@pytest.fixture
def clean(database_url: str) -> Iterator[None]:
    """Each test starts with no people, sessions or log; what it made goes after it."""
    yield
    empty_the_log(database_url)
    remove_people(database_url)


@pytest.fixture
def visitor_of() -> Iterator[Callable[[Server], Visitor]]:
    """Make visitors of a server; their connections are closed after the test."""
    made: list[Visitor] = []

    def make(server: Server) -> Visitor:
        made.append(Visitor(server))
        return made[-1]

    yield make
    for visitor in made:
        visitor.client.close()


VisitorOf = Callable[[Server], Visitor]
