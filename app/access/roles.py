"""Who may do what, named once: the API's and the UI's dependencies both read these.

tests/web/test_access_matrix.py holds every route of both against them.
"""

from __future__ import annotations

from typing import TypeAlias

from app.models import AccessAction, Role

Roles: TypeAlias = tuple[Role, ...]

# A client system routes events over the API; a coach routes them through the UI's form.
POST_EVENTS: Roles = (Role.integration,)
ROUTE_IN_UI: Roles = (Role.coach,)
# Recording that a decision was overridden in practice.
OVERRIDE: Roles = (Role.coach, Role.admin)
# The audit chain, decisions' links, the access log, rule-set diffs, the log search and its export.
AUDIT: Roles = (Role.auditor, Role.admin)
# API keys, UI accounts and webhook subscriptions (their secrets, their delivery log).
ADMINISTER: Roles = (Role.admin,)
# GET /metrics: the operator's view of the service (an admin key; or REITTI_METRICS_TOKEN for a scraper).
METRICS: Roles = (Role.admin,)
# People: their reads of decisions go into the access log (integrations reading what they posted do not,
# but for LOGGED_FOR_EVERYONE).
LOGGED_READERS: frozenset[Role] = frozenset({Role.coach, Role.auditor, Role.admin})
# What is logged whoever reads it: overrides carry coaches' free texts about customers.
LOGGED_FOR_EVERYONE: frozenset[AccessAction] = frozenset({AccessAction.overrides})
