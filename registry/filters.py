from __future__ import annotations

import math

import django_filters
from rest_framework.exceptions import ValidationError

from core.filters import DateTimeFilter
from registry.metadata import METRIC_NAME_RE
from registry.models import Framework, ModelVersion, RegisteredModel, Stage, TaskType


def _tag_filter(queryset, name, value):
    return queryset.filter(tags__has_tag=value)


def _metric_bounds(param: str, value: str) -> list[tuple[str, float]]:
    """`accuracy:0.8` or `accuracy:0.8,f1_score:0.7` as [(metric, bound), ...]."""
    bounds = []
    for item in value.split(","):
        metric, sep, number = item.partition(":")
        try:
            bound = float(number)
        except ValueError:
            bound = math.nan
        if not sep or not METRIC_NAME_RE.fullmatch(metric) or not math.isfinite(bound):
            raise ValidationError(
                {param: [f"expected <metric>:<number>, e.g. accuracy:0.8; got {item!r}"]}
            )
        bounds.append((metric, bound))
    return bounds


class RegisteredModelFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    task_type = django_filters.MultipleChoiceFilter(choices=TaskType.choices)
    owner = django_filters.CharFilter(field_name="owner__username")
    tag = django_filters.CharFilter(method=_tag_filter, help_text="Models with this tag.")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    stage = django_filters.ChoiceFilter(
        choices=Stage.choices, method="filter_has_version",
        help_text="Models with a version in this stage (e.g. production).")
    framework = django_filters.ChoiceFilter(
        choices=Framework.choices, method="filter_has_version",
        help_text="Models with a version in this framework.")

    class Meta:
        model = RegisteredModel
        fields = ["name", "task_type", "owner", "tag", "created_after", "created_before",
                  "stage", "framework"]

    def filter_has_version(self, queryset, name, value):
        # EXISTS, not a join: a model with several matching versions is listed once.
        return queryset.filter(pk__in=ModelVersion.objects.filter(**{name: value})
                               .values("model_id"))


class ModelVersionFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model__name")
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    framework = django_filters.MultipleChoiceFilter(choices=Framework.choices)
    algorithm = django_filters.CharFilter(lookup_expr="icontains")
    author = django_filters.CharFilter(lookup_expr="icontains")
    created_by = django_filters.CharFilter(field_name="created_by__username")
    tag = django_filters.CharFilter(method=_tag_filter, help_text="Versions with this tag.")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    metric_min = django_filters.CharFilter(
        method="filter_metric_min",
        help_text="Versions whose metric is at least a value: `accuracy:0.8` (comma-separate "
        "several).",
    )
    metric_max = django_filters.CharFilter(
        method="filter_metric_max",
        help_text="Versions whose metric is at most a value: `rmse:4.5`.",
    )
    validated = django_filters.BooleanFilter(
        method="filter_validated",
        help_text="`true`: versions whose latest finished validation passed (what "
        "`load_model(name, version=\"latest\")` chooses from); `false`: the others.",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "model", "stage", "framework", "algorithm", "author", "created_by", "tag",
            "created_after", "created_before", "metric_min", "metric_max", "validated",
        ]

    def filter_validated(self, queryset, name, value):
        from registry.selectors import versions_passed_validation

        passed = versions_passed_validation(queryset).values("pk")
        return queryset.filter(pk__in=passed) if value else queryset.exclude(pk__in=passed)

    def filter_metric_min(self, queryset, name, value):
        for metric, bound in _metric_bounds(name, value):
            queryset = queryset.filter(**{f"metrics__{metric}__gte": bound})
        return queryset

    def filter_metric_max(self, queryset, name, value):
        for metric, bound in _metric_bounds(name, value):
            queryset = queryset.filter(**{f"metrics__{metric}__lte": bound})
        return queryset
