"""The application factory. `app.main:app` is the ASGI app; `create_app()` builds one.

Nothing happens at import time beyond building the app object: the rules, the engine,
the database and the pseudonym and checkpoint keys are opened by the lifespan and closed after it.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from app.access.oidc import provider_from
from app.access.throttle import LoginThrottle
from app.audit.checkpoints import CheckpointWriter
from app.audit.keys import ChainKeys, session_info
from app.config import Settings
from app.db import make_engine, make_sessions, refresh_sqlite_statistics
from app.decisions.storing import ProcessWriter, StoringProcess, can_store_apart
from app.decisions.writer import DecisionWriter, StoringHere
from app.rules.input_domain import loaded_engine
from app.rules.loader import load_rules
from app.web.api import audit, decisions, events, interpretations, operations, registry, reports, webhooks, worklists
from app.web.deps import Services
from app.web.docs import install_docs
from app.web.metrics import CountRequests, Metrics
from app.web.middleware import BodyLimit, RulesetHeader
from app.web.problems import document_problem_media_type, install_error_handlers
from app.web.ui.site import install_ui
from app.webhooks.delivery import Deliverer

API_DESCRIPTION = (
    "Routes jobseeker and employer events of the Oulu employment area by its plan for "
    "organising employment services. Every decision names its handler, provider, "
    "customership, the plan sections it rests on, and the rule and rule set that made it."
)


def _settle_garbage_collector() -> None:
    """Keep the collector's pauses out of the latency tail.

    What is loaded at start (rules, engine, registries, pydantic and SQLAlchemy caches) lives
    as long as the process; frozen, full collections no longer walk it. Young collections
    run every 20,000 allocations instead of 700, and full ones a tenth as often. Measured
    under wrk at 32 connections (bench/http.py), POST /v1/events' p99 went from about
    105 ms to 60 ms, its CPU a request from 1.35 to 1.2 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


class Reitti(FastAPI):
    """FastAPI with POST /v1/events' fast path in front of its whole middleware stack (app/web/api/events.py)."""

    def build_middleware_stack(self) -> ASGIApp:
        return events.PostEventFastPath(super().build_middleware_stack(), fastapi_app=self)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the lifespan opens what it needs and closes it."""
    settings = settings or Settings.from_env()
    sign_in = provider_from(settings)  # refuses sign-in settings that cannot work, before anything opens

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rules = load_rules(settings.rules_dir, require_signed=settings.require_signed_rules)
        engine = loaded_engine(rules, settings.cache_dir)
        database = make_engine(settings.database_url)
        refresh_sqlite_statistics(database)
        chain_keys = ChainKeys.from_settings(settings)
        read_sessions, write_sessions = make_sessions(database, info=session_info(chain_keys))
        # The decisions' transactions run beside the event loop, in a process of their own (app/decisions/storing.py).
        apart = settings.storing_process and can_store_apart(settings.database_url)
        writer = (
            ProcessWriter(StoringProcess(settings.database_url, chain_keys))
            if apart
            else DecisionWriter(StoringHere(write_sessions))
        )
        metrics.watch(read_sessions)
        checkpoint_key = settings.resolve_checkpoint_key()
        kept = settings.checkpoint_dir
        checkpointer = (
            CheckpointWriter(read_sessions, checkpoint_key, kept, settings.checkpoint_every) if kept else None
        )
        app.state.services = Services(
            settings=settings,
            rules=rules,
            engine=engine,
            database=database,
            read_sessions=read_sessions,
            write_sessions=write_sessions,
            writer=writer,
            pseudonym_key=settings.resolve_pseudonym_key(),
            checkpoint_key=checkpoint_key,
            chain_keys=chain_keys,
            session_secret=settings.resolve_session_secret(),
            login_throttle=LoginThrottle(delay=settings.login_delay_seconds),
            sign_in=sign_in,
        )
        # Every worker delivers webhooks: they share the outbox through the database.
        deliverer = Deliverer(read_sessions, write_sessions, settings)
        _settle_garbage_collector()
        try:
            yield
        finally:
            deliverer.close()
            services: Services = app.state.services
            app.state.services = None
            services.writer.close()
            if checkpointer is not None:  # after the last decisions are stored: the head the service leaves
                checkpointer.close()
            engine.close()
            database.dispose()

    # /docs is ours (app/web/docs.py): Swagger UI from this server, not a CDN; no ReDoc, which is one.
    app = Reitti(
        title="Reitti", version="1", description=API_DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.services = None  # until the lifespan opens them
    metrics = Metrics()
    app.state.metrics = metrics
    install_error_handlers(app)
    # In this order, the order of /openapi.json's paths.
    for endpoints in (events, decisions, worklists, audit, registry, interpretations, reports, webhooks):
        app.include_router(endpoints.router)
    app.include_router(operations.router)
    install_ui(app, identity_provider=sign_in.issuer if sign_in else None)
    install_docs(app)
    document_problem_media_type(app)
    audit.document_checkpoint_as_one_parameter(app)
    app.add_middleware(RulesetHeader, fastapi_app=app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(CountRequests, metrics=metrics)  # outermost: a 413 is counted too
    return app


app = create_app()
