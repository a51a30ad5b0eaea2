"""Filters every list API shares: ISO date-times (or dates) that cannot overflow, one meaning of
a date range, strict ordering."""

from __future__ import annotations

import datetime as dt
from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter


class DateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, or a date, in UTC.

    A date is midnight in the project's time zone (TIME_ZONE); with `end_of_day` (the end of a
    range, compared with `<`) it is the midnight after, so that `until=2026-11-30` includes the
    whole of that day. Converting to UTC here makes a moment that is outside years 1-9999 once
    in UTC (0001-01-01T00:00:00+01:00) invalid input instead of an OverflowError in the query,
    and spares PostgreSQL offsets beyond its ±15:59 (a DataError)."""

    default_error_messages = {
        "invalid": "an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z, with an offset under "
                   "24 hours, or a date, e.g. 2026-11-01",
        "range": "out of range: the moment must fall within years 1-9999 in UTC",
    }

    def __init__(self, *args, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        day = _date(value)
        try:
            if day is not None:
                value = timezone.make_aware(dt.datetime.combine(day, dt.time()))
                if self.end_of_day:
                    value += dt.timedelta(days=1)
            else:
                value = super().to_python(value)
                if value is None:
                    return None
            return value.astimezone(UTC)
        except OverflowError:
            raise FormValidationError(self.error_messages["range"], code="range") from None


def _date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    text = (value or "").strip() if isinstance(value, str) else ""
    try:
        return parse_date(text)
    except ValueError:  # a date that does not exist (2026-02-30)
        raise FormValidationError("not a date", code="invalid") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """`end_of_day=True` for the end of a range (`lookup_expr="lt"`)."""

    field_class = DateTimeField

    def __init__(self, *args, end_of_day: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra["end_of_day"] = end_of_day


def period(since: str | None, until: str | None) -> dict:
    """What `since` and `until` mean, for the API, the admin and the command alike: ISO 8601
    date-times (with an offset), or dates in the project's time zone; a date-only `until`
    includes that whole day (the bound is the next midnight, excluded). A bad or out-of-range
    value is an ApplicationError naming the bound."""
    from core.errors import ApplicationError

    bounds = {}
    for key, text in (("since", since), ("until", until)):
        if not (text or "").strip():
            continue
        try:
            bounds[key] = DateTimeField(end_of_day=key == "until").clean(text.strip())
        except FormValidationError as exc:
            raise ApplicationError(exc.messages[0], field=key) from None
    return bounds


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
