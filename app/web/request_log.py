"""What the logs may say about a request: its path, never its query, never a segment that could carry a code."""

from __future__ import annotations

import logging
import re

from app.identity_codes import contains_identity_code

# A path segment the logs may keep as it is: a plain name or id, not a person's code.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~:-]{1,64}")


def loggable_path(full_path: str) -> str:
    """The request's path as the access log keeps it: no query, and no segment that could carry a code.

    Queries hold filters and a path may hold any id a client made up; an identity code in
    either would otherwise stay in every log the service writes.
    """
    path = full_path.split("?", 1)[0]
    return "/".join(
        part if not part or (_PLAIN_SEGMENT.fullmatch(part) and not contains_identity_code(part)) else "(redacted)"
        for part in path.split("/")
    )


class PathOnly(logging.Filter):
    """Rewrite uvicorn's access-log records to the loggable path."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its path made loggable."""
        # uvicorn.access logs (client, method, path with query, HTTP version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], loggable_path(args[2]), args[3], args[4])
        return True
