from __future__ import annotations

import django_filters

from monitoring.models import Alert, AlertMetric, AlertRule, AlertStatus, Severity


class AlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    model = django_filters.CharFilter(field_name="model__name")
    metric = django_filters.ChoiceFilter(field_name="rule__metric", choices=AlertMetric.choices)

    class Meta:
        model = Alert
        fields = ["status", "severity", "model", "metric"]


class AlertRuleFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model__name",
                                      help_text="A model's own rules; `default` for the "
                                      "project defaults.", method="filter_model")
    metric = django_filters.ChoiceFilter(choices=AlertMetric.choices)

    class Meta:
        model = AlertRule
        fields = ["model", "metric"]

    def filter_model(self, queryset, name, value):
        if value == "default":
            return queryset.filter(model__isnull=True)
        return queryset.filter(model__name=value)
