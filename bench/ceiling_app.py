"""The stack's own ceiling for one request: validate the same body, insert one row, answer JSON —
an async endpoint, nothing else.

Copied from the bench folder shared beside the repository (the yardstick issue 17 names; CI
clones only this repository, so it lives here too). Unchanged but for one addition: with `CEILING_DATABASE_URL` set
to a PostgreSQL URL it inserts there instead (psycopg, autocommit: one round trip a request, as the
SQLite insert is one statement), so that the service on PostgreSQL has a ceiling on PostgreSQL.
Run with the project's own environment so that FastAPI, pydantic and uvicorn are the same versions.
"""

import datetime
import json
import os
import sqlite3
import uuid
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI()
_url = os.environ.get("CEILING_DATABASE_URL", "")
_db: Any
if _url.startswith("postgresql"):
    import psycopg

    _db = psycopg.connect(_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    try:
        _db.execute("create table if not exists d(id text primary key, event_id text unique, body text, at text)")
    except psycopg.errors.UniqueViolation:
        pass  # two workers created it at once
    _insert = "insert into d values (%s,%s,%s,%s)"
else:
    _db = sqlite3.connect(os.environ.get("CEILING_DB", "ceiling.db"), check_same_thread=False, isolation_level=None)
    _db.execute("pragma journal_mode=wal")
    _db.execute("pragma synchronous=normal")
    _db.execute("create table if not exists d(id text primary key, event_id text unique, body text, at text)")
    _insert = "insert into d values (?,?,?,?)"


class Customer(BaseModel):
    type: Literal["jobseeker", "employer"]
    id: str
    home_municipality: str = Field(pattern=r"^\d{3}$")
    language: str | None = None


class Event(BaseModel):
    event_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    event_type: str
    occurred_at: datetime.datetime
    customer: Customer
    attributes: dict = {}  # type: ignore[type-arg]


@app.post("/v1/events", status_code=201)
async def post(ev: Event) -> dict:  # type: ignore[type-arg]
    did = str(uuid.uuid4())
    decision = {"decision_id": did, "event_id": ev.event_id, "handler": {"unit": "local-244"}}
    _db.execute(_insert, (did, ev.event_id, json.dumps(decision), datetime.datetime.now(datetime.UTC).isoformat()))
    return decision
