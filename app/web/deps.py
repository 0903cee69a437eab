"""What endpoints and pages depend on, declared once: the services, sessions, the caller and its role."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.access import roles
from app.access.identity import InvalidIdentifier, check_identifier, pseudonymise
from app.access.keys import KnownKeys, Principal, authenticate, bearer_key, key_is_live
from app.access.oidc import OpenIdProvider, SignInRefused, looks_like_jwt
from app.access.throttle import LoginThrottle
from app.audit.keys import ChainKeys
from app.config import Settings
from app.db import Transaction
from app.decisions.reads import Reader
from app.decisions.writer import Writer
from app.errors import FieldError, InvalidQuery, ReittiError, Unauthenticated
from app.identity_codes import contains_identity_code, contains_personal_identity_code
from app.input_checks import storable_text
from app.rules.engine import RuleEngine
from app.rules.input_domain import diff
from app.rules.model import Rules, RuleSet
from app.schemas import DecisionFilters, RulesetDiffOut

log = logging.getLogger("reitti")


@dataclass(eq=False)
class Services:
    """What the app's lifespan opens and closes: the one object on `app.state`, typed."""

    settings: Settings
    rules: Rules
    engine: RuleEngine
    database: Engine
    read_sessions: sessionmaker[Session]
    write_sessions: Transaction
    writer: Writer
    pseudonym_key: bytes
    checkpoint_key: bytes
    chain_keys: ChainKeys
    session_secret: bytes
    known_keys: KnownKeys = field(default_factory=KnownKeys)
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # The municipality's OpenID provider; None when people sign in with local accounts only.
    sign_in: OpenIdProvider | None = None
    # Rule-set diffs walk the whole input domain: each pair is computed once per process.
    diffs: dict[tuple[str, str], RulesetDiffOut] = field(default_factory=dict)
    diff_lock: threading.Lock = field(default_factory=threading.Lock)


def services(request: Request) -> Services:
    """The services of the app serving this request."""
    opened: Services = request.app.state.services
    return opened


def cached_diff(request: Request, rules: Rules, before: RuleSet, after: RuleSet) -> RulesetDiffOut:
    """Every point whose outcome differs between two versions: walked once per pair of contents per process."""
    opened = services(request)
    key = (before.sha256, after.sha256)
    # Walking the domain twice takes seconds: once per pair of contents is enough.
    with opened.diff_lock:
        if key not in opened.diffs:
            opened.diffs[key] = RulesetDiffOut.model_validate(diff(rules, before, after, opened.engine).as_json())
    return opened.diffs[key]


def _read_session(request: Request) -> Iterator[Session]:
    with services(request).read_sessions() as session:
        yield session


async def _write_transaction(request: Request) -> Transaction:
    # The endpoint opens its one write transaction itself, so that BEGIN, the work and
    # COMMIT run in one worker thread before the response is sent. A session opened by
    # a dependency would hold SQLite's single write lock across FastAPI's thread hops,
    # and writers waiting for it would fill the thread pool the holder needs to finish.
    return services(request).write_sessions


def _access_token_accepted(request: Request, token: str) -> OpenIdProvider | None:
    """The provider, when this bearer token is a JWT and the provider's access tokens are accepted."""
    provider = services(request).sign_in
    if provider is None or provider.api_audience is None or not looks_like_jwt(token):
        return None
    return provider


def _principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    token = bearer_key(authorization)
    provider = _access_token_accepted(request, token)
    if provider is not None:
        try:
            return provider.integration(token)
        except SignInRefused as refused:  # its message names the check, never the token
            raise Unauthenticated(f"The access token is not accepted: {refused}.") from None
    # A bare connection, not a session: this runs before every API call.
    with services(request).database.connect() as connection:
        return authenticate(connection, authorization)


def _metrics_reader(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """A scraper with REITTI_METRICS_TOKEN, or a key whose role may read metrics (roles.METRICS)."""
    token = services(request).settings.metrics_token
    if token and authorization and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return
    _principal(request, authorization).require(*roles.METRICS)


def _key_lives(request: Request, key_id: int) -> bool:
    with services(request).database.connect() as connection:
        return key_is_live(connection, key_id)


async def _event_poster(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AsyncIterator[Principal]:
    """The caller of POST /v1/events: its key is looked up once per process, then remembered.

    A remembered key is checked again exactly wherever an answer depends on it: the writer
    checks, in the transaction that would store, that it is not revoked; and before any
    other error (a body that does not validate, an event the rules refuse) is answered to
    it, one indexed read confirms it still lives, so a revoked key gets 401, never a 422.
    The valid path, the busy one, pays nothing for this.
    """
    known = services(request).known_keys
    key = bearer_key(authorization)
    if _access_token_accepted(request, key) is not None:
        # Never remembered: each token is checked on arrival, its expiry with it.
        token_client = await run_in_threadpool(_principal, request, authorization)
        token_client.require(*roles.POST_EVENTS)
        yield token_client
        return
    principal = known.get(key)
    remembered = principal is not None
    if principal is None:
        principal = await run_in_threadpool(_principal, request, authorization)
        known.remember(key, principal)
    principal.require(*roles.POST_EVENTS)
    if not remembered:
        yield principal
        return
    try:
        yield principal
    except (RequestValidationError, ReittiError) as error:
        if isinstance(error, Unauthenticated) or await run_in_threadpool(_key_lives, request, principal.key_id):
            raise
        known.forget(principal.key_id)
        raise Unauthenticated("The API key is not valid or has been revoked.") from None


# The two below do no I/O: async, so FastAPI does not hand them to a worker thread.
async def _rules(request: Request) -> Rules:
    return services(request).rules


async def _engine(request: Request) -> RuleEngine:
    return services(request).engine


CUSTOMER_HEADER = "Reitti-Customer-Id"


async def _customer(
    request: Request,
    customer_id: Annotated[
        str | None,
        Header(
            alias=CUSTOMER_HEADER,
            min_length=1,  # as customer.id: an empty header names no one, and the schema says so
            max_length=128,
            description="Only the decisions of this customer (identity code, business id or opaque id). "
            "A header, not a query parameter, so that the code never lands in an access log.",
        ),
    ] = None,
) -> str | None:
    """The pseudonym of the customer asked for; the identity code itself goes no further than here."""
    if customer_id is None:
        return None
    try:
        check_identifier(customer_id)
    except InvalidIdentifier as error:  # its message never repeats the code
        raise InvalidQuery([FieldError(("header", CUSTOMER_HEADER), str(error))]) from None
    return pseudonymise(services(request).pseudonym_key, customer_id)


async def _required_customer(
    request: Request,
    customer_id: Annotated[
        str,
        Header(
            alias=CUSTOMER_HEADER,
            min_length=1,
            max_length=128,
            description="The customer (identity code, business id or opaque id). A header, not a query "
            "parameter, so that the code never lands in an access log.",
        ),
    ],
) -> str:
    """The pseudonym of the customer a request is about; the schema says the header is required."""
    pseudonym = await _customer(request, customer_id)
    assert pseudonym is not None, "a required header is never missing here"
    return pseudonym


# X-Road (Suomi.fi Data Exchange Layer) request headers kept with a decision for auditors, by the key
# they are kept under. X-Road-UserId names a person (often by identity code): only its pseudonym is kept.
X_ROAD_HEADERS = {
    "X-Road-Client": "client",
    "X-Road-Id": "id",
    "X-Road-Request-Id": "request_id",
    "X-Road-Issue": "issue",
}
X_ROAD_USER = "X-Road-UserId"
X_ROAD_LIMIT = 255


def x_road_kept(headers: Mapping[str, str], pseudonym_key: bytes) -> dict[str, str] | None:
    """A request's X-Road headers, as kept with its decision; None without any. 422 names a bad header."""
    kept: dict[str, str] = {}
    errors = []
    for header, name in (*X_ROAD_HEADERS.items(), (X_ROAD_USER, "user_pseudonym")):
        value = headers.get(header)
        if value is None:
            continue
        if header == X_ROAD_USER:
            if not value.strip() or len(value) > X_ROAD_LIMIT:
                errors.append(FieldError(("header", header), f"must be 1 to {X_ROAD_LIMIT} characters"))
            else:
                kept[name] = pseudonymise(pseudonym_key, value.strip())
            continue
        try:
            storable_text(value)
            # An X-Road member code is an organisation's business id, public and needed: only a
            # person's code is refused in the client's name; elsewhere business ids are refused too.
            personal_only = header == "X-Road-Client"
            if contains_personal_identity_code(value) if personal_only else contains_identity_code(value):
                raise ValueError("must not contain an identity code; send it only as customer.id")
        except ValueError as error:  # its message never repeats the value
            errors.append(FieldError(("header", header), str(error)))
            continue
        if len(value) > X_ROAD_LIMIT:
            errors.append(FieldError(("header", header), f"must be at most {X_ROAD_LIMIT} characters"))
            continue
        kept[name] = value
    if errors:
        raise InvalidQuery(errors)
    return kept or None


async def _x_road(request: Request) -> dict[str, str] | None:
    return x_road_kept(request.headers, services(request).pseudonym_key)


ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
XRoadDep = Annotated[dict[str, str] | None, Depends(_x_road)]
WriteTransactionDep = Annotated[Transaction, Depends(_write_transaction)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
RulesDep = Annotated[Rules, Depends(_rules)]
EngineDep = Annotated[RuleEngine, Depends(_engine)]
CustomerDep = Annotated[str | None, Depends(_customer)]
RequiredCustomerDep = Annotated[str, Depends(_required_customer)]
Filters = TypeVar("Filters", bound=DecisionFilters)


def with_customer(filters: Filters, pseudonym: str | None) -> Filters:
    """The filters with the customer of the header as its pseudonym.

    Every filter given must hold: with the header and a different customer_pseudonym both
    given, no decision is selected ("" is no pseudonym), rather than a 422 the schema cannot state.
    """
    if pseudonym is None:
        return filters
    if filters.customer_pseudonym not in (None, pseudonym):
        pseudonym = ""
    return filters.model_copy(update={"customer_pseudonym": pseudonym})


class Authorized:
    """A dependency: the caller, refused (403) unless its role is one of `roles` (named in app.access.roles)."""

    def __init__(self, allowed: roles.Roles) -> None:
        self.allowed = allowed

    def __call__(self, principal: PrincipalDep) -> Principal:
        principal.require(*self.allowed)
        return principal


class Reading:
    """A dependency: a reader of the decision log, refused (403) unless its role may read this."""

    def __init__(self, allowed: roles.Roles | None = None) -> None:
        self.allowed = allowed

    def __call__(self, principal: PrincipalDep, session: ReadSessionDep, transaction: WriteTransactionDep) -> Reader:
        if self.allowed is not None:
            principal.require(*self.allowed)
        return Reader(principal, session, transaction)


EventPosterDep = Annotated[Principal, Depends(_event_poster)]
AuditorDep = Annotated[Principal, Depends(Authorized(roles.AUDIT))]
# Any key but management's reads the decisions it may see; the scope is the queries', by principal.
ReaderDep = Annotated[Reader, Depends(Reading(roles.READ_DECISIONS))]
# Counts are aggregates: every key, management's too, within its scope.
StatsReaderDep = Annotated[Reader, Depends(Reading())]
ReportReaderDep = Annotated[Principal, Depends(Authorized(roles.COST_SHARING))]
AuditReaderDep = Annotated[Reader, Depends(Reading(roles.AUDIT))]
OverriderDep = Annotated[Principal, Depends(Authorized(roles.OVERRIDE))]
WorklistReaderDep = Annotated[Reader, Depends(Reading(roles.READ_WORKLIST))]
WorklistAnswererDep = Annotated[Principal, Depends(Authorized(roles.ANSWER_WORKLIST))]
WaitingTimesDep = Annotated[Principal, Depends(Authorized(roles.WAITING_TIMES))]
InterpretationsReaderDep = Annotated[Reader, Depends(Reading(roles.READ_INTERPRETATIONS))]
AdministratorDep = Annotated[Principal, Depends(Authorized(roles.ADMINISTER))]
MetricsReaderDep = Annotated[None, Depends(_metrics_reader)]
