"""Filters every list API shares: ISO date-times that cannot overflow, strict ordering."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter


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
