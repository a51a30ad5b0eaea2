"""The admin's "Trace a prediction": a request id in, the whole chain out, as a page and a PDF.

It lives on the prediction logs' admin (each row links to its trace), which compliance
extends as governance and monitoring extend the registry's pages."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from compliance.trace import prediction_trace, trace_context, trace_pdf
from core.errors import ApplicationError
from core.pdf import PdfUnavailable
from predictions.admin import PredictionLogAdmin
from predictions.models import PredictionLog


def trace_url(request_id: str) -> str:
    from urllib.parse import urlencode

    return f"{reverse('admin:compliance_trace')}?{urlencode({'request_id': request_id})}"


class TracedPredictionLogAdmin(PredictionLogAdmin):
    list_display = [*PredictionLogAdmin.list_display, "trace_link"]
    readonly_fields = [*PredictionLogAdmin.readonly_fields, "trace_link"]

    @admin.display(description="trace")
    def trace_link(self, obj):
        return format_html('<a href="{}">trace</a>', trace_url(obj.request_id))

    def get_urls(self):
        return [path("trace/", self.admin_site.admin_view(self.trace_view),
                     name="compliance_trace"), *super().get_urls()]

    def trace_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        request_id = request.GET.get("request_id", "").strip()
        trace = None
        if request_id:
            try:
                trace = prediction_trace(request_id=request_id, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
        if trace is not None and request.GET.get("output") == "pdf":
            try:
                return trace_pdf(trace, base=request.build_absolute_uri("/").rstrip("/"),
                                 viewer=request.user.get_username())
            except PdfUnavailable as exc:  # the page itself still answers
                self.message_user(request, exc.message, level=messages.ERROR)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": "Trace a prediction", "request_id": request_id,
                   **(trace_context(trace) if trace is not None else {"trace": None})}
        return TemplateResponse(request, "compliance/trace_admin.html", context)


admin.site.unregister(PredictionLog)
admin.site.register(PredictionLog, TracedPredictionLogAdmin)
