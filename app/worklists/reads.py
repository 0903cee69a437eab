"""The worklists and the register as people read them, each read logged first (as app/decisions/reads.py does)."""

from __future__ import annotations

from collections.abc import Collection

from app.audit import access_log
from app.decisions.reads import Reader
from app.errors import NotFound
from app.models import AccessAction
from app.schemas import CustomerRegisterOut, WorklistPage, WorklistQuery
from app.worklists import customers, items


def read_worklist(reader: Reader, unit: str, query: WorklistQuery, *, known_units: Collection[str]) -> WorklistPage:
    """A page of a unit's open items; the read is logged with the unit and filters, a refused one too."""
    asked = {"unit": unit, **query.model_dump(mode="json", exclude_none=True)}
    try:
        page = items.worklist(reader.session, reader.principal, unit, query, known_units=known_units)
    except NotFound:
        access_log.log_read(reader.transaction, reader.principal, AccessAction.worklist, rows=0, filters=asked)
        raise
    access_log.log_read(
        reader.transaction, reader.principal, AccessAction.worklist, rows=len(page.items), filters=asked
    )
    return page


def read_customership(reader: Reader, pseudonym: str) -> CustomerRegisterOut:
    """A customer's register; the read is logged by the customer's pseudonym, a refused one too."""
    asked = {"customer_pseudonym": pseudonym}
    try:
        found = customers.customer_register(reader.session, reader.principal, pseudonym)
    except NotFound:
        access_log.log_read(reader.transaction, reader.principal, AccessAction.customership, rows=0, filters=asked)
        raise
    rows = len(found.history)
    access_log.log_read(reader.transaction, reader.principal, AccessAction.customership, rows=rows, filters=asked)
    return found
