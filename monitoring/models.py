"""Monitoring: each pass over a served version's traffic, the rules that judge it, the alerts
they raise, and where the alerts are sent. (Tables keep the names they had in governance.)"""

from django.conf import settings
from django.db import models


class RunStatusMonitoring(models.TextChoices):
    OK = "ok"
    ALERTING = "alerting"
    NO_DATA = "no_data"
    FAILED = "failed"


class MonitoringRun(models.Model):
    """One monitoring pass over one version's recent traffic.

    `figures` holds, per window (in minutes, as text), what was computed over it:
    {"60": {"volume": {...}, "drift": {"features": {name: {...}}, "predictions": {...}}},
     "1440": {"performance": {...}}, "15": {"latency": {...}, "errors": {...}}}.
    """

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="monitoring_runs")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT,
                                related_name="monitoring_runs")
    route = models.CharField(max_length=12)  # production, canary, shadow
    status = models.CharField(max_length=10, choices=RunStatusMonitoring.choices)
    figures = models.JSONField(default=dict)
    summary = models.CharField(max_length=500, blank=True)
    requests = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "governance_monitoringrun"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "created_at"], name="monrun_model_time_idx")]

    def __str__(self) -> str:
        return f"monitoring of {self.version} at {self.created_at:%Y-%m-%d %H:%M}: {self.status}"


class AlertMetric(models.TextChoices):
    FEATURE_DRIFT = "feature_drift", "feature drift"
    PREDICTION_DRIFT = "prediction_drift", "prediction drift"
    PERFORMANCE_DROP = "performance_drop", "live performance drop"
    LATENCY_P99 = "latency_p99", "p99 latency (ms)"
    ERROR_RATE = "error_rate", "error rate"
    # Not judged by monitoring passes: opened when a file fails its sha256 check.
    INTEGRITY = "integrity", "artifact integrity"
    # Not judged by monitoring passes: opened by the hourly sweep for a production version
    # past its review date (monitoring/services/reviews.py), closed by a recorded review.
    REVIEW_OVERDUE = "review_overdue", "review overdue"


# Alerts that a monitoring pass neither judges from traffic nor retires: their own sweeps do.
NOT_FROM_TRAFFIC = (AlertMetric.INTEGRITY, AlertMetric.REVIEW_OVERDUE)


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertRule(models.Model):
    """When to raise an alert: a project default (model empty) or one model's own rule.

    A model's rule replaces the project default with the same metric and statistic; a
    disabled model rule switches that default off for the model. Drift rules alarm on an
    effect size (PSI, the KS statistic, the Jensen-Shannon distance), never on a p-value
    alone: a KS rule also needs p < 0.01, so that a small window's noise stays quiet.
    """

    model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="alert_rules",
                              help_text="Empty for a project default.")
    metric = models.CharField(max_length=20, choices=AlertMetric.choices)
    statistic = models.CharField(
        max_length=20, blank=True,
        help_text="Drift: psi, ks or js. Performance: the metric (accuracy, precision, "
        "recall, f1_score, auc_roc, mae, rmse). Empty otherwise.")
    threshold = models.FloatField(
        help_text="Alert above this: a PSI, KS statistic or JS distance; a drop in metric "
        "points (0.05 = 5 points, or an increase for mae/rmse); milliseconds; a fraction.")
    severity = models.CharField(max_length=10, choices=Severity.choices,
                                default=Severity.WARNING)
    window_minutes = models.PositiveIntegerField(default=60)
    min_rows = models.PositiveIntegerField(
        default=100, help_text="Fewer rows (drift), labelled rows (performance) or requests "
        "(latency, errors) in the window: not judged.")
    resolve_after_runs = models.PositiveSmallIntegerField(
        default=3, help_text="Resolve the alert by itself after this many clear passes.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "governance_alertrule"
        ordering = ["model__name", "metric", "statistic"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "statistic"],
                                    condition=models.Q(model__isnull=True),
                                    name="alertrule_one_default_per_metric"),
            models.UniqueConstraint(fields=["model", "metric", "statistic"],
                                    condition=models.Q(model__isnull=False),
                                    name="alertrule_one_per_model_metric"),
            models.CheckConstraint(condition=models.Q(window_minutes__gte=1),
                                   name="alertrule_window_positive"),
            models.CheckConstraint(condition=models.Q(resolve_after_runs__gte=1),
                                   name="alertrule_resolve_after_positive"),
        ]

    def __str__(self) -> str:
        scope = self.model.name if self.model_id else "default"
        what = f"{self.get_metric_display()}{f' ({self.statistic})' if self.statistic else ''}"
        return f"{scope}: {what} > {self.threshold:g}"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ACTIVE_ALERT = models.Q(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])


class Alert(models.Model):
    """One real problem: a rule that holds for a model. While it is open or acknowledged,
    later passes update it (count, last seen, latest value, evidence) instead of adding
    another; it resolves by hand, or by itself after the rule's clear passes."""

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                              related_name="alerts")
    status = models.CharField(max_length=15, choices=AlertStatus.choices,
                              default=AlertStatus.OPEN, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=300)
    value = models.FloatField()
    threshold = models.FloatField()
    evidence = models.JSONField(default=dict)
    count = models.PositiveIntegerField(default=1)
    clear_runs = models.PositiveSmallIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "governance_alert"
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "model"], condition=ACTIVE_ALERT,
                                    name="alert_one_active_per_rule_and_model"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model.name}: {self.title} ({self.status})"


class Webhook(models.Model):
    """Where alert notifications are POSTed, signed with HMAC-SHA256 of the body."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="Shared with the receiver, who "
                              "checks the X-Mgov-Signature header with it.")
    model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="webhooks",
                              help_text="Empty: alerts of every model.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices,
                                    default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "governance_webhook"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class AlertDelivery(models.Model):
    """One notification of one alert event to one place, kept until it is sent (or given
    up after the retries): a delivery is never silently lost."""

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="deliveries")
    event = models.CharField(max_length=20)  # opened, escalated, resolved
    channel = models.CharField(max_length=10)  # email, webhook
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="deliveries")
    target = models.CharField(max_length=500)  # an address or the webhook's URL
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "governance_alertdelivery"
        ordering = ["-created_at", "-id"]
        # Once per e-mail address, and once per webhook: two webhooks may share a URL (each
        # with its own secret, model and severity), and each gets its own delivery.
        constraints = [
            models.UniqueConstraint(fields=["alert", "event", "channel", "target"],
                                    condition=models.Q(webhook__isnull=True),
                                    name="alertdelivery_once_per_address"),
            models.UniqueConstraint(fields=["alert", "event", "webhook"],
                                    condition=models.Q(webhook__isnull=False),
                                    name="alertdelivery_once_per_webhook"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} of alert #{self.alert_id} to {self.target}"
