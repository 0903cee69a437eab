"""The HTTP API of docs/CONTRACT.md: one module per resource."""

from __future__ import annotations

from app.web.api.schemas import problem_responses

# Every API operation may answer these; each endpoint adds its own.
EVERY_OPERATION = problem_responses(401, 403, 422, 500, 503)
