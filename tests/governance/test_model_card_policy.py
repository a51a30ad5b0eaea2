"""A policy can require model card sections before production: validation's `model_card`
check names the missing ones, and a promotion it failed is refused with them."""

from __future__ import annotations

import pytest

from core.errors import ApplicationError
from governance import services, validation
from governance.models import ApprovalRequest, Policy
from registry.models import ModelVersion, RegisteredModel
from tests import helpers
from tests.helpers import Unchanged

REQUIRED = ["intended_use", "limitations", "ethical_considerations"]
BASE = "/api/v1/models/churn_prediction/versions/1.0.0/"


@pytest.fixture
def high_tier(churn_model, admin_user):
    """churn_prediction is a high-risk model; the high tier's policy requires three sections."""
    RegisteredModel.objects.filter(pk=churn_model.pk).update(risk_tier="high")
    return services.policy_save(policy=Policy(model=None, risk_tier="high"), actor=admin_user,
                                changes={"required_card_sections": REQUIRED})


@pytest.mark.django_db(transaction=True)  # registration validates on commit
def test_a_promotion_of_a_high_tier_model_without_the_required_card_sections_is_refused_with_the_sections_named(  # noqa: E501
        api, data_scientist, high_tier):
    client = api(data_scientist)
    response = helpers.register(client, "churn_prediction", meta=helpers.metadata(
        model_card={"intended_use": "Pick members for retention offers."}))
    assert response.status_code == 201, response.json()
    response = client.post(BASE + "transitions/", {"to_stage": "staging"}, format="json")
    assert response.status_code == 202, response.json()  # staging needs no card

    with Unchanged():
        response = client.post(BASE + "transitions/", {"to_stage": "production",
                                                       "reason": "ready"}, format="json")
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "not_validated"
    assert [check["name"] for check in body["failed_checks"]] == ["model_card"]
    detail = body["failed_checks"][0]["detail"]
    assert "limitations, ethical_considerations" in detail
    assert "intended_use" not in detail

    # The card completed and validated again, the same promotion is accepted.
    response = client.patch(BASE + "card/", {"limitations": "New members under-represented.",
                                             "ethical_considerations": "Offers only."},
                            format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["missing_required_sections"] == []
    assert client.post(BASE + "validations/").status_code == 202
    response = client.post(BASE + "transitions/", {"to_stage": "production",
                                                   "reason": "ready"}, format="json")
    assert response.status_code == 202, response.json()
    assert ApprovalRequest.objects.filter(to_stage="production").count() == 1


@pytest.mark.django_db
def test_the_model_card_check_names_what_the_policy_requires_and_the_card_lacks(
        data_scientist, churn_model):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                      meta=helpers.metadata(model_card={"limitations": "Few."}))
    policy = Policy(required_card_sections=["limitations", "intended_use"])
    result = validation._model_card(version, policy)
    assert (result.status, result.measured["missing"]) == ("failed", ["intended_use"])
    assert result.detail.endswith("before production: intended_use")

    ModelVersion.objects.filter(pk=version.pk).update(
        model_card={"limitations": "Few.", "intended_use": "Offers."})
    version.refresh_from_db()
    assert validation._model_card(version, policy).status == "passed"
    assert validation._model_card(version, Policy()).detail == (
        "the policy requires no model card sections")


@pytest.mark.django_db
@pytest.mark.parametrize("value", [["intended_use", "risks"], "limitations", [3]])
def test_a_policy_naming_an_unknown_section_is_refused_naming_the_field(admin_user, value):
    from governance.policies import project_default

    policy = project_default()
    with Unchanged(), pytest.raises(ApplicationError) as refused:
        services.policy_save(policy=policy, actor=admin_user,
                             changes={"required_card_sections": value})
    assert (refused.value.status_code, refused.value.field) == (400, "required_card_sections")


@pytest.mark.django_db
def test_the_admins_policy_form_says_which_sections_are_unknown(client, admin_user, policy):
    import json

    client.force_login(admin_user)
    form = {
        "model": "", "min_metrics": "{}", "max_metrics": "{}", "regression_tolerance": "0.02",
        "regression_metrics": json.dumps(policy.regression_metrics),
        "lower_is_better": json.dumps(policy.lower_is_better), "latency_budget_ms": "200",
        "load_timeout_seconds": "60", "load_memory_mb": "2048", "approvals_required": "1",
        "transitions_requiring_approval": json.dumps(policy.transitions_requiring_approval),
        "claimed_metrics_tolerance": "0.02", "claimed_metrics_blocks": "on",
        "required_card_sections": '["intended_use", "risks"]', "review_interval_days": "365",
    }
    with Unchanged(allow_actions=()):
        response = client.post(f"/admin/governance/policy/{policy.pk}/change/", form)
    assert response.status_code == 200  # the form again, with its error
    assert "Not model card sections: risks." in response.content.decode()

    form["required_card_sections"] = '["limitations"]'
    response = client.post(f"/admin/governance/policy/{policy.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.required_card_sections == ["limitations"]
