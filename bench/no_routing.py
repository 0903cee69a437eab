"""The benchmark's service (bench.ceiling:app) without the register and the worklists, for bench/worklists.py.

`record_routing` is what the writer's batch calls to put each new decision in the customership
register and on the units' worklists; here it does nothing, so that POST /v1/events can be
measured with and without it in one run. Never part of the shipped app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.decisions import store
from app.webhooks.outbox import Announcement


def _no_routing(session: Session, decisions: Sequence[Mapping[str, Any]]) -> list[Announcement]:
    """Nothing: the decision is stored and chained, and nothing else (no handover to announce)."""
    return []


store.record_routing = _no_routing  # type: ignore[assignment]

from bench.ceiling import app  # noqa: E402  (after the patch: the app's writer stores through it)

__all__ = ["app"]
