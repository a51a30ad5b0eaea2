"""Hostile input to the governance API: a 400 naming what is wrong (a 404 for an id no row can
have), never a 500, and nothing changed."""

from __future__ import annotations

import pytest
from django.urls import resolve
from django.utils import timezone

from core.limits import MAX_BIGINT
from monitoring.models import Alert, AlertRule
from tests.helpers import Unchanged


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


TOO_DEEP_TO_PARSE = f'{{"a": {nested(100_000)}}}'
ONE_LEVEL_TOO_DEEP = f'{{"to_stage": "production", "x": {nested(64)}}}'


def _errors(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:300]
    return response.json()["errors"]


def _raw(client, url: str, body: str, method: str = "post"):
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.fixture
def alert(churn_model):
    rule = AlertRule.objects.get(model=None, metric="error_rate")
    now = timezone.now()
    return Alert.objects.create(rule=rule, model=churn_model, severity="warning", title="t",
                                value=1.0, threshold=0.5, first_seen=now, last_seen=now)


@pytest.mark.parametrize("body", [TOO_DEEP_TO_PARSE, ONE_LEVEL_TOO_DEEP])
def test_a_deeply_nested_body_is_a_400_naming_the_body(api, data_scientist, approver, admin_user,
                                                      promotion, alert, body):
    request_id = promotion["request_id"]
    calls = [
        (data_scientist, "/api/v1/models/churn_prediction/versions/1.1.0/transitions/"),
        (approver, f"/api/v1/approvals/{request_id}/approve"),
        (approver, f"/api/v1/approvals/{request_id}/reject"),
        (admin_user, "/api/v1/models/churn_prediction/rollback/"),
        (admin_user, "/api/v1/models/churn_prediction/rollout/"),
        (admin_user, f"/api/v1/alerts/{alert.pk}/acknowledge"),
        (admin_user, "/api/v1/alert-rules/"),
    ]
    for person, url in calls:
        with Unchanged():
            response = _raw(api(person), url, body)
        assert list(_errors(response)) == ["body"], url
        assert "nested more than 64 levels" in response.json()["detail"], url
    alert.refresh_from_db()
    assert alert.status == "open"


IDS = [0, MAX_BIGINT + 1, 10**20, 10**30]
ID_URLS = ["/api/v1/approvals/{}/", "/api/v1/approvals/{}/approve", "/api/v1/deployments/{}/",
           "/api/v1/alerts/{}/", "/api/v1/alerts/{}/resolve", "/api/v1/alert-rules/{}/"]


@pytest.mark.parametrize("pattern", ID_URLS)
def test_an_id_outside_the_databases_range_matches_no_url(pattern):
    for number in IDS:
        # Only the catch-all that answers unknown API paths with a JSON 404 matches it.
        assert resolve(pattern.format(number)).url_name == "api-unknown"
    assert resolve(pattern.format(MAX_BIGINT)).kwargs == {"pk": MAX_BIGINT}


@pytest.mark.parametrize("pattern", ID_URLS)
def test_a_huge_id_is_a_404_not_a_500(api, approver, pattern):
    client = api(approver)
    for number in [*IDS, MAX_BIGINT]:
        url = pattern.format(number)
        with Unchanged():
            response = (client.post(url, {"comment": "x"}, format="json")
                        if not url.endswith("/") else client.get(url))
        assert response.status_code == 404, (url, response.content[:200])


@pytest.mark.parametrize("value", [2**31, 2**63, 99999999999999999999])
@pytest.mark.parametrize("field", ["min_rows", "window_minutes", "resolve_after_runs"])
def test_an_integer_beyond_the_column_is_a_400_naming_the_field(api, admin_user, churn_model,
                                                               field, value):
    rule = AlertRule.objects.get(model=None, metric="error_rate")
    before = {f: getattr(rule, f) for f in ("min_rows", "window_minutes", "resolve_after_runs")}
    client = api(admin_user)
    with Unchanged():
        changed = client.patch(f"/api/v1/alert-rules/{rule.pk}/", {field: value}, format="json")
        created = client.post("/api/v1/alert-rules/", {
            "model": "churn_prediction", "metric": "latency_p99", "threshold": 500,
            field: value}, format="json")
    assert list(_errors(changed)) == [field]
    assert list(_errors(created)) == [field]
    rule.refresh_from_db()
    assert {f: getattr(rule, f) for f in before} == before
    assert not AlertRule.objects.filter(model=churn_model).exists()


def test_the_service_refuses_a_row_count_beyond_the_column(admin_user, churn_model):
    """The admin's form goes through the same service as the API."""
    from core.errors import ApplicationError
    from monitoring import services as monitoring_services

    with pytest.raises(ApplicationError) as refused, Unchanged():
        monitoring_services.alert_rule_save(actor=admin_user, model=churn_model, metric="latency_p99",
                                 threshold=500.0, min_rows=2**31)
    assert refused.value.field == "min_rows"
    assert not AlertRule.objects.filter(model=churn_model).exists()


DATES = [
    "2026-01-01T00:00:00+99:00", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00-25:30",
    "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:30:00-01:00", "yesterday",
]


@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize("url", ["/api/v1/audit/", "/api/v1/audit/report/",
                                 "/api/v1/audit/report/?output=csv"])
def test_an_audit_date_out_of_range_is_a_400_naming_the_parameter(api, approver, url, param):
    for value in DATES:
        response = api(approver).get(url, {param: value})
        assert list(_errors(response)) == [param], value


@pytest.mark.parametrize("url", ["/api/v1/audit/", "/api/v1/audit/report/?output=csv"])
def test_audit_dates_with_large_valid_offsets_or_no_time_work(api, approver, churn_model, url):
    client = api(approver)
    for params in ({"since": "2000-01-01T00:00:00+20:00"}, {"until": "2999-01-01T00:00:00-23:59"},
                   {"since": "2000-01-01"}):
        response = client.get(url, params)
        assert response.status_code == 200, (params, response.content[:300])
        text = (b"".join(response.streaming_content).decode() if response.streaming
                else response.content.decode())
        assert "model.created" in text, params
