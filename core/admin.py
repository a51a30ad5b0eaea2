"""Admin pieces every app's admin shares: read-only pages, saving through a service, badges."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from core import roles
from core.limits import MAX_BIGINT

DATE_PARTS = {"year": (1, 9999), "month": (1, 12), "day": (1, 31)}


def object_or_404(queryset, object_id):
    """The row with this id in `queryset`, or a 404 for an id that is not one (a hand-made
    URL: `abc`, a number past the database's range)."""
    text = str(object_id)
    if not text.isdigit() or not 0 < int(text) <= MAX_BIGINT:
        raise Http404("no such object")
    return get_object_or_404(queryset, pk=int(text))


class DateHierarchyGuard:
    """A date-hierarchy filter with a year, month or day out of range (a hand-made URL)
    shows the list's "incorrect filter" state instead of raising."""

    def changelist_view(self, request, extra_context=None):
        field = getattr(self, "date_hierarchy", None)
        if field:
            for part, (low, high) in DATE_PARTS.items():
                value = request.GET.get(f"{field}__{part}")
                if value is not None and not (value.isdigit() and low <= int(value) <= high):
                    return HttpResponseRedirect(f"{request.path}?e=1")
        return super().changelist_view(request, extra_context)

STATUS_COLOURS = {
    "passed": "#1b5e20", "approved": "#1b5e20", "completed": "#1b5e20", "ok": "#1b5e20",
    "resolved": "#1b5e20", "sent": "#1b5e20",
    "failed": "#b71c1c", "rejected": "#b71c1c", "open": "#b71c1c", "alerting": "#b71c1c",
    "stale": "#8d6e00", "acknowledged": "#8d6e00", "retrying": "#8d6e00", "warning": "#8d6e00",
    "pending": "#283593", "running": "#283593", "moving": "#283593", "sending": "#283593",
    "skipped": "#666666", "no_data": "#666666",
}


def status_badge(value: str):
    return format_html(
        '<span class="status-badge" data-status="{}" style="color:{};font-weight:600">{}</span>',
        value, STATUS_COLOURS.get(value, "#333"), value,
    )


def badge_column(badge=None, *, field: str = "status", description: str | None = None,
                 ordering: str | None = "status"):
    """A list or inline column that shows `field` as a badge (a status by default)."""

    @admin.display(description=description or field, ordering=ordering)
    def column(self, obj):
        return (badge or status_badge)(getattr(obj, field))

    return column


def age_column(field: str, *, description: str | None = None):
    """A list column that shows a moment as its age ("3 hours ago"), the date and time on
    hover: narrower than a date, and what a reader of a queue wants to know."""

    @admin.display(description=description or field, ordering=field)
    def column(self, obj):
        moment = getattr(obj, field)
        if moment is None:
            return "—"
        return format_html('<span title="{}" style="white-space:nowrap">{} ago</span>',
                           timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S"),
                           timesince(moment).split(",")[0])

    return column


class ReadOnlyAdmin(DateHierarchyGuard, admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    view_on_site = False
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AdminOnlyEditMixin:
    """Rows only admins add or change (teams, policies), and nobody deletes: their history
    is in the audit trail, which a deletion would orphan."""

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return roles.has_role(request.user, roles.ADMIN_ROLES)

    def has_add_permission(self, request):
        return roles.has_role(request.user, roles.ADMIN_ROLES)


class ServiceAdminMixin:
    """Saves go through a service, which opens its own durable transaction and writes the
    audit event: a subclass says which in `save_through_service` and returns the saved row.

    Django's admin wraps the change form in `transaction.atomic()`; a service that places
    files must not run nested in another transaction (it could not tell when its rows
    commit), so the form view runs without that wrapper and the service is the transaction.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_through_service(self, request, obj, form, change):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        saved = self.save_through_service(request, obj, form, change)
        # The admin goes on to log and redirect using this object.
        obj.pk = saved.pk
        obj._state.adding = False
        obj._state.db = saved._state.db

    def save_related(self, request, form, formsets, change):
        # No form.save_m2m(): the service saved the relations too, with its audit event. The
        # inlines are read-only; saving them changes nothing but lets the admin log the change.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
