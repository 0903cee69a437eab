"""What endpoints and pages depend on, declared once: sessions, the caller, the rules, the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.access.identity import InvalidIdentifier, check_identifier, pseudonymise
from app.access.keys import KnownKeys, Principal, authenticate, bearer_key
from app.errors import FieldError, InvalidQuery
from app.rules.engine import RuleEngine
from app.rules.model import Rules
from app.schemas import (
    DecisionFilters,
)

log = logging.getLogger("reitti")


WriteTransaction = Callable[[], AbstractContextManager[Session]]


def _read_session(request: Request) -> Iterator[Session]:
    with request.app.state.read_sessions() as session:
        yield session


async def _write_transaction(request: Request) -> WriteTransaction:
    # The endpoint opens its one write transaction itself, so that BEGIN, the work and
    # COMMIT run in one worker thread before the response is sent. A session opened by
    # a dependency would hold SQLite's single write lock across FastAPI's thread hops,
    # and writers waiting for it would fill the thread pool the holder needs to finish.
    factory: WriteTransaction = request.app.state.write_sessions
    return factory


def _principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    # A bare connection, not a session: this runs before every API call.
    with request.app.state.database.connect() as connection:
        return authenticate(connection, authorization)


async def event_poster(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of POST /v1/events: its key is looked up once per process, then remembered.

    The writer checks again, in the transaction that would store, that the key is not revoked.
    """
    known: KnownKeys = request.app.state.known_keys
    key = bearer_key(authorization)
    principal = known.get(key)
    if principal is None:
        principal = await run_in_threadpool(_principal, request, authorization)
        known.remember(key, principal)
    return principal


# The two below do no I/O: async, so FastAPI does not hand them to a worker thread.
async def _rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


async def _engine(request: Request) -> RuleEngine:
    engine: RuleEngine = request.app.state.engine
    return engine


CUSTOMER_HEADER = "Reitti-Customer-Id"


async def _customer(
    request: Request,
    customer_id: Annotated[
        str | None,
        Header(
            alias=CUSTOMER_HEADER,
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
    pseudonym_key: bytes = request.app.state.pseudonym_key
    return pseudonymise(pseudonym_key, customer_id)


ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]


WriteTransactionDep = Annotated[WriteTransaction, Depends(_write_transaction)]


PrincipalDep = Annotated[Principal, Depends(_principal)]


RulesDep = Annotated[Rules, Depends(_rules)]


EngineDep = Annotated[RuleEngine, Depends(_engine)]


CustomerDep = Annotated[str | None, Depends(_customer)]


Filters = TypeVar("Filters", bound=DecisionFilters)


def with_customer(filters: Filters, pseudonym: str | None) -> Filters:
    """The filters with the customer of the header as its pseudonym."""
    if pseudonym is None:
        return filters
    if filters.customer_pseudonym is not None:
        message = "give the customer either here or as customer_pseudonym, not both"
        raise InvalidQuery([FieldError(("header", CUSTOMER_HEADER), message)])
    return filters.model_copy(update={"customer_pseudonym": pseudonym})
