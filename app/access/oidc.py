"""Signing in through the municipality's OpenID provider, and checking the provider's access tokens.

The browser's side — the redirect, the callback, the cookies — is the web UI's (app/web/ui/sso.py).
Here is what it asks: where to send the browser (the authorisation code flow with PKCE, state and
nonce, through Authlib's OAuth 2 client), what a callback makes of it, and whether a bearer token
is one of the provider's access tokens for the API. Every check fails closed: a refusal raises
before anything is stored, and the caller stores nothing then.

Tokens are checked with joserfc against the keys the provider publishes (its JWKS, fetched again
when a token names a key not seen yet: the provider rotates them), with the issuer, audience and
expiry required. Only asymmetric signatures are accepted: never `none`, never a MAC whose key
would be the client secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.access import roles
from app.access.claims import ClaimsMapping, Grant, NotMapped, read_mapping
from app.access.keys import KEY_PREFIX, Principal
from app.access.users import b64, unb64
from app.config import Settings
from app.models import NO_NUMBER, sso_name

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Clocks of the provider and of Reitti may differ by this much.
LEEWAY_SECONDS = 60
# How long a browser may take between the redirect to the provider and the callback.
PENDING_SECONDS = 10 * 60
# The JWKS is fetched again for an unknown key at most this often, so that forged kids cannot make
# Reitti hammer the provider.
JWKS_REFRESH_SECONDS = 60
METADATA_SECONDS = 60 * 60
TIMEOUT_SECONDS = 10
# The recorded name of a person is at most this long (the log's name columns).
NAME_LENGTH = 128


class SignInRefused(Exception):
    """A sign-in or a token refused: `reason` picks the page's words, the message is for the log."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Pending:
    """What the browser carries between the redirect and the callback, in a cookie signed by the service.

    Nothing is stored before the callback has been checked: the state, the nonce and PKCE's
    verifier travel with the browser that began the sign-in, and only that browser can finish it.
    """

    state: str
    nonce: str
    verifier: str
    next_page: str
    issued: int

    def seal(self, secret: bytes) -> str:
        """The cookie's value: the payload and its HMAC, both base64url."""
        payload = json.dumps([self.state, self.nonce, self.verifier, self.next_page, self.issued]).encode()
        return f"{b64(payload)}.{_mac(secret, payload)}"

    @classmethod
    def unseal(cls, secret: bytes, value: str | None, *, now: float | None = None) -> Pending:
        """The pending sign-in a cookie carries; SignInRefused when it is missing, forged or too old."""
        try:
            encoded, signature = (value or "").split(".")
            payload = unb64(encoded)
            if not hmac.compare_digest(_mac(secret, payload), signature):
                raise ValueError("forged")
            state, nonce, verifier, next_page, issued = json.loads(payload)
            pending = cls(str(state), str(nonce), str(verifier), str(next_page), int(issued))
        except (ValueError, TypeError):
            raise SignInRefused("state", "the callback came without this browser's pending sign-in") from None
        age = (time.time() if now is None else now) - pending.issued
        if not 0 <= age < PENDING_SECONDS:
            raise SignInRefused("state", "the pending sign-in is too old")
        return pending


def _mac(secret: bytes, payload: bytes) -> str:
    return b64(hmac.new(secret, b"sso|" + payload, hashlib.sha256).digest())


@dataclass(frozen=True)
class SignedIn:
    """A person the provider vouched for, and what the mapping makes them in Reitti."""

    issuer: str
    subject: str
    display_name: str | None
    grant: Grant


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token is a JWT rather than one of Reitti's API keys."""
    return not token.startswith(KEY_PREFIX) and token.count(".") == 2


class OpenIdProvider:
    """The municipality's provider, as Reitti uses it; its discovery document and keys are fetched when needed.

    Nothing is fetched when the service starts, so that Reitti starts while the provider is away;
    a sign-in then is refused with a page that says the provider did not answer.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        mapping: ClaimsMapping,
        api_audience: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.mapping = mapping
        self.api_audience = api_audience
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # --- what the provider publishes ------------------------------------------------------

    def _get(self, url: str) -> dict[str, Any]:
        try:
            answer = requests.get(url, timeout=TIMEOUT_SECONDS)
            answer.raise_for_status()
            document: dict[str, Any] = answer.json()
        except (requests.RequestException, ValueError) as error:
            raise SignInRefused("provider", f"{url} did not answer usably: {type(error).__name__}") from None
        if not isinstance(document, dict):
            raise SignInRefused("provider", f"{url} did not answer with a JSON object")
        return document

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, whose issuer must be the configured one exactly."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_SECONDS:
                return self._metadata
        document = self._get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != self.issuer:
            # Entra ID's multi-tenant /common document names no tenant's issuer: the tenant's own is needed.
            raise SignInRefused(
                "provider",
                f"the provider's discovery document names the issuer {document.get('issuer')!r}, "
                f"not REITTI_OIDC_ISSUER {self.issuer!r} (Entra ID: use the tenant's own issuer, not /common)",
            )
        for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(endpoint), str):
                raise SignInRefused("provider", f"the provider's discovery document has no {endpoint}")
        with self._lock:
            self._metadata, self._metadata_at = document, time.monotonic()
        return document

    def _key_set(self, kid: str) -> KeySet:
        """The provider's keys, fetched again (at most once a minute) when `kid` is not among them."""
        with self._lock:
            keys, fetched_at = self._keys, self._keys_at
        if keys is not None and (_has_kid(keys, kid) or time.monotonic() - fetched_at < JWKS_REFRESH_SECONDS):
            return keys
        try:
            keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise SignInRefused("provider", "the provider's JWKS is not a key set") from None
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    # --- tokens ---------------------------------------------------------------------------

    def verified_claims(self, token: str, *, audience: str) -> dict[str, Any]:
        """A JWT's claims, once its signature (by a key of the provider's JWKS), issuer, audience and expiry hold."""
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise SignInRefused("token", "the token is not a signed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in SIGNING_ALGORITHMS:
            raise SignInRefused("token", f"the token is signed with {algorithm!r}, which Reitti does not accept")
        keys = self._key_set(kid) if isinstance(kid, str) else None
        if keys is None or not _has_kid(keys, str(kid)):
            raise SignInRefused("token", "the token is signed with a key that is not in the provider's JWKS")
        try:
            claims = dict(jwt.decode(token, keys, algorithms=[algorithm]).claims)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(claims)
        except JoseError as error:
            raise SignInRefused("token", f"the token was refused: {error.error}: {error.description}") from None
        return claims

    def integration(self, token: str) -> Principal:
        """The integration an access token of the provider is for; SignInRefused when it is not one for the API."""
        if self.api_audience is None:
            raise SignInRefused("token", "the provider's access tokens are not accepted (REITTI_OIDC_API_AUDIENCE)")
        claims = self.verified_claims(token, audience=self.api_audience)
        if "nonce" in claims:
            raise SignInRefused("token", "an ID token is not an access token")
        try:
            name = self.mapping.client_for(claims)
        except NotMapped as error:
            raise SignInRefused(error.reason, str(error)) from None
        return Principal(key_id=NO_NUMBER, name=name, role=roles.TOKEN_CLIENT, municipality=None)

    # --- the code flow --------------------------------------------------------------------

    def _client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=self.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def begin(self, *, redirect_uri: str, next_page: str, language: str) -> tuple[str, Pending]:
        """Where to send the browser, and what it must carry back: a new state, nonce and PKCE verifier."""
        pending = Pending(generate_token(32), generate_token(32), generate_token(64), next_page, int(time.time()))
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.verifier,
                ui_locales=language,
            )
        return url, pending

    def finish(self, pending: Pending, answer: Mapping[str, str], *, redirect_uri: str) -> SignedIn:
        """Check the provider's answer to the browser against the pending sign-in; who signed in, or SignInRefused."""
        if not hmac.compare_digest(answer.get("state", ""), pending.state):
            raise SignInRefused("state", "the callback's state is not this browser's")
        if "iss" in answer and answer["iss"] != self.issuer:
            raise SignInRefused("state", "the callback names another issuer (a mix-up)")
        if "error" in answer:
            raise SignInRefused("provider", f"the provider answered {answer['error'][:64]!r}")
        if not answer.get("code"):
            raise SignInRefused("state", "the callback came without a code")
        try:
            with self._client(redirect_uri) as client:
                tokens = client.fetch_token(
                    self.metadata()["token_endpoint"],
                    code=answer["code"],
                    code_verifier=pending.verifier,
                    timeout=TIMEOUT_SECONDS,
                )
        except SignInRefused:
            raise
        except Exception as error:  # Authlib's OAuthError, the transport's, a body that is not JSON
            raise SignInRefused("provider", f"the token endpoint refused the code: {type(error).__name__}") from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("token", "the token endpoint sent no ID token")
        claims = self.verified_claims(id_token, audience=self.client_id)
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], pending.nonce):
            raise SignInRefused("token", "the ID token's nonce is not this sign-in's")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("token", "the ID token was issued to another client (azp)")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(sso_name(self.issuer, subject)) > NAME_LENGTH:
            raise SignInRefused("token", "the ID token's subject is empty, or with the issuer too long to record")
        try:
            grant = self.mapping.grant_for(claims)
        except NotMapped as error:
            raise SignInRefused(error.reason, str(error)) from None
        return SignedIn(self.issuer, subject, self.mapping.display_name(claims), grant)

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """The provider's logout for this client, when the provider advertises one (and answers)."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except SignInRefused:
            return None
        if not isinstance(endpoint, str):
            return None
        query = urlencode({"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def provider_from(settings: Settings) -> OpenIdProvider | None:
    """The provider the settings name, its mapping file read and checked; None when sign-in is local only.

    Settings that cannot work together, and a mapping file that is not usable, stop the service at
    start with a message that names the variable or the file's entry.
    """
    settings.check_sign_in()
    if settings.oidc_issuer is None:
        return None
    return OpenIdProvider(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id or "",  # check_sign_in: all three are set
        client_secret=settings.oidc_client_secret or "",
        scopes=settings.oidc_scopes,
        mapping=read_mapping(settings.oidc_claims or Path()),
        api_audience=settings.oidc_api_audience,
    )
