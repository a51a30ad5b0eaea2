"""The admin's "Model inventory" (every model with its tier, production version, validation,
reviews and alerts, overdue reviews highlighted, as CSV and PDF too) and the list of
recorded reviews, under which the inventory page (`inventory/`) and the form that records a
review (`record/<model>/<version>/`) hang."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from compliance import inventory, rules, services
from compliance.apis_inventory import inventory_response
from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError
from core.pdf import PdfUnavailable
from governance.models import Review
from registry.admin import TeamScopedAdmin
from registry.models import ModelVersion, Stage


class ReviewForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
                              help_text="What the review looked at and found.")


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
                     name="compliance_inventory"),
                path("record/<str:name>/<str:version>/",
                     self.admin_site.admin_view(self.record_view), name="compliance_review"),
                *super().get_urls()]

    def record_view(self, request, name, version):
        """Record a review of a production version: version_review_record, as the API."""
        from registry.selectors import version_get

        try:
            found = version_get(name, version, user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:compliance_inventory"))
        refusal = rules.review_refusal(request.user, found)
        if refusal:
            self.message_user(request, refusal, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:compliance_inventory"))
        form = ReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                review = services.version_review_record(
                    version=found, actor=request.user, comment=form.cleaned_data["comment"])
            except ApplicationError as exc:
                form.add_error("comment" if exc.field == "comment" else None, exc.message)
            else:
                due = (f"next review {review.next_review_at:%Y-%m-%d}" if review.next_review_at
                       else "no further periodic review")
                self.message_user(request, f"{found}: review recorded; {due}.",
                                  level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:compliance_inventory"))
        return TemplateResponse(request, "compliance/review_record_admin.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Review {found}", "version": found, "form": form,
            "reviews": Review.objects.filter(version=found).select_related("reviewer")})

    @staticmethod
    def _add_review_links(user, rows) -> None:
        """The admin's rows (not the API's) link to a review form where the person may
        record one (compliance.rules)."""
        names = [row["model"] for row in rows if row["production_version"]]
        versions = {v.model.name: v for v in ModelVersion.objects.filter(
            model__name__in=names, stage=Stage.PRODUCTION).select_related("model__team")}
        for row in rows:
            version = versions.get(row["model"])
            if version is not None and rules.review_refusal(user, version) is None:
                row["record_url"] = reverse("admin:compliance_review",
                                            args=[version.model.name, version.version])

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
        self._add_review_links(request.user, rows)
        output = request.GET.get("output")
        if output in ("csv", "pdf"):
            try:
                return inventory_response(rows, output=output, filters=filters,
                                          viewer=request.user.get_username())
            except PdfUnavailable as exc:  # the page itself still answers
                self.message_user(request, exc.message, level=messages.ERROR)
        from django.utils import timezone

        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": "Model inventory", "query": urlencode(params),
                   **inventory.inventory_context(rows, filters=filters,
                                                 generated_at=timezone.now())}
        return TemplateResponse(request, "compliance/inventory_admin.html", context)
