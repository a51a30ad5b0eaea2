"""The admin's home page: what waits for the person logged in, and how their models are doing.

dana (data scientist) and april (approver) are in `loans`, which owns churn_prediction; sam
(data scientist) and bea (approver) are in `growth`, which owns fraud_scoring. vic (viewer)
reads everything and decides nothing.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from core import roles
from governance import services as governance
from governance.models import Policy
from monitoring.models import Alert, AlertRule, MonitoringRun
from registry import services
from registry.models import Team
from tests import helpers
from tests.conftest import _person

pytestmark = pytest.mark.django_db


def _model_with_request(name: str, team: str, author):
    """A model of `team` with 1.0.0 in production and 1.1.0 asked for by `author`."""
    services.model_create(name=name, task_type="classification", owner=author, actor=author,
                          team_name=team)
    old = helpers.register_direct(name, "1.0.0", actor=author)
    helpers.force_stage(old, "production")
    new = helpers.register_direct(name, "1.1.0", actor=author)
    helpers.force_stage(new, "staging")
    helpers.mark_validated(new)
    outcome = governance.transition_request(version=new, to_stage="production", actor=author,
                                            reason="better")
    return old, outcome.request


@pytest.fixture
def fleet(data_scientist, approver, other_data_scientist, viewer, django_user_model):
    loans, growth = Team.objects.create(name="loans"), Team.objects.create(name="growth")
    bea = _person(django_user_model, "bea", roles.APPROVER, is_staff=True)
    loans.members.add(data_scientist, approver)
    growth.members.add(other_data_scientist, bea)
    viewer.is_staff = True
    viewer.save()
    churn, churn_request = _model_with_request("churn_prediction", "loans", data_scientist)
    fraud, fraud_request = _model_with_request("fraud_scoring", "growth", other_data_scientist)
    return {"churn": churn, "churn_request": churn_request, "fraud": fraud,
            "fraud_request": fraud_request, "bea": bea}


def _home(client, user) -> str:
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, name: str) -> str:
    match = re.search(rf'<section id="dash-{name}".*?</section>', page, re.S)
    assert match, f"no {name} section"
    return match.group(0)


def _requests_shown(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-request="(\d+)"', _section(page, "decide"))}


def test_an_approver_sees_the_request_she_may_decide_with_its_age_and_a_link(client, approver,
                                                                          fleet):
    request = fleet["churn_request"]
    page = _home(client, approver)
    assert _requests_shown(page) == {request.pk}  # not growth's request
    decide = _section(page, "decide")
    assert f'href="/admin/governance/approvalrequest/{request.pk}/change/"' in decide
    assert "churn_prediction 1.1.0" in decide and "dana" in decide
    assert re.search(r"\d+\xa0minutes?", decide)  # how long it has waited


def test_another_teams_approver_sees_only_hers(client, fleet):
    assert _requests_shown(_home(client, fleet["bea"])) == {fleet["fraud_request"].pk}


def test_an_approver_does_not_see_a_request_she_asked_for(client, data_scientist, fleet):
    # dana also approves now, but she asked for churn's move: four eyes.
    data_scientist.groups.add(Group.objects.get(name=roles.APPROVER))
    data_scientist.is_staff = True
    data_scientist.save()
    page = _home(client, data_scientist)
    assert _requests_shown(page) == set()
    assert "Nothing waits for you" in page


def test_a_viewer_sees_no_request_to_decide_but_every_model(client, viewer, fleet):
    page = _home(client, viewer)
    assert _requests_shown(page) == set()
    production = _section(page, "production")
    assert 'data-model="churn_prediction"' in production
    assert 'data-model="fraud_scoring"' in production


def test_a_request_she_has_approved_leaves_her_list_while_it_waits_for_another(
        client, approver, data_scientist, django_user_model):
    Policy.objects.filter(model__isnull=True).update(approvals_required=2)
    Team.objects.create(name="loans").members.add(data_scientist, approver)
    _old, request = _model_with_request("churn_prediction", "loans", data_scientist)
    assert _requests_shown(_home(client, approver)) == {request.pk}
    governance.approval_decide(request=request, actor=approver, decision="approve")
    request.refresh_from_db()
    assert request.status == "pending"
    assert _requests_shown(_home(client, approver)) == set()


def test_open_alerts_are_counted_by_severity_for_the_persons_models_only(client, approver,
                                                                       fleet):
    now = timezone.now()
    for version, severity in [(fleet["churn"], "critical"), (fleet["fraud"], "warning")]:
        rule = AlertRule.objects.create(model=version.model, metric="latency_p99",
                                        threshold=1.0, severity=severity)
        Alert.objects.create(rule=rule, model=version.model, severity=severity,
                             title=f"{version.model.name} is slow", value=2.0, threshold=1.0,
                             first_seen=now, last_seen=now)
    alerts = _section(_home(client, approver), "alerts")
    counts = dict(re.findall(r'data-severity="(\w+)"><a [^>]*><b>(\d+)</b>', alerts))
    assert counts == {"critical": "1", "warning": "0", "info": "0"}
    assert "churn_prediction is slow" in alerts and "fraud_scoring" not in alerts
    alert = Alert.objects.get(model__name="churn_prediction")
    assert f'href="/admin/monitoring/alert/{alert.pk}/change/"' in alerts


def test_models_in_production_show_their_monitoring_state_and_last_deployment(client,
                                                                             approver, fleet):
    churn = fleet["churn"]
    MonitoringRun.objects.create(model=churn.model, version=churn, route="production",
                                 status="alerting", created_at=timezone.now())
    production = _section(_home(client, approver), "production")
    row = re.search(r'<tr data-model="churn_prediction">.*?</tr>', production, re.S).group(0)
    assert f'href="/admin/registry/modelversion/{churn.pk}/change/"' in row
    assert f'href="/admin/monitoring/monitoringrun/model/{churn.model.pk}/"' in row
    assert "alerting" in row
    deployment = churn.deployments.get(to_stage="production")
    assert f'href="/admin/governance/deployment/{deployment.pk}/change/"' in row
    assert "fraud_scoring" not in production


def test_recent_deployments_link_to_their_pages(client, approver, fleet):
    recent = _section(_home(client, approver), "deployments")
    shown = {int(pk) for pk in re.findall(r'data-deployment="(\d+)"', recent)}
    churn = set(fleet["churn"].model.deployments.values_list("pk", flat=True))
    assert shown and shown <= churn  # newest first, growth's left out
    for pk in shown:
        assert f'href="/admin/governance/deployment/{pk}/change/"' in recent


def test_the_last_verification_of_the_chain_shows_its_counts_to_those_who_read_everything(
        client, approver, admin_user, fleet):
    assert "Never verified yet" in _section(_home(client, admin_user), "chain")
    call_command("verify_audit", stdout=open("/dev/null", "w"))
    from core.models import AuditEvent

    event = AuditEvent.objects.get(action="audit.verified")
    chain = _section(_home(client, admin_user), "chain")
    assert "intact" in chain and "by system" in chain
    assert f'href="/admin/core/auditevent/{event.pk}/change/"' in chain
    assert f"{event.seq - 1} events checked" in chain
    # An approver learns that it held, not how many events every team has.
    chain = _section(_home(client, approver), "chain")
    assert "intact" in chain and "events checked" not in chain
    assert "/admin/core/auditevent/" + str(event.pk) not in chain


def test_the_home_page_is_the_projects_and_keeps_every_page_reachable(client, approver,
                                                                     fleet):
    page = _home(client, approver)
    assert "Model governance" in page and "Django administration" not in page
    every = page[page.index('id="every-page"'):]
    for url in ("/admin/governance/approvalrequest/", "/admin/monitoring/alert/",
                "/admin/core/auditevent/"):
        assert f'href="{url}"' in every


def test_the_dashboards_alert_links_filter_the_alert_list(client, approver, fleet):
    client.force_login(approver)
    response = client.get("/admin/monitoring/alert/?status__in=open,acknowledged"
                          "&severity__exact=critical")
    assert response.status_code == 200  # not the "incorrect filter" redirect


def test_the_number_of_queries_does_not_grow_with_the_fleet(client, approver, data_scientist,
                                                            fleet):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _home(client, approver)
        return len(captured)

    queries()  # the first page of a session also loads what Django caches (content types)
    before = queries()
    old, _request = _model_with_request("overdue_prediction", "loans", data_scientist)
    MonitoringRun.objects.create(model=old.model, version=old, route="production",
                                 status="ok", created_at=timezone.now())
    assert len(_requests_shown(_home(client, approver))) == 2
    assert queries() == before
