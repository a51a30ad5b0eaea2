from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin, ServiceAdminMixin
from core.errors import ApplicationError
from predictions import blocks, services
from predictions.models import ApiToken, Feedback, PredictionLog, PredictionLogBlock, RateLimit
from registry.admin import TeamScopedAdmin, scoped_filter


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Tokens for service accounts. The token is shown once, when it is made."""

    list_display = ["name", "user", "prefix", "created_by", "created_at", "expires_at",
                    "revoked_at"]
    list_filter = ["user"]
    fields = ["user", "name", "expires_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "name", "expires_at", "prefix", "created_by", "revoked_at"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_through_service(self, request, obj, form, change):
        token, plain = services.api_token_create(
            user=form.cleaned_data["user"], name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"), actor=request.user)
        self.message_user(request, f"The token for {token.user}: {plain} — copy it now, it "
                          "is not shown again.", level=messages.WARNING)
        return token

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            try:
                services.api_token_revoke(token=token, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


@admin.register(RateLimit)
class RateLimitAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Hourly prediction quotas per user or group; changes go through a service (audited)."""

    list_display = ["__str__", "user", "group", "requests_per_hour"]

    def save_through_service(self, request, obj, form, change):
        saved = services.rate_limit_save(
            actor=request.user, user=form.cleaned_data.get("user"),
            group=form.cleaned_data.get("group"),
            requests_per_hour=form.cleaned_data["requests_per_hour"],
            limit=RateLimit.objects.get(pk=obj.pk) if change else None)
        return saved


    def delete_model(self, request, obj):
        services.rate_limit_delete(limit=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for limit in queryset:
            services.rate_limit_delete(limit=limit, actor=request.user)


@admin.register(PredictionLog)
class PredictionLogAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    # What fits 1366 px beside the filters; the full request id and inputs are on its page.
    list_display = ["created_at", "short_request_id", "version_label", "route", "caller_name",
                    "n_rows", "latency_ms"]
    list_filter = ["route", "protocol", scoped_filter("model")]
    search_fields = ["request_id", "caller_name"]
    date_hierarchy = "created_at"
    list_select_related = ["model", "version__model"]

    @admin.display(description="request", ordering="request_id")
    def short_request_id(self, obj):
        return format_html('<span title="{}">{}…</span>', obj.request_id, obj.request_id[:8])

    @admin.display(description="version", ordering="model__name")
    def version_label(self, obj):
        return f"{obj.model.name} {obj.version.version}"


@admin.register(PredictionLogBlock)
class PredictionLogBlockAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    """Single-row requests stored in blocks (PREDICTION_LOG_BLOCKS): a block per flush; its
    page lists each request as the prediction logs' page would. Search by request id."""

    list_display = ["created_at", "last_at", "version_label", "route", "protocol",
                    "n_requests"]
    list_filter = ["route", "protocol", scoped_filter("model")]
    search_fields = ["request_ids"]
    date_hierarchy = "created_at"
    list_select_related = ["model", "version__model"]
    fields = ["model", "version", "route", "protocol", "created_at", "last_at", "n_requests",
              "request_table"]
    readonly_fields = fields

    @admin.display(description="version", ordering="model__name")
    def version_label(self, obj):
        return f"{obj.model.name} {obj.version.version}"

    @admin.display(description="requests")
    def request_table(self, obj):
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((log.created_at.isoformat(), log.request_id, log.caller_name,
              log.latency_ms, log.inputs[0] if log.inputs else "(sampled away)",
              log.outputs[0] if log.outputs else "")
             for log in blocks.requests(obj)))
        return format_html("<table><tr><th>time</th><th>request</th><th>caller</th>"
                           "<th>latency ms</th><th>inputs</th><th>output</th></tr>{}</table>",
                           rows)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "row_index", "actual", "created_by", "created_at"]
    search_fields = ["request_id"]
