"""What the admin's home page shows the person logged in: what waits for them, and how the
fleet is doing. Every figure comes from a selector, scoped to the person."""

from __future__ import annotations

from django.utils import timezone

from core import roles
from governance import selectors as governance
from monitoring import selectors as monitoring
from monitoring.models import SEVERITY_ORDER

SEVERITY_NAMES = {rank: name for name, rank in SEVERITY_ORDER.items()}
ALERTS_SHOWN = 6
OLD_REQUEST_DAYS = 2  # a request waiting longer is marked, so it is not forgotten


def build(user) -> dict:
    now = timezone.now()
    to_decide = governance.requests_to_decide(user=user)
    production = list(monitoring.production_overview(user=user))
    for version in production:
        version.worst_severity = SEVERITY_NAMES.get(version.worst_severity_rank, "")
    return {
        "to_decide": [{"request": request, "age": now - request.created_at,
                       "old": (now - request.created_at).days >= OLD_REQUEST_DAYS}
                      for request in to_decide],
        "alert_counts": monitoring.active_alert_counts(user=user),
        "alerts": list(monitoring.active_alerts(user=user)[:ALERTS_SHOWN]),
        "production": production,
        "deployments": governance.recent_deployments(user=user),
        "verification": governance.last_chain_verification(user=user),
        "can_import": roles.has_role(user, roles.ADMIN_ROLES),
    }
