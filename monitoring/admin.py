"""Monitoring in the admin: alerts (acknowledge, resolve), rules, webhooks, the passes, a page
of charts per model, and the registered model page's summary of its monitoring."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from core import roles
from core.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdminMixin,
    age_column,
    badge_column,
    object_or_404,
    status_badge,
)
from core.errors import ApplicationError
from core.models import AuditEvent
from governance.admin import GovernedRegisteredModelAdmin
from monitoring import evidence, page, rules, selectors, services
from monitoring.models import (
    ACTIVE_ALERT,
    Alert,
    AlertDelivery,
    AlertRule,
    AlertStatus,
    MonitoringRun,
    Webhook,
)
from monitoring.webhook_targets import url_check as webhook_url_check
from registry import access
from registry.admin import TeamScopedAdmin, scoped_filter
from registry.models import RegisteredModel

SEVERITY_COLOURS = {"critical": ("#ffebee", "#b71c1c"), "warning": ("#fff8e1", "#8d6e00"),
                    "info": ("#e3f2fd", "#0d47a1")}


def severity_badge(value: str):
    background, colour = SEVERITY_COLOURS.get(value, ("#eee", "#333"))
    return format_html('<span class="severity-badge" data-severity="{}" style="background:{};'
                       'color:{};padding:2px 8px;border-radius:10px;font-weight:600">{}</span>',
                       value, background, colour, value)


class DeliveryInline(ReadOnlyInline):
    model = AlertDelivery
    fields = ["event", "channel", "target", "status", "attempts", "response_status",
              "last_error", "sent_at"]
    readonly_fields = fields
    show_change_link = False


@admin.action(description="Acknowledge the selected alerts")
def acknowledge_alerts(modeladmin, request, queryset):
    done = 0
    for alert in queryset.filter(status=AlertStatus.OPEN):
        try:
            services.alert_acknowledge(alert=alert, actor=request.user,
                                       comment="acknowledged in the admin")
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"#{alert.pk}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"Acknowledged {done} alert(s).", messages.SUCCESS)


@admin.action(description="Resolve the selected alerts…")
def resolve_alerts(modeladmin, request, queryset):
    comment = request.POST.get("comment", "").strip()
    if "apply" not in request.POST or not comment:
        return TemplateResponse(request, "admin/monitoring/alert/resolve_confirm.html", {
            **modeladmin.admin_site.each_context(request), "opts": modeladmin.model._meta,
            "title": "Resolve alerts", "alerts": queryset.exclude(status=AlertStatus.RESOLVED),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "missing_comment": "apply" in request.POST,
        })
    done = 0
    for alert in queryset.exclude(status=AlertStatus.RESOLVED):
        try:
            services.alert_resolve(alert=alert, actor=request.user, comment=comment)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"#{alert.pk}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"Resolved {done} alert(s).", messages.SUCCESS)
    return None


@admin.register(Alert)
class AlertAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    # What fits 1366 px beside the filters; the evidence and first sighting are on its page.
    list_display = ["id", "model", "short_title", "severity_display", "status_display",
                    "count", "last_seen_age"]
    list_display_links = ["id", "short_title"]
    list_filter = ["status", "severity", "rule__metric", scoped_filter("model")]
    search_fields = ["title", "model__name"]
    list_select_related = ["model", "rule"]
    date_hierarchy = "last_seen"
    actions = [acknowledge_alerts, resolve_alerts]

    def get_queryset(self, request):
        return selectors.alert_list(user=request.user)

    severity_display = badge_column(severity_badge, field="severity", ordering="severity_rank")

    status_display = badge_column()

    last_seen_age = age_column("last_seen", description="last seen")

    @admin.display(description="title", ordering="title")
    def short_title(self, obj):
        return Truncator(obj.title).chars(90)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not roles.has_role(request.user, rules.ALERT_ROLES | roles.REGISTER_ROLES):
            actions.pop("acknowledge_alerts", None)
            actions.pop("resolve_alerts", None)
        return actions

    def get_urls(self):
        return [path("<id:pk>/act/", self.admin_site.admin_view(self.act_view),
                     name="monitoring_alert_act"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        alert = object_or_404(selectors.alert_list(user=request.user), object_id)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Alert #{alert.pk}", "alert": alert,
            "severity": severity_badge(alert.severity),
            "status": status_badge(alert.status),
            "evidence": evidence.evidence_html(alert.evidence),
            "evidence_json": json.dumps(alert.evidence, indent=2, default=str),
            "deliveries": alert.deliveries.order_by("created_at"),
            "can_act": alert.status != AlertStatus.RESOLVED
            and rules.alert_action_refusal(request.user, alert) is None,
            # (Events from before monitoring had an app of its own say "governance.alert".)
            "history": AuditEvent.objects.filter(
                object_type__in=["monitoring.alert", "governance.alert"],
                object_id=str(alert.pk)).order_by("seq"),
        }
        return TemplateResponse(request, "admin/monitoring/alert/detail.html", context)

    def act_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        alert = get_object_or_404(selectors.alert_list(user=request.user), pk=pk)
        comment = request.POST.get("comment", "")
        try:
            if "acknowledge" in request.POST:
                services.alert_acknowledge(alert=alert, actor=request.user, comment=comment)
                self.message_user(request, f"Acknowledged alert #{pk}.", messages.SUCCESS)
            elif "resolve" in request.POST:
                services.alert_resolve(alert=alert, actor=request.user, comment=comment)
                self.message_user(request, f"Resolved alert #{pk}.", messages.SUCCESS)
            else:
                self.message_user(request, "Choose Acknowledge or Resolve.", messages.ERROR)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:monitoring_alert_change", args=[pk]))


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["model", "metric", "statistic", "threshold", "severity", "window_minutes",
                  "min_rows", "resolve_after_runs", "enabled"]

    def clean(self):
        data = super().clean()
        values = {**{f: getattr(self.instance, f) for f in self.Meta.fields}, **data}
        try:
            services.check_rule(values)
        except ApplicationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    """Project defaults (no model) and each model's own rules, which replace the default with
    the same metric and statistic; switch a default off for one model with a disabled rule."""

    form = AlertRuleForm
    list_display = ["__str__", "model", "metric", "statistic", "threshold", "severity",
                    "window_minutes", "min_rows", "resolve_after_runs", "enabled"]
    list_filter = ["metric", "severity", "enabled", scoped_filter("model")]
    list_select_related = ["model"]

    def get_queryset(self, request):
        return selectors.alert_rules(user=request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # an alert points at its rule: switch a rule off instead

    def has_add_permission(self, request):
        return roles.has_role(request.user, rules.ALERT_ROLES | roles.REGISTER_ROLES)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_add_permission(request)
        return rules.rule_edit_refusal(request.user, obj.model) is None

    def save_through_service(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        saved = services.alert_rule_save(actor=request.user, rule=obj if change else None,
                                         **(changes if change else form.cleaned_data))
        return saved



class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                             help_text="Shared with the receiver to check X-Mgov-Signature. "
                             "Leave empty to keep the current one.")

    class Meta:
        model = Webhook
        fields = ["name", "url", "secret", "model", "min_severity", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if "url" in self.changed_data:
            try:
                webhook_url_check(url)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return url

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        if not secret and not self.instance.pk:
            raise forms.ValidationError("A new webhook needs a secret.")
        return secret


@admin.register(Webhook)
class WebhookAdmin(TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "url", "model", "min_severity", "enabled", "created_at"]

    team_scope_keeps_project_rows = True

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.remove("secret")  # a read-only page would show it in plain text
        return fields

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return roles.has_role(request.user, roles.ADMIN_ROLES)

    def has_change_permission(self, request, obj=None):
        return roles.has_role(request.user, roles.ADMIN_ROLES)

    def save_through_service(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in form.changed_data
                   if field != "secret" or form.cleaned_data["secret"]}
        saved = services.webhook_save(actor=request.user,
                                      webhook=Webhook.objects.get(pk=obj.pk) if change else None,
                                      **changes)
        return saved



@admin.register(MonitoringRun)
class MonitoringRunAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "model", "version", "route", "run_status", "requests",
                    "summary", "duration_ms"]
    list_filter = ["status", "route", scoped_filter("model")]
    list_select_related = ["model", "version__model"]
    date_hierarchy = "created_at"
    readonly_fields = ["model", "version", "route", "status", "summary", "requests",
                       "duration_ms", "created_at", "figures_display"]
    exclude = ["figures"]

    run_status = badge_column()

    @admin.display(description="figures")
    def figures_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.figures, indent=2, default=str))

    def get_urls(self):
        return [path("model/<id:model_id>/", self.admin_site.admin_view(self.model_view),
                     name="monitoring_model"), *super().get_urls()]

    def model_view(self, request, model_id):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        model = get_object_or_404(access.visible_models(request.user), pk=model_id)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Monitoring: {model.name}", "model": model, **page.build(model)}
        return TemplateResponse(request, "admin/monitoring/model.html", context)


def monitoring_glance(model: RegisteredModel):
    """The registered model page's summary: active alerts, the last pass, a link."""
    alerts = list(Alert.objects.filter(ACTIVE_ALERT, model=model).annotate(
        severity_rank=selectors.severity_rank()).order_by(
        "-severity_rank", "-last_seen"))
    last = model.monitoring_runs.order_by("-created_at").first()
    link = reverse("admin:monitoring_model", args=[model.pk])
    if last is None:
        state = "never monitored yet (a pass runs every 5 minutes while a version serves)"
    else:
        state = f"last pass {last.created_at:%Y-%m-%d %H:%M}: {last.status} — {last.summary}"
    rows = format_html_join("", "<li style='list-style:none'>{} {} <a href='{}'>#{}</a> {}</li>", (
        (severity_badge(a.severity), status_badge(a.status),
         reverse("admin:monitoring_alert_change", args=[a.pk]), a.pk, a.title)
        for a in alerts))
    return format_html('<div id="monitoring-glance"><p>{}</p>{}<p><a href="{}">Charts and '
                       'figures over time →</a></p></div>', state,
                       format_html('<ul style="margin:.3rem 0;padding-left:0">{}</ul>', rows)
                       if alerts else
                       mark_safe("<p>No open alerts.</p>"), link)


class MonitoredRegisteredModelAdmin(GovernedRegisteredModelAdmin):
    """The registered model page, with its monitoring at a glance and its open alerts."""

    list_display = [*GovernedRegisteredModelAdmin.list_display, "alerts_display"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.insert(1, ("Monitoring", {"fields": ["monitoring_display"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "monitoring_display"]

    @admin.display(description="monitoring")
    def monitoring_display(self, obj):
        return monitoring_glance(obj)

    def get_queryset(self, request):
        active = Q(alerts__status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
        return super().get_queryset(request).annotate(
            active_alerts=Count("alerts", filter=active, distinct=True))

    @admin.display(description="open alerts", ordering="active_alerts")
    def alerts_display(self, obj):
        count = obj.active_alerts
        if not count:
            return mark_safe('<span style="color:#1b5e20">none</span>')
        return format_html('<a href="{}?model__id__exact={}&status=open" style="color:#b71c1c;'
                           'font-weight:600">{}</a>',
                           reverse("admin:monitoring_alert_changelist"), obj.pk, count)


admin.site.unregister(RegisteredModel)
admin.site.register(RegisteredModel, MonitoredRegisteredModelAdmin)
