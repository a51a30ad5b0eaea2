from __future__ import annotations

import math
from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from registry.metadata import METRIC_NAME_RE
from registry.models import Framework, ModelVersion, RegisteredModel, Stage, TaskType


class DateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, in UTC. Converting it here makes a moment that is outside years
    1-9999 once in UTC (0001-01-01T00:00:00+01:00) invalid input instead of an OverflowError
    in the query, and spares PostgreSQL offsets beyond its ±15:59 (a DataError)."""

    default_error_messages = {
        "invalid": "an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z, with an offset under "
                   "24 hours",
        "range": "out of range: the moment must fall within years 1-9999 in UTC",
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise FormValidationError(self.error_messages["range"], code="range") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = DateTimeField


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

    class Meta:
        model = ModelVersion
        fields = [
            "model", "stage", "framework", "algorithm", "author", "created_by", "tag",
            "created_after", "created_before", "metric_min", "metric_max",
        ]

    def filter_metric_min(self, queryset, name, value):
        for metric, bound in _metric_bounds(name, value):
            queryset = queryset.filter(**{f"metrics__{metric}__gte": bound})
        return queryset

    def filter_metric_max(self, queryset, name, value):
        for metric, bound in _metric_bounds(name, value):
            queryset = queryset.filter(**{f"metrics__{metric}__lte": bound})
        return queryset


class StrictOrderingFilter(OrderingFilter):
    """DRF's ordering, but an unknown field is a 400 rather than silently ignored.

    A view may map a public ordering name to several columns with `ordering_expansions`;
    the versions list uses it so that `ordering=version` sorts by SemVer precedence.
    """

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        expansions = getattr(view, "ordering_expansions", {})
        if not ordering or not expansions:
            return ordering
        expanded = []
        for term in ordering:
            descending = term.startswith("-")
            for column in expansions.get(term.lstrip("-"), (term.lstrip("-"),)):
                expanded.append(f"-{column}" if descending else column)
        return expanded

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = {item[0] for item in self.get_valid_fields(queryset, view, {"request": request})}
        invalid = [term for term in fields if term.lstrip("-") not in valid]
        if invalid:
            raise ValidationError(
                {"ordering": [f"cannot order by {invalid[0]!r}; use one of {sorted(valid)}"]}
            )
        return fields
