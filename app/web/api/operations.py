"""Health and readiness for the operator, no key needed; metrics, with a key or the metrics token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.web.api.schemas import Health, problem_responses
from app.web.deps import MetricsReaderDep, services

# Health and readiness: no key, no problem documents beyond their own.
router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health, "description": "Not ready"}})
def readyz(request: Request) -> JSONResponse:
    """The database answers and the rules are loaded."""
    opened = request.app.state.services  # None outside the lifespan: nothing is loaded or open
    checks = {"rules": "ok" if opened is not None else "not loaded"}
    try:
        with services(request).write_sessions() as session:
            session.execute(text("SELECT 1 FROM decisions WHERE 1 = 0"))
            if session.get_bind().dialect.name == "sqlite":
                # SQLite fails by turning unwritable (disk full, read-only mount) while reads
                # go on: rewrite the header's user_version with its own value as a write probe.
                version = int(session.execute(text("PRAGMA user_version")).scalar_one())
                session.execute(text(f"PRAGMA user_version = {version}"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable ({type(error).__name__})"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus' text format"},
        **problem_responses(401, 403),
    },
)
def metrics(request: Request, reader: MetricsReaderDep) -> Response:
    """Requests by route and status (this worker's), decisions by rule set, the webhook outbox's backlog."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
