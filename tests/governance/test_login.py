"""Failed logins are throttled and audited, at the token endpoint and the admin alike.

Time is ours: `login.clock` is replaced by a clock that moves only when a test says so.
"""

from __future__ import annotations

import json
import logging

import pytest
from rest_framework.test import APIClient

from core.models import AuditEvent
from governance import login
from tests import helpers
from tests.helpers import Unchanged

TOKEN = "/api/v1/auth/token/"
ADMIN_LOGIN = "/admin/login/"
HOME = "127.0.0.1"  # the test client's REMOTE_ADDR
ELSEWHERE = "10.0.0.2"
WRONG = "not-the-password"


class Clock:
    now = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(login, "clock", lambda: clock.now)
    return clock


def token(username, password=helpers.PASSWORD, address=HOME):
    return APIClient().post(TOKEN, {"username": username, "password": password},
                            format="json", REMOTE_ADDR=address)


def fail(username, times, address=HOME):
    for _ in range(times):
        assert token(username, WRONG, address).status_code == 401


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_six_bad_logins_then_429(data_scientist):
    fail("dana", 5)
    right = token("dana")
    assert right.status_code == 429
    assert right["Retry-After"] == "1"
    assert right.json() == {"status": 429, "code": "throttled", "errors": {},
                            "detail": "Too many failed logins; try again in 1 second."}
    with Unchanged():  # the password is not even looked at: no failure is recorded
        wrong = token("dana", WRONG)
    assert (wrong.status_code, wrong["Retry-After"], wrong.json()) == (
        429, right["Retry-After"], right.json())
    assert len(events("auth.login_failed")) == 5


def test_the_same_user_from_another_address_still_logs_in(data_scientist):
    fail("dana", 5)
    assert token("dana").status_code == 429
    assert token("dana", address=ELSEWHERE).status_code == 200


def test_a_forged_forwarded_for_header_does_not_change_the_address(settings, data_scientist):
    assert settings.TRUSTED_PROXY_COUNT == 0
    fail("dana", 5)
    dodge = APIClient().post(TOKEN, {"username": "dana", "password": helpers.PASSWORD},
                             format="json", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert dodge.status_code == 429


def test_behind_a_trusted_proxy_the_address_it_saw_counts(settings, data_scientist):
    settings.TRUSTED_PROXY_COUNT = 1

    def via_proxy(password, client_address):
        return APIClient().post(TOKEN, {"username": "dana", "password": password},
                                format="json", REMOTE_ADDR="10.0.0.1",
                                HTTP_X_FORWARDED_FOR=client_address)

    for _ in range(5):
        assert via_proxy(WRONG, "203.0.113.5").status_code == 401
    assert via_proxy(helpers.PASSWORD, "203.0.113.5").status_code == 429
    assert via_proxy(helpers.PASSWORD, "203.0.113.6").status_code == 200


def test_other_users_log_in_from_that_address_until_its_own_threshold(settings, data_scientist,
                                                                     viewer):
    assert settings.LOGIN_THROTTLE_PER_ADDRESS == 20
    fail("dana", 5)
    assert token("vic").status_code == 200
    for n in range(15):
        fail(f"nobody-{n}", 1)
    assert token("vic").status_code == 429
    assert token("vic", address=ELSEWHERE).status_code == 200


def test_after_the_wait_a_login_works_and_starts_afresh(clock, data_scientist):
    fail("dana", 5)
    assert token("dana").status_code == 429
    clock.advance(1)
    assert token("dana").status_code == 200
    fail("dana", 5)
    assert token("dana").status_code == 429


def test_each_failure_past_the_threshold_doubles_the_wait_up_to_the_cap(clock, settings,
                                                                       data_scientist):
    settings.LOGIN_THROTTLE_MAX_WAIT_SECONDS = 16
    fail("dana", 5)
    waits = []
    for _ in range(7):
        refused = token("dana", WRONG)
        assert refused.status_code == 429
        wait = int(refused["Retry-After"])
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert token("dana").status_code == 429  # not yet, right password or not
        clock.advance(0.5)
        assert token("dana", WRONG).status_code == 401
    assert waits == [1, 2, 4, 8, 16, 16, 16]


def test_knocking_while_throttled_does_not_prolong_the_wait(clock, data_scientist):
    fail("dana", 5)
    for _ in range(20):
        clock.advance(1 / 32)
        assert token("dana", WRONG).status_code == 429
    clock.advance(1 - 20 / 32)
    assert token("dana").status_code == 200


def test_many_addresses_against_one_user_are_slowed_but_not_at_her_usual_address(
        settings, data_scientist):
    assert settings.LOGIN_THROTTLE_PER_USER == 50
    assert token("dana", address="10.9.9.9").status_code == 200  # where she works
    for n in range(50):
        fail("dana", 1, address=f"10.1.{n // 250}.{n % 250 + 1}")
    assert token("dana", address="10.2.0.1").status_code == 429
    assert token("dana", address="10.9.9.9").status_code == 200


def test_the_admin_login_shares_the_rule_and_shows_a_form_error(client, clock, admin_user):
    fail("ada", 3)
    for _ in range(2):
        response = client.post(ADMIN_LOGIN, {"username": "ada", "password": WRONG})
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()
    refused = client.post(ADMIN_LOGIN, {"username": "ada", "password": helpers.PASSWORD})
    assert refused.status_code == 200
    assert "Too many failed logins; try again in 1 second." in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert token("ada").status_code == 429
    clock.advance(1)
    assert client.post(ADMIN_LOGIN, {"username": "ada", "password": helpers.PASSWORD}
                       ).status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_failed_logins_are_audited_with_username_and_address_never_the_password(
        data_scientist):
    response = token("dana", WRONG, address=ELSEWHERE)
    token("no-such-user", WRONG)
    assert token("dana").status_code == 200
    known, unknown = events("auth.login_failed")
    assert (known.actor_id, known.actor_name, known.object_id) == (
        None, "system", str(data_scientist.pk))
    assert json.loads(known.after) == {"username": "dana"}
    assert (known.client_ip, known.request_id) == (ELSEWHERE, response["X-Request-ID"])
    assert (unknown.object_id, json.loads(unknown.after), unknown.client_ip) == (
        "", {"username": "no-such-user"}, HOME)
    for event in AuditEvent.objects.all():
        assert WRONG not in str(vars(event)) and helpers.PASSWORD not in str(vars(event))


def test_admin_login_failures_are_audited_too(client, admin_user):
    client.post(ADMIN_LOGIN, {"username": "ada", "password": WRONG})
    [event] = events("auth.login_failed")
    assert json.loads(event.after) == {"username": "ada"} and event.client_ip == HOME


def test_a_throttled_attempt_is_audited_once_per_window(clock, data_scientist):
    fail("dana", 5)
    for _ in range(3):
        assert token("dana").status_code == 429
    [first] = events("auth.login_throttled")
    assert json.loads(first.after) == {"username": "dana", "limit": "user_and_address",
                                       "failures": 5, "retry_after": 1}
    assert first.client_ip == HOME
    clock.advance(1)
    fail("dana", 1)
    for _ in range(3):
        assert token("dana").status_code == 429
    assert [json.loads(e.after)["failures"] for e in events("auth.login_throttled")] == [5, 6]


def test_with_the_cache_down_a_login_still_works(settings, caplog, data_scientist):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    with caplog.at_level(logging.WARNING, logger="governance.login"):
        assert token("dana", WRONG).status_code == 401
        assert token("dana").status_code == 200
    assert "login throttle unavailable" in caplog.text
    assert len(events("auth.login_failed")) == 1
