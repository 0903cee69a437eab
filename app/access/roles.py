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
# The staff of one unit (Principal.unit): a coach is the staff of its municipality's local unit.
STAFF: Roles = (Role.coach, Role.unit)
# A unit's worklist: its own staff, and auditors and admins any unit's.
READ_WORKLIST: Roles = (*STAFF, Role.auditor, Role.admin)
# Taking or returning an item of the unit's own worklist.
ANSWER_WORKLIST: Roles = STAFF
# Waiting times by unit, aggregates for the management reports.
WAITING_TIMES: Roles = (Role.auditor, Role.admin, Role.management)
# Recording that a decision was overridden in practice.
OVERRIDE: Roles = (Role.coach, Role.admin)
# The audit chain, decisions' links, the access log, rule-set diffs, the log search and its export.
AUDIT: Roles = (Role.auditor, Role.admin)
# Reading decisions one by one (a decision, its overrides, pages of the log): every role but
# management, which reads aggregates only (stats and reports).
READ_DECISIONS: Roles = (Role.integration, Role.coach, Role.unit, Role.auditor, Role.admin)
# The cost-sharing report: a coach reads their own municipality's line only (app.reports.cost_sharing).
COST_SHARING: Roles = (Role.management, Role.auditor, Role.admin, Role.coach)
# The dashboard of the whole area's figures.
DASHBOARD: Roles = (Role.management, Role.auditor, Role.admin)
# The interpretations register: which readings of the plan decide the most cases. For auditors,
# admins and the area's management (counts only, no decision).
READ_INTERPRETATIONS: Roles = (*AUDIT, Role.management)
# API keys, UI accounts and webhook subscriptions (their secrets, their delivery log).
ADMINISTER: Roles = (Role.admin,)
# GET /metrics: the operator's view of the service (an admin key; or REITTI_METRICS_TOKEN for a scraper).
METRICS: Roles = (Role.admin,)
# What the identity provider's claims may make someone (app/access/claims.py): a person signing in
# one of these, an integration presenting the provider's access token the integration role.
PEOPLE: Roles = (Role.coach, Role.unit, Role.auditor, Role.admin, Role.management)
TOKEN_CLIENT: Role = Role.integration
# People: their reads of decisions go into the access log (integrations reading what they posted do not,
# but for LOGGED_FOR_EVERYONE).
LOGGED_READERS: frozenset[Role] = frozenset({Role.coach, Role.unit, Role.auditor, Role.admin, Role.management})
# What is logged whoever reads it: overrides carry coaches' free texts about customers.
LOGGED_FOR_EVERYONE: frozenset[AccessAction] = frozenset({AccessAction.overrides})
