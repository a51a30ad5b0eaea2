"""What the monitoring API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from core.limits import MAX_INT
from monitoring.models import Alert, AlertMetric, AlertRule, MonitoringRun, Severity
from registry.serializers import RejectUnknownFieldsMixin


class AlertRuleSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", allow_null=True, default=None)

    class Meta:
        model = AlertRule
        fields = ["id", "model", "metric", "statistic", "threshold", "severity",
                  "window_minutes", "min_rows", "resolve_after_runs", "enabled", "updated_at"]


class AlertRuleInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """What a rule is made of; unspecified fields keep their value (or the default)."""

    model = serializers.CharField(required=False, allow_null=True,
                                  help_text="A model's name; empty for a project default.")
    metric = serializers.ChoiceField(choices=AlertMetric.choices, required=False)
    statistic = serializers.CharField(required=False, allow_blank=True, max_length=20)
    threshold = serializers.FloatField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    window_minutes = serializers.IntegerField(required=False, min_value=1, max_value=60 * 24 * 31)
    min_rows = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT)
    resolve_after_runs = serializers.IntegerField(required=False, min_value=1, max_value=100)
    enabled = serializers.BooleanField(required=False)


class AlertSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    rule = AlertRuleSerializer()
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True,
                                            default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", allow_null=True,
                                        default=None)

    class Meta:
        model = Alert
        fields = ["id", "model", "status", "severity", "title", "value", "threshold", "count",
                  "first_seen", "last_seen", "evidence", "rule", "acknowledged_by",
                  "acknowledged_at", "resolved_by", "resolved_at", "resolution"]


class AlertActionInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=2000)


class MonitoringRunSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="version.version")

    class Meta:
        model = MonitoringRun
        fields = ["id", "version", "route", "status", "summary", "requests", "duration_ms",
                  "created_at", "figures"]
