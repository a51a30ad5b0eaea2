from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.models import AuditEvent
from governance import validation
from governance.models import (
    ApprovalRequest,
    Deployment,
    Rollout,
    RolloutMode,
    ValidationCheck,
    ValidationRun,
)
from registry.models import Stage
from registry.serializers import RejectUnknownFieldsMixin

# An object or null: generated clients must accept both.
NULLABLE_OBJECT = {"type": "object", "nullable": True}


class CheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValidationCheck
        fields = ["name", "status", "detail", "measured"]


class ValidationRunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name")
    version = serializers.CharField(source="version.version")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True,
                                         default=None)
    checks = CheckSerializer(many=True, read_only=True)

    class Meta:
        model = ValidationRun
        fields = ["id", "model", "version", "trigger", "status", "summary", "requested_by",
                  "created_at", "started_at", "finished_at", "checks"]


class DecisionSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApprovalRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name")
    version = serializers.CharField(source="version.version")
    requested_by = serializers.CharField(source="requested_by.username")
    decisions = DecisionSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()
    validation = serializers.SerializerMethodField()
    candidate_metrics = serializers.JSONField(source="version.metrics")
    production = serializers.SerializerMethodField()
    deployment = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = ["id", "model", "version", "from_stage", "to_stage", "kind", "status",
                  "status_reason", "requested_by", "reason", "approvals_required",
                  "approvals", "decisions", "validation", "candidate_metrics", "production",
                  "deployment", "created_at", "decided_at"]

    def get_approvals(self, obj) -> int:
        return sum(1 for d in obj.decisions.all() if d.decision == "approve")

    @extend_schema_field(NULLABLE_OBJECT)
    def get_validation(self, obj):
        run = obj.validation_run
        if run is None:
            return None
        return {"id": run.pk, "status": run.status, "summary": run.summary}

    @extend_schema_field(NULLABLE_OBJECT)
    def get_production(self, obj):
        production = self.context.get("production", {}).get(obj.version.model_id)
        if production is None or production.pk == obj.version_id:
            return None
        policy = self.context["policies"][obj.version.model_id]
        return {
            "version": production.version,
            "metrics": production.metrics,
            "comparison": validation.metrics_comparison(
                obj.version.metrics, production.metrics, policy),
        }

    @extend_schema_field(NULLABLE_OBJECT)
    def get_deployment(self, obj):
        deployment = getattr(obj, "deployment", None)
        if deployment is None:
            return None
        return {"id": deployment.pk, "status": deployment.status}


class ApprovedBySerializer(serializers.Serializer):
    by = serializers.CharField(source="approver.username")
    at = serializers.DateTimeField(source="created_at")
    comment = serializers.CharField()


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.CharField(source="version.version")
    replaced = serializers.CharField(source="replaced.version", allow_null=True, default=None)
    requested_by = serializers.CharField(source="requested_by.username")
    approved_by = ApprovedBySerializer(source="approvals", many=True, read_only=True,
                                       help_text="Each approval of its request, oldest first "
                                       "(empty for a move that needed none).")
    deployed_by = serializers.CharField(
        source="deployed_by.username",
        help_text="Who set it off: the approver who completed the request, or who moved it.")

    class Meta:
        model = Deployment
        fields = ["id", "model", "version", "from_stage", "to_stage", "replaced", "kind",
                  "status", "requested_by", "approved_by", "deployed_by", "request", "reason",
                  "plan", "error", "created_at", "started_at", "completed_at"]


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    model = serializers.CharField(source="model_name")
    before = serializers.SerializerMethodField()
    after = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["seq", "occurred_at", "actor", "action", "object_type", "object_id",
                  "object_repr", "model", "before", "after", "reason", "request_id",
                  "client_ip", "prev_hash", "hash"]

    @extend_schema_field(NULLABLE_OBJECT)
    def get_before(self, obj):
        return json.loads(obj.before) if obj.before else None

    @extend_schema_field(NULLABLE_OBJECT)
    def get_after(self, obj):
        return json.loads(obj.after) if obj.after else None


# --- input ------------------------------------------------------------------------------------


class TransitionInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    to_stage = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class DecisionInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000,
                                    default="")


class RollbackInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class TransitionOutputSerializer(serializers.Serializer):
    """What a transition started: an approval request, or a deployment."""

    stage = serializers.CharField()
    request = ApprovalRequestSerializer(allow_null=True)
    deployment = DeploymentSerializer(allow_null=True)


class RolloutSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    candidate = serializers.CharField(source="candidate.version")
    started_by = serializers.CharField(source="started_by.username")

    class Meta:
        model = Rollout
        fields = ["id", "model", "candidate", "mode", "steps", "step", "percent", "status",
                  "started_by", "reason", "created_at", "updated_at", "ended_at"]


class RolloutInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    version = serializers.CharField(max_length=64)
    mode = serializers.ChoiceField(choices=RolloutMode.choices)
    steps = serializers.ListField(child=serializers.IntegerField(), required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000,
                                   default="")


class RolloutAdvanceInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    percent = serializers.IntegerField(required=False, min_value=1, max_value=100)


# --- monitoring -------------------------------------------------------------------------------


