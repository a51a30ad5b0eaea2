"""Policies: validation thresholds and approval rules (admins change them, audited)."""


from __future__ import annotations

from django import forms
from django.contrib import admin

from core.admin import AdminOnlyEditMixin, ServiceAdminMixin
from governance import policies, services
from governance.models import Policy
from registry import cards
from registry.admin import TeamScopedAdmin


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = ["model", "risk_tier", *policies.POLICY_FIELDS]

    def clean_required_card_sections(self):
        value = self.cleaned_data["required_card_sections"]
        unknown = cards.unknown_sections(value)
        if unknown:
            raise forms.ValidationError(f"Not model card sections: {', '.join(unknown)}. "
                                        f"Choose among {', '.join(cards.SECTIONS)}.")
        return value


@admin.register(Policy)
class PolicyAdmin(AdminOnlyEditMixin, TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    form = PolicyForm
    list_display = ["__str__", "approvals_required", "transitions_requiring_approval",
                    "min_metrics", "regression_tolerance", "latency_budget_ms", "updated_at"]
    fields = ["model", "risk_tier", *policies.POLICY_FIELDS]

    team_scope_keeps_project_rows = True

    def save_through_service(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        return services.policy_save(policy=obj, actor=request.user, changes=changes)
