"""The registry in the Django admin: browse models and versions; edits go through the services.

Versions are registered through the API (a model file is an upload, not a form field) and
never deleted; their stage changes only through the governance workflow.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core import context, roles
from core.admin import (
    AdminOnlyEditMixin,
    DateHierarchyGuard,
    ReadOnlyInline,
    ServiceAdminMixin,
    badge_column,
    object_or_404,
)
from core.errors import ApplicationError
from registry import access, services
from registry.models import (
    ArtifactFile,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    Stage,
    Team,
)

STAGE_COLOURS = {
    Stage.EXPERIMENT: ("#e8eaf6", "#283593"),
    Stage.STAGING: ("#fff8e1", "#8d6e00"),
    Stage.PRODUCTION: ("#e8f5e9", "#1b5e20"),
    Stage.ARCHIVED: ("#eeeeee", "#555555"),
}


def stage_badge(stage: str):
    background, colour = STAGE_COLOURS.get(stage, ("#eeeeee", "#333333"))
    return format_html(
        '<span class="stage-badge" data-stage="{}" style="background:{};color:{};'
        'padding:2px 8px;border-radius:10px;font-weight:600;white-space:nowrap">{}</span>',
        stage,
        background,
        colour,
        Stage(stage).label if stage in Stage.values else stage,
    )


def metrics_table(metrics: dict):
    if not metrics:
        return "—"
    return format_html(
        "<table><tbody>{}</tbody></table>",
        format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in sorted(metrics.items()))
        ),
    )


class RiskForm(forms.Form):
    risk_tier = forms.ChoiceField(choices=RiskTier.choices)
    risk_reason = forms.CharField(label="Why this tier", required=False,
                                  widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))
    business_use = forms.CharField(required=False,
                                   widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))


class TeamScopedAdmin:
    """Each person sees only the rows of models they may see (registry.access): lists,
    filters, search, change pages and the model choices of forms."""

    team_scope = "model"  # the path from a row to its registered model ("" for the model)
    # Rows that belong to no model (a project default) are everyone's to see.
    team_scope_keeps_project_rows = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if access.reads_everything(request.user):
            return queryset
        lookup = f"{self.team_scope}__in" if self.team_scope else "pk__in"
        scope = Q(**{lookup: access.visible_models(request.user)})
        if self.team_scope_keeps_project_rows:
            scope |= Q(**{f"{self.team_scope}__isnull": True})
        return queryset.filter(scope)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is RegisteredModel:
            kwargs["queryset"] = access.visible_models(request.user)
        elif db_field.related_model is ModelVersion and "queryset" not in kwargs:
            kwargs["queryset"] = ModelVersion.objects.filter(
                model__in=access.visible_models(request.user)).select_related("model")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def scoped_filter(path: str):
    """A list filter on a relation that offers only what the person may see."""
    return (path, admin.RelatedOnlyFieldListFilter)


class VersionInline(ReadOnlyInline):
    model = ModelVersion
    fields = ["version", "stage_display", "framework", "algorithm", "created_by", "created_at"]
    readonly_fields = fields
    ordering = ["-major", "-minor", "-patch", "-prerelease_key"]

    stage_display = badge_column(stage_badge, field="stage", ordering=None)


class FileInline(ReadOnlyInline):
    model = ArtifactFile
    fields = ["position", "filename", "role", "size", "sha256", "download"]
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="download")
    def download(self, obj):
        url = reverse(
            "api:version-file",
            kwargs={
                "name": obj.version.model.name,
                "version": obj.version.version,
                "filename": obj.filename,
            },
        )
        return format_html('<a href="{}">download</a>', url)


@admin.register(Team)
class TeamAdmin(AdminOnlyEditMixin, ServiceAdminMixin, admin.ModelAdmin):
    """Teams own models; admins keep their members (audited, through a service)."""

    list_display = ["name", "description", "member_count", "model_count"]
    fields = ["name", "description", "members"]
    filter_horizontal = ["members"]
    search_fields = ["name"]

    def get_queryset(self, request):
        from django.db.models import Count

        teams = super().get_queryset(request).annotate(
            member_total=Count("members", distinct=True), model_total=Count("models",
                                                                            distinct=True))
        if roles.has_role(request.user, roles.ADMIN_ROLES):
            return teams
        return teams.filter(pk__in=access.team_ids(request.user))  # who is in other teams
                                                                    # is theirs to know

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.display(description="models", ordering="model_total")
    def model_count(self, obj):
        return obj.model_total

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj else []

    def save_through_service(self, request, obj, form, change):
        data = form.cleaned_data
        saved = services.team_save(team=obj if change else None, actor=request.user,
                                   name=data.get("name", obj.name),
                                   description=data["description"],
                                   members=list(data["members"]))
        return saved



@admin.register(RegisteredModel)
class RegisteredModelAdmin(TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    view_on_site = False
    team_scope = ""
    list_display = [
        "name", "task_type", "team", "owner", "production", "latest", "version_count",
        "updated_at",
    ]
    list_filter = ["task_type", scoped_filter("team"), scoped_filter("owner")]
    search_fields = ["name", "description"]
    fields = ["name", "task_type", "team", "description", "owner", "tags", "readers",
              "created_at", "updated_at"]
    readonly_fields = ["created_at", "updated_at"]
    filter_horizontal = ["readers"]
    inlines = [VersionInline]

    def get_queryset(self, request):
        from registry.selectors import model_list

        return model_list(user=request.user)

    def _readonly_fields(self, request, obj=None):
        fields = [*self.readonly_fields, "name"] if obj else list(self.readonly_fields)
        if not roles.has_role(request.user, roles.ADMIN_ROLES):
            fields += ["team", "readers"]
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team" and not roles.has_role(request.user, roles.ADMIN_ROLES):
            kwargs["queryset"] = Team.objects.filter(pk__in=access.team_ids(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "readers":
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = get_user_model().objects.filter(
                groups__name=roles.SERVICE).distinct()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="production", ordering="production_version")
    def production(self, obj):
        return obj.production_version or "—"

    @admin.display(description="latest", ordering="latest_version")
    def latest(self, obj):
        return obj.latest_version or "—"

    @admin.display(description="versions", ordering="version_count")
    def version_count(self, obj):
        return obj.version_count

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [*fields, "risk_display"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return [*self._readonly_fields(request, obj), "risk_display"]

    @admin.display(description="risk tier and use")
    def risk_display(self, obj):
        tier = obj.risk_tier or "not assessed"
        link = (format_html(' <a class="button" id="risk-set" href="{}">Set the risk tier</a>',
                            reverse("admin:registry_registeredmodel_risk", args=[obj.pk]))
                if access.may_set_risk(context.current_user(), obj) else "")
        return format_html('<p><b data-tier="{}">{}</b>{}</p><p>Why: {}</p><p>Business use: '
                           '{}</p>', obj.risk_tier, tier, link, obj.risk_reason or "—",
                           obj.business_use or "—")

    def get_urls(self):
        return [path("<path:object_id>/risk/", self.admin_site.admin_view(self.risk_view),
                     name="registry_registeredmodel_risk"), *super().get_urls()]

    def risk_view(self, request, object_id):
        """Set the risk tier (with why) and business use: model_risk_set, as the API does."""
        model = object_or_404(self.get_queryset(request), object_id)
        change_url = reverse("admin:registry_registeredmodel_change", args=[model.pk])
        if not access.may_set_risk(request.user, model):
            self.message_user(request, "A model's risk tier is set by the approvers and admins "
                              "of its team.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = RiskForm(request.POST or None, initial={
            "risk_tier": model.risk_tier, "risk_reason": model.risk_reason,
            "business_use": model.business_use})
        if request.method == "POST" and form.is_valid():
            try:
                services.model_risk_set(model=model, actor=request.user,
                                        **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                self.message_user(request, f"{model.name}: risk tier set.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(request, "admin/registry/registeredmodel/risk.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Risk tier of {model.name}", "original": model, "form": form,
            "change_url": change_url})

    def save_through_service(self, request, obj, form, change):
        data = form.cleaned_data
        tags = data.get("tags", [])
        # The form has already checked the name, choices and uniqueness; the service
        # re-checks them and writes the audit event.
        if change:
            admin_fields = ({"team": data["team"], "readers": list(data["readers"])}
                            if roles.has_role(request.user, roles.ADMIN_ROLES) else {})
            saved = services.model_update(
                model=obj,
                actor=request.user,
                description=data["description"],
                task_type=data["task_type"],
                owner=data["owner"],
                tags=tags,
                **admin_fields,
            )
        else:
            saved = services.model_create(
                name=data["name"],
                task_type=data["task_type"],
                description=data["description"],
                owner=data["owner"],
                tags=tags,
                team_name=data["team"].name if data.get("team") else None,
                actor=request.user,
            )
            if data.get("readers"):
                services.model_update(model=saved, actor=request.user,
                                      readers=list(data["readers"]))
        return saved



@admin.register(ModelVersion)
class ModelVersionAdmin(TeamScopedAdmin, DateHierarchyGuard, ServiceAdminMixin, admin.ModelAdmin):
    view_on_site = False
    # What fits 1366 px beside the filters (the framework is a filter, and on its page).
    list_display = [
        "model", "version", "stage_display", "algorithm", "headline_metric", "created_by",
        "created_at",
    ]
    list_filter = ["stage", "framework", scoped_filter("model")]
    search_fields = ["model__name", "version", "algorithm", "author"]
    list_select_related = ["model", "created_by"]
    date_hierarchy = "created_at"
    inlines = [FileInline]
    fieldsets = [
        (None, {"fields": ["model", "version", "stage_display", "framework", "algorithm"]}),
        ("Description", {"fields": ["description", "tags", "changelog_display"]}),
        (
            "Provenance",
            {
                "fields": [
                    "author", "created_by", "created_at", "stage_changed_at", "training_dataset",
                    "python_version", "framework_version",
                ]
            },
        ),
        (
            "Model card",
            {
                "fields": [
                    "metrics_display", "features_display", "target", "signature_display",
                    "hyperparameters_display", "extra_display",
                ]
            },
        ),
    ]
    readonly_fields = [
        "model", "version", "stage_display", "framework", "algorithm", "changelog_display",
        "author", "created_by", "created_at", "stage_changed_at", "training_dataset",
        "python_version", "framework_version", "metrics_display", "features_display", "target",
        "signature_display", "hyperparameters_display", "extra_display",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("files")

    stage_display = badge_column(stage_badge, field="stage", ordering="stage")

    @admin.display(description="metric")
    def headline_metric(self, obj):
        for key in ("accuracy", "silhouette", "mae", "rmse", "f1_score", "auc_roc"):
            if key in obj.metrics:
                return f"{key} {obj.metrics[key]:.3f}"
        return "—"

    @admin.display(description="metrics")
    def metrics_display(self, obj):
        return metrics_table(obj.metrics)

    @admin.display(description="features")
    def features_display(self, obj):
        return ", ".join(obj.features) or "—"

    @admin.display(description="signature")
    def signature_display(self, obj):
        return ", ".join(f"{c['name']}: {c['dtype']}" for c in obj.signature) or "—"

    @admin.display(description="hyperparameters")
    def hyperparameters_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.hyperparameters, indent=2))

    @admin.display(description="other metadata")
    def extra_display(self, obj):
        if not obj.extra_metadata:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.extra_metadata, indent=2))

    @admin.display(description="changelog")
    def changelog_display(self, obj):
        if not obj.changelog:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((c,) for c in obj.changelog)))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_through_service(self, request, obj, form, change):
        data = form.cleaned_data
        return services.version_update(
            version=obj,
            actor=request.user,
            description=data["description"],
            tags=data.get("tags", []),
        )

