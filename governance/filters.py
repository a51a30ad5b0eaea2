import django_filters

from core.filters import DateTimeFilter
from core.models import AuditEvent
from governance.models import (
    ApprovalRequest,
    Deployment,
    DeploymentStatus,
    RequestStatus,
)
from registry.models import Stage


class ApprovalRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RequestStatus.choices)
    model = django_filters.CharFilter(field_name="version__model__name")
    to_stage = django_filters.ChoiceFilter(choices=Stage.choices)
    requested_by = django_filters.CharFilter(field_name="requested_by__username")

    class Meta:
        model = ApprovalRequest
        fields = ["status", "model", "to_stage", "requested_by"]


class DeploymentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeploymentStatus.choices)
    model = django_filters.CharFilter(field_name="model__name")
    to_stage = django_filters.ChoiceFilter(choices=Stage.choices)
    requested_by = django_filters.CharFilter(field_name="requested_by__username")
    deployed_by = django_filters.CharFilter(field_name="deployed_by__username")

    class Meta:
        model = Deployment
        fields = ["status", "model", "to_stage", "requested_by", "deployed_by"]


class AuditEventFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model_name")
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter(method="filter_action",
                                       help_text="An action, or a prefix ending in '.' "
                                       "(e.g. `deployment.`).")
    since = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="occurred_at", lookup_expr="lt", end_of_day=True)
    request_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = ["model", "actor", "action", "since", "until", "request_id"]

    def filter_action(self, queryset, name, value):
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)


