"""The admin approval workflow: the queue, the evidence, the buttons, and the same rules."""

from __future__ import annotations

import json
import re

import pytest

from governance.models import ApprovalRequest
from registry.models import ModelVersion
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)


def _stages():
    return dict(ModelVersion.objects.values_list("version", "stage"))


def test_the_queue_lists_pending_requests_with_validation_and_approvals(client, approver,
                                                                        promotion):
    client.force_login(approver)
    page = client.get("/admin/governance/approvalrequest/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"#{promotion['request_id']}" in text
    assert 'data-status="passed"' in text  # the validation badge
    assert "0 / 1" in text


def test_the_review_page_shows_checks_and_metrics_beside_production(client, approver,
                                                                    promotion):
    client.force_login(approver)
    page = client.get(f"/admin/governance/approvalrequest/{promotion['request_id']}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    for check in ("checksum", "load", "signature", "predict", "regression", "latency"):
        assert f"<td>{check}</td>" in text
    assert "against production 1.0.0" in text
    assert '<td class="num">0.8</td><td class="num">0.82</td>' in _flat(text)
    assert 'name="approve"' in text and 'name="reject"' in text
    assert _flag(text) == ("none", "No metric worse than production")
    assert _delta(text, "accuracy") == ("delta better", "+0.02 better")


def _flat(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def _flag(html: str) -> tuple[str, str]:
    """The level and the headline of the regression flag at the top of the review page."""
    found = re.search(r'<div id="regression-flag" class="flag flag-(\w+)"[^>]*>\s*<b>([^<]*)</b>',
                      html)
    assert found, "no regression flag"
    return found.group(1), found.group(2)


def _delta(html: str, metric: str) -> tuple[str, str]:
    """The class (its colour) and the text of a metric's change cell."""
    row = re.search(rf'<tr [^>]*data-metric="{metric}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row for {metric}"
    cell = re.search(r'<td class="(delta[^"]*)">(.*?)</td>', row.group(1), re.S)
    assert cell, f"no change cell for {metric}"
    return cell.group(1).strip(), " ".join(re.sub(r"<[^>]+>", " ", cell.group(2)).split())


def _request_promotion(api, data_scientist, production_metrics, candidate_metrics) -> int:
    """1.0.0 in production, 1.1.0 asked for production. The candidate is registered first,
    so its registration run (no production then) passes and the request can be made; the
    promotion's own run compares it with production."""
    candidate = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist,
                                        meta=helpers.metadata(metrics=candidate_metrics))
    production = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                         meta=helpers.metadata(metrics=production_metrics))
    helpers.force_stage(production, "production")
    helpers.force_stage(candidate, "staging")
    response = api(data_scientist).post(
        "/api/v1/models/churn_prediction/versions/1.1.0/transitions/",
        {"to_stage": "production", "reason": "New features"}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["request"]["id"]


def test_the_review_page_flags_in_red_a_candidate_worse_beyond_tolerance(
    client, api, approver, data_scientist, churn_model
):
    request_id = _request_promotion(
        api, data_scientist,
        {"accuracy": 0.85, "precision": 0.807, "recall": 0.39, "log_loss": 0.40, "kappa": 0.5},
        {"accuracy": 0.84, "precision": 0.736, "recall": 0.41, "log_loss": 0.45, "lift": 2.0})
    request = ApprovalRequest.objects.get(pk=request_id)
    assert request.validation_run.status == "failed"  # the regression check failed it
    client.force_login(approver)
    text = client.get(f"/admin/governance/approvalrequest/{request_id}/change/").content.decode()

    assert _flag(text) == ("beyond",
                           "Worse than production beyond tolerance on: log_loss, precision")
    assert text.index('id="regression-flag"') < text.index('id="validation-checks"')
    assert "compared by validation #" in text  # the check's own rows, not a recomputation
    assert "Worst drop: precision 0.807 → 0.736" in text
    assert _delta(text, "precision") == ("delta worse beyond", "-0.071 worse, beyond tolerance")
    # log_loss is lower-is-better: rising is worse.
    assert _delta(text, "log_loss") == ("delta worse beyond", "+0.05 worse, beyond tolerance")
    assert _delta(text, "accuracy") == ("delta within", "-0.01 worse, within tolerance")
    assert _delta(text, "recall") == ("delta better", "+0.02 better")
    for only_one_side in ("kappa", "lift"):
        assert re.search(rf'<tr class="not-compared" data-metric="{only_one_side}"', text)
    assert "only production declares it" in text and "only the candidate declares it" in text
    chart = text[text.index('id="metrics-chart"'):]
    assert chart.count('class="group"') == 4  # the four metrics both declare
    assert 'class="bar beyond" style="height: 73.6%"' in chart  # precision, on a 0-1 scale
    assert 'class="bar production" style="height: 80.7%"' in chart


def test_the_review_page_flags_in_amber_a_candidate_worse_within_tolerance(
    client, api, approver, data_scientist, churn_model
):
    request_id = _request_promotion(
        api, data_scientist, {"accuracy": 0.85, "f1_score": 0.75, "rmse": 10.0},
        {"accuracy": 0.84, "f1_score": 0.74, "rmse": 10.1})
    assert ApprovalRequest.objects.get(pk=request_id).validation_run.status == "passed"
    client.force_login(approver)
    text = client.get(f"/admin/governance/approvalrequest/{request_id}/change/").content.decode()

    assert _flag(text) == ("worse",
                           "Worse on 3 metrics, within tolerance: accuracy, f1_score, rmse")
    assert _delta(text, "rmse") == ("delta within", "+0.1 worse, within tolerance")
    assert "0.2 (relative)" in _flat(text).replace('<span class="quiet">', "").replace(
        "</span>", "")  # 2 % of 10.0


def test_an_approver_approves_in_the_admin_and_the_version_is_deployed(client, approver,
                                                                       promotion):
    client.force_login(approver)
    url = f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/"
    response = client.post(url, {"approve": "Approve", "comment": "checked"}, follow=True)
    assert response.status_code == 200
    assert "Approved request" in response.content.decode()
    assert _stages() == {"1.0.0": "archived", "1.1.0": "production"}


def test_the_admin_enforces_four_eyes_with_a_message_not_an_error_page(client, data_scientist,
                                                                        promotion):
    from django.contrib.auth.models import Group

    data_scientist.groups.add(Group.objects.get(name="approver"))
    data_scientist.is_staff = True
    data_scientist.save()
    client.force_login(data_scientist)
    url = f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/"
    response = client.post(url, {"approve": "Approve"}, follow=True)
    assert response.status_code == 200
    assert "Four eyes" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=promotion["request_id"]).status == "pending"


def test_a_rejection_in_the_admin_needs_a_comment(client, approver, promotion):
    client.force_login(approver)
    url = f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/"
    response = client.post(url, {"reject": "Reject", "comment": ""}, follow=True)
    assert "rejection needs a comment" in response.content.decode()
    client.post(url, {"reject": "Reject", "comment": "not yet"})
    assert ApprovalRequest.objects.get(pk=promotion["request_id"]).status == "rejected"


def test_a_post_that_names_no_decision_decides_nothing(client, approver, promotion):
    client.force_login(approver)
    url = f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/"
    response = client.post(url, {"comment": "hm"}, follow=True)
    assert "Choose Approve or Reject" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=promotion["request_id"]).status == "pending"
    assert not ApprovalRequest.objects.get(pk=promotion["request_id"]).decisions.exists()


def test_the_admin_report_until_a_date_includes_that_day(client, admin_user, promotion):
    from django.utils import timezone

    client.force_login(admin_user)
    today = timezone.now().date().isoformat()
    response = client.get("/admin/core/auditevent/report/",
                          {"download": "1", "output": "csv", "until": today})
    assert response.status_code == 200
    assert "request.created" in response.content.decode()  # happened today


def test_the_version_page_shows_its_governance_history(client, approver, promotion):
    client.force_login(approver)
    client.post(f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/",
                {"approve": "Approve"})
    version = ModelVersion.objects.get(version="1.0.0")
    text = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "Validation runs" in text
    assert "Deployments" in text
    assert "replaced by 1.1.0" in text  # the retirement
    assert "version.stage_changed" in text  # the audit history


def test_the_rollback_admin_action_asks_for_a_reason_and_opens_a_request(client, admin_user,
                                                                         approver, promotion):
    client.force_login(approver)
    client.post(f"/admin/governance/approvalrequest/{promotion['request_id']}/decide/",
                {"approve": "Approve"})
    model = ModelVersion.objects.get(version="1.0.0").model
    client.force_login(admin_user)
    confirm = client.post("/admin/registry/registeredmodel/", {
        "action": "rollback_action", "_selected_action": [model.pk]})
    assert b"back to 1.0.0" in confirm.content
    done = client.post("/admin/registry/registeredmodel/", {
        "action": "rollback_action", "_selected_action": [model.pk], "apply": "1",
        "reason": "accuracy dropped"}, follow=True)
    assert "waits for approval" in done.content.decode()
    request = ApprovalRequest.objects.filter(kind="rollback").get()
    assert (request.version.version, request.reason) == ("1.0.0", "accuracy dropped")


def test_audit_events_are_read_only_in_the_admin(client, admin_user, promotion):
    from core.models import AuditEvent

    client.force_login(admin_user)
    event = AuditEvent.objects.first()
    assert client.get("/admin/core/auditevent/").status_code == 200
    assert client.post(f"/admin/core/auditevent/{event.pk}/change/",
                       {"reason": "x"}).status_code == 403
    assert client.post(f"/admin/core/auditevent/{event.pk}/delete/",
                       {"post": "yes"}).status_code == 403
    # Verifying writes (the verification is recorded): a POST, never a GET.
    assert client.get("/admin/core/auditevent/verify/").status_code == 405
    assert not AuditEvent.objects.filter(action="audit.verified").exists()
    verify = client.post("/admin/core/auditevent/verify/", follow=True)
    assert "Audit chain verified" in verify.content.decode()
    recorded = AuditEvent.objects.get(action="audit.verified")
    assert (recorded.actor_name, json.loads(recorded.after)["result"]) == ("ada", "intact")
    report = client.get("/admin/core/auditevent/report/?download=1&model=churn_prediction")
    assert b"audit report" in report.content


def test_hand_made_admin_urls_get_a_404_or_the_bad_filter_page_never_a_500(client, admin_user):
    client.force_login(admin_user)
    for url in ["/admin/monitoring/alert/abc/change/",
                "/admin/governance/approvalrequest/abc/change/",
                "/admin/governance/approvalrequest/99999999999999999999/change/"]:
        assert client.get(url).status_code == 404, url
    for url in ["/admin/monitoring/alert/?last_seen__year=99999999999999999999",
                "/admin/registry/modelversion/?created_at__year=-1",
                "/admin/core/auditevent/?occurred_at__year=2026&occurred_at__month=13"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].endswith("?e=1"), url
    for query in ["since=2026-02-30", "until=9999-12-31", "since=2026-01-01T25:00:00",
                  "since=2026-01-01T00:00:00%2B99:00"]:
        response = client.get(f"/admin/core/auditevent/report/?download=1&{query}",
                              follow=True)
        assert response.status_code == 200, query
        page = response.content.decode().lower()
        assert '<li class="error">since:' in page or '<li class="error">until:' in page, query
