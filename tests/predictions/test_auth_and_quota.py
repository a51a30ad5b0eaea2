"""Who may call the prediction API, with what, and how often."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from core.models import AuditEvent
from predictions import auth, logs
from predictions.models import ApiToken, RateLimit
from tests import helpers

URL = "/api/v1/models/churn_prediction/predict/"
BODY = json.dumps({"inputs": [[1.0, 2.0, 3.0]]})


def _post(client, **headers):
    return client.post(URL, BODY, content_type="application/json", **headers)


def test_a_request_without_credentials_is_unauthorised(served):
    served()
    response = _post(APIClient())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert logs.flush() == 0


def test_a_forged_or_revoked_token_is_refused(served, service_token, service, admin_user):
    from predictions import services

    served()
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=service_token[:-4] + "AAAA")
    assert _post(forged).status_code == 401
    assert _post(service).status_code == 200
    services.api_token_revoke(token=ApiToken.objects.get(), actor=admin_user)
    auth.forget()  # the revocation reaches the other processes within the cache lifetime
    assert _post(service).status_code == 401


def test_tokens_are_stored_hashed_and_their_creation_audited(service_token):
    token = ApiToken.objects.get()
    assert service_token not in (token.prefix, token.digest)
    assert token.digest == auth.digest(service_token)
    assert AuditEvent.objects.filter(action="api_token.created").count() == 1


def test_people_with_a_jwt_may_predict_but_not_an_outsider(api, served, viewer, outsider):
    served()
    assert _post(api(viewer)).status_code == 200
    assert _post(api(outsider)).status_code == 403


def test_a_service_account_reads_nothing_it_was_not_granted(service, served):
    served()
    assert service.get("/api/v1/models/").json()["count"] == 0
    assert service.get("/api/v1/models/churn_prediction/").status_code == 404
    assert service.get("/api/v1/approvals/").status_code == 403
    assert service.get("/api/v1/audit/").status_code == 403


def test_past_the_hourly_quota_the_answer_is_429_with_retry_after(served, service, group_limit):
    served()
    group_limit("service", 3)
    assert [_post(service).status_code for _ in range(3)] == [200, 200, 200]
    refused = _post(service)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3601
    assert "More than 3 predictions this hour" in refused.json()["detail"]
    assert logs.flush() == 3


def test_a_users_own_limit_wins_over_the_groups(served, service, service_account,
                                                group_limit):
    served()
    group_limit("service", 1)
    RateLimit.objects.create(user=service_account, requests_per_hour=2)
    assert [_post(service).status_code for _ in range(3)] == [200, 200, 429]


def test_the_default_quota_is_a_thousand_an_hour(settings):
    assert settings.PREDICTION_RATE_LIMIT_PER_HOUR == 1000


def test_the_command_line_makes_a_token_that_works(served, service_account, admin_user,
                                                   capsys):
    from django.core.management import call_command

    served()
    call_command("create_api_token", "--user", "loans-service", "--name", "batch",
                 "--by", "ada", "--days", "30")
    plain = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {plain}")
    assert _post(client).status_code == 200
    assert ApiToken.objects.get(name="batch").expires_at is not None


def test_making_a_token_in_the_admin_shows_it_once(client, admin_user, service_account):
    client.force_login(admin_user)
    response = client.post("/admin/predictions/apitoken/add/", {
        "user": service_account.pk, "name": "dashboard"}, follow=True)
    text = response.content.decode()
    assert "copy it now" in text
    token = ApiToken.objects.get(name="dashboard")
    assert f"mgt_{token.prefix}_" in text


def test_a_quota_set_in_the_admin_is_audited(client, admin_user, service_account):
    client.force_login(admin_user)
    response = client.post("/admin/predictions/ratelimit/add/", {
        "user": service_account.pk, "requests_per_hour": "50"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RateLimit.objects.get().requests_per_hour == 50
    event = AuditEvent.objects.get(action="rate_limit.created")
    assert event.actor_name == "ada" and '"requests_per_hour":50' in event.after


def _login(username, password=helpers.PASSWORD):
    response = APIClient().post("/api/v1/auth/token/", {"username": username,
                                                        "password": password}, format="json")
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_the_prediction_api_refuses_them_too_once_its_cache_is_past(served, viewer, change):
    served()
    old = _login("vic")
    assert _post(old).status_code == 200
    if change == "password":
        viewer.set_password("a-brand-new-password-2")
    else:
        viewer.is_active = False
    viewer.save()
    auth.forget()  # what PREDICTION_AUTH_CACHE_SECONDS later does in every process
    assert _post(old).status_code == 401


def test_a_cached_user_neither_refuses_a_new_token_nor_keeps_an_old_one(settings, served,
                                                                        viewer):
    settings.PREDICTION_AUTH_CACHE_SECONDS = 3600
    served()
    old = _login("vic")
    assert _post(old).status_code == 200  # now cached
    viewer.set_password("a-brand-new-password-2")
    viewer.save()
    new = _login("vic", "a-brand-new-password-2")
    assert _post(new).status_code == 200
    assert _post(old).status_code == 401
