"""The service with one more endpoint: the stack's own ceiling, for the HTTP benchmark.

`POST /bench/ceiling` takes the same body as `POST /v1/events`, validates it with the same
model and inserts one row into a table of its own, in a transaction of its own: FastAPI,
uvicorn, pydantic and SQLAlchemy with none of Reitti's work. Served in the same process as
the real endpoint (`uvicorn bench.ceiling:app`), so that the two are measured side by side.
Never part of the shipped app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from app.main import create_app
from app.schemas import EventIn

bench_metadata = MetaData()
ceiling_rows = Table(
    "bench_ceiling",
    bench_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(100), nullable=False),
)


def with_ceiling(app: FastAPI) -> FastAPI:
    """Add the ceiling endpoint (and its table) to an app."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            with app.state.services.write_sessions() as session:
                bench_metadata.create_all(session.connection())
            yield

    app.router.lifespan_context = lifespan

    @app.post("/bench/ceiling", status_code=201, include_in_schema=False)
    def ceiling(body: EventIn, request: Request) -> dict[str, str]:
        with request.app.state.services.write_sessions() as session:
            session.execute(insert(ceiling_rows).values(event_id=body.event_id, event_type=body.event_type))
        return {"event_id": body.event_id}

    return app


app = with_ceiling(create_app())
