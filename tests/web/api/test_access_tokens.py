"""Integrations presenting the provider's access tokens (client credentials) instead of API keys.

The tokens come from the real provider (oidc-provider on Node.js). The refused ones are signed by
the test: with the provider's own key (so that only the claim at fault differs), with no signature,
or with a key that is not in the provider's JWKS. Each is refused with 401 and stores nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.db import make_engine
from tests.conftest import KeyMaker, count_rows
from tests.oidc.providers import API, sign, signing_key
from tests.web.api.test_events import oeo_start
from tests.web.conftest import SignInSite

pytestmark = pytest.mark.slow


@pytest.fixture
def client(site: SignInSite, clean: None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.server.base_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_token_claims(site: SignInSite, **changes: Any) -> dict[str, Any]:
    """What the provider puts in ura's access token, with `changes`."""
    now = int(time.time())
    claims = {"iss": site.provider.issuer, "aud": API, "sub": "ura", "client_id": "ura", "iat": now, "exp": now + 300}
    return {**claims, **changes}


class TestPostEventsWithAnAccessToken:
    def test_a_mapped_client_posts_under_its_client_name_and_a_repeat_is_the_same_decision(
        self, site: SignInSite, client: httpx.Client, database_url: str
    ) -> None:
        token = site.provider.client_credentials("ura")
        first = client.post("/v1/events", json=oeo_start(), headers=bearer(token))
        assert first.status_code == 201, first.text
        again = client.post("/v1/events", json=oeo_start(), headers=bearer(site.provider.client_credentials("ura")))
        assert again.status_code == 200
        assert again.json()["decision_id"] == first.json()["decision_id"]
        mine = client.get("/v1/decisions", headers=bearer(token))
        assert [d["decision_id"] for d in mine.json()["items"]] == [first.json()["decision_id"]]
        engine = make_engine(database_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT client FROM decisions")).scalars().all() == ["ura"]
        engine.dispose()

    def test_idempotency_is_per_client_name_so_the_key_of_the_same_name_gets_the_same_decision(
        self, site: SignInSite, client: httpx.Client, make_key: KeyMaker
    ) -> None:
        by_token = client.post("/v1/events", json=oeo_start(), headers=bearer(site.provider.client_credentials("ura")))
        by_key = client.post("/v1/events", json=oeo_start(), headers=make_key(name="ura"))
        assert by_key.status_code == 200
        assert by_key.json()["decision_id"] == by_token.json()["decision_id"]

    def test_a_client_the_mapping_does_not_name_is_refused(
        self, site: SignInSite, client: httpx.Client, database_url: str
    ) -> None:
        refused = client.post(
            "/v1/events", json=oeo_start(), headers=bearer(site.provider.client_credentials("stranger"))
        )
        assert refused.status_code == 401
        assert count_rows(database_url) == 0

    def test_the_reads_of_overrides_name_the_token_client_apart_from_keys(
        self, site: SignInSite, client: httpx.Client, make_key: KeyMaker
    ) -> None:
        token = site.provider.client_credentials("ura")
        decision = client.post("/v1/events", json=oeo_start(), headers=bearer(token)).json()["decision_id"]
        assert client.get(f"/v1/decisions/{decision}/overrides", headers=bearer(token)).status_code == 200
        log = client.get("/v1/audit/access", headers=make_key(role="auditor", name="aud")).json()["items"]
        assert [(entry["principal"], entry["key_id"]) for entry in log] == [("token:ura", 0)]

    @pytest.mark.parametrize(
        ("fault", "forge"),
        [
            ("'iss'", lambda s: sign(s.provider.key, access_token_claims(s, iss="https://elsewhere.example"))),
            ("'aud'", lambda s: sign(s.provider.key, access_token_claims(s, aud="urn:other:api"))),
            ("expired_token", lambda s: sign(s.provider.key, access_token_claims(s, exp=int(time.time()) - 3600))),
            ("'exp'", lambda s: sign(s.provider.key, {k: v for k, v in access_token_claims(s).items() if k != "exp"})),
            ("signed with 'none'", lambda s: sign(s.provider.key, access_token_claims(s), alg="none")),
            ("not in the provider's JWKS", lambda s: sign(signing_key("rogue"), access_token_claims(s))),
            ("bad_signature", lambda s: sign(signing_key(), access_token_claims(s))),  # the JWKS's kid, another key
            ("an ID token is not an access token", lambda s: sign(s.provider.key, access_token_claims(s, nonce="n"))),
        ],
        ids=["issuer", "audience", "expired", "no-expiry", "alg-none", "unknown-key", "other-key", "id-token"],
    )
    def test_a_forged_access_token_is_refused_for_its_fault_and_nothing_is_stored(
        self, site: SignInSite, client: httpx.Client, database_url: str, fault: str, forge: Any
    ) -> None:
        refused = client.post("/v1/events", json=oeo_start(), headers=bearer(forge(site)))
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert fault in refused.json()["detail"]
        assert count_rows(database_url) == 0

    def test_the_same_claims_signed_by_the_provider_key_are_accepted_so_each_refusal_is_for_its_fault(
        self, site: SignInSite, client: httpx.Client
    ) -> None:
        accepted = client.post(
            "/v1/events", json=oeo_start(), headers=bearer(sign(site.provider.key, access_token_claims(site)))
        )
        assert accepted.status_code == 201
