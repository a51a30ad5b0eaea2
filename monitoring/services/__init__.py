"""Monitoring's services, one module per family: alert rules, passes, alerts, deliveries.

A pass reads a version's traffic (predictions.traffic.window), computes its figures
(monitoring.statistics) against the version's reference profile (governance), and judges
every rule in one transaction. An alert is one per rule and model; its deliveries (e-mail,
webhooks) are rows sent after commit, retried with backoff, claimed by compare-and-set.
Retention deletes the prediction logs older than PREDICTION_LOG_RETENTION_DAYS, in chunks.
"""

from monitoring.services.alert_rules import (
    DEFAULT_RULES,
    DRIFT_STATISTICS,
    PERFORMANCE_METRICS,
    RULE_FIELDS,
    alert_rule_save,
    check_rule,
    effective_rules,
    ensure_default_rules,
)
from monitoring.services.alerts import (
    alert_acknowledge,
    alert_resolve,
    integrity_alert_sync,
)
from monitoring.services.deliveries import deliveries_due, delivery_attempt, webhook_save
from monitoring.services.passes import models_to_monitor, monitored_versions, monitoring_pass
from monitoring.services.retention import largest_window_minutes, prediction_logs_prune
from monitoring.services.reviews import (
    review_alert_resolve,
    review_alert_sync,
    review_overdue_sweep,
)

__all__ = [
    "DEFAULT_RULES", "DRIFT_STATISTICS", "PERFORMANCE_METRICS", "RULE_FIELDS", "alert_acknowledge",
    "alert_resolve", "alert_rule_save", "check_rule", "deliveries_due", "delivery_attempt",
    "effective_rules", "ensure_default_rules", "integrity_alert_sync", "largest_window_minutes",
    "models_to_monitor", "monitored_versions", "monitoring_pass", "prediction_logs_prune",
    "review_alert_resolve", "review_alert_sync", "review_overdue_sweep", "webhook_save",
]
