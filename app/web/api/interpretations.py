"""The interpretations register over HTTP: JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from app.decisions.interpretations import read_register, register_csv
from app.schemas import Texts
from app.web.api import EVERY_OPERATION
from app.web.api.registry import version_of
from app.web.api.schemas import InterpretationOut, InterpretationsOut, NoteOut, problem_responses
from app.web.deps import InterpretationsReaderDep, RulesDep

router = APIRouter(responses=EVERY_OPERATION)


@router.get(
    "/v1/interpretations",
    tags=["rules"],
    response_model=InterpretationsOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The register; with `Accept: text/csv` as CSV"},
        **problem_responses(404),
    },
)
def interpretations_register(
    reader: InterpretationsReaderDep,
    rules: RulesDep,
    since: Annotated[date | None, Query(description="the first Finnish day counted")] = None,
    until: Annotated[date | None, Query(description="the last Finnish day counted")] = None,
    ruleset: Annotated[str | None, Query(description="one version; default: every version")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> InterpretationsOut | Response:
    """Every rule and definition that reads the plan, by the decisions it made, with the owner's open question."""
    if ruleset is not None:
        version_of(rules, ruleset)
    rows = read_register(reader, rules, since=since, until=until, version=ruleset)
    if accept is not None and "text/csv" in accept:
        return Response(
            register_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="interpretations.csv"'},
        )
    return InterpretationsOut(
        since=since,
        until=until,
        items=[
            InterpretationOut(
                version=row.interpretation.version,
                kind=row.interpretation.kind,
                id=row.interpretation.id,
                decisions=row.decisions,
                basis=list(row.interpretation.basis),
                notes=[NoteOut(kind=n.kind, fi=n.text.fi, en=n.text.en) for n in row.interpretation.notes],
                open_question=Texts(fi=q.text.fi, en=q.text.en) if (q := row.interpretation.question) else None,
            )
            for row in rows
        ],
    )
