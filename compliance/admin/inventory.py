"""The admin's "Model inventory" (every model with its tier, production version, validation,
reviews and alerts, overdue reviews highlighted, as CSV and PDF too) and the list of
recorded reviews, under which the inventory page hangs (`reviews/inventory/`)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from compliance import inventory
from compliance.apis_inventory import inventory_response
from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError
from governance.models import Review
from registry.admin import TeamScopedAdmin


@admin.register(Review)
class ReviewAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    """Periodic reviews of production versions: recorded through the API's reviews endpoint
    (compliance.services.version_review_record), never edited."""

    team_scope = "version__model"
    list_display = ["version", "reviewer", "created_at", "next_review_at", "comment"]
    list_select_related = ["version__model", "reviewer"]
    list_filter = ["version__model__risk_tier"]
    search_fields = ["version__model__name", "comment", "reviewer__username"]
    date_hierarchy = "created_at"

    def get_urls(self):
        return [path("inventory/", self.admin_site.admin_view(self.inventory_view),
                     name="compliance_inventory"), *super().get_urls()]

    def inventory_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        params = {key: value for key, value in request.GET.items()
                  if key in ("tier", "overdue") and value}
        try:
            filters = inventory.parse_filters(params)
        except ApplicationError as exc:
            self.message_user(request, f"{exc.field}: {exc.message}", level=messages.ERROR)
            filters, params = {}, {}
        rows = inventory.model_inventory(user=request.user, **filters)
        output = request.GET.get("output")
        if output in ("csv", "pdf"):
            return inventory_response(rows, output=output, filters=filters,
                                      viewer=request.user.get_username())
        from django.utils import timezone

        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": "Model inventory", "query": urlencode(params),
                   **inventory.inventory_context(rows, filters=filters,
                                                 generated_at=timezone.now())}
        return TemplateResponse(request, "compliance/inventory_admin.html", context)
