"""The same transition or decision sent many times at once: one succeeds, the others are told
409, and none meets a deadlock (a 500). Real row locks: PostgreSQL only."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections

from core.models import AuditEvent
from governance.models import ApprovalRequest, Deployment
from registry.models import ModelVersion

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE = "/api/v1/models/churn_prediction"
RACERS = 8


def all_at_once(*calls):
    """Each call in its own thread (so its own database connection), released together;
    their responses in order."""
    barrier = threading.Barrier(len(calls))
    responses = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            responses[index] = call()
        finally:
            connections.close_all()  # this thread's connection, not the test's

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def _statuses(responses) -> Counter:
    return Counter(response.status_code for response in responses)


def _post(client, url, body):
    return lambda: client.post(url, body, format="json")


@pytest.mark.parametrize(("start", "target"), [("experiment", "staging"),
                                               ("staging", "production")])
def test_identical_transitions_at_once_give_one_202_and_409s(api, data_scientist, validated,
                                                             start, target):
    # Several versions, one race each: a deadlock needs a particular interleaving.
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    for number in versions:
        validated(number, stage=start)
    for number in versions:
        url = f"{BASE}/versions/{number}/transitions/"
        responses = all_at_once(*[_post(api(data_scientist), url, {"to_stage": target})
                                  for _ in range(RACERS)])
        assert _statuses(responses) == {202: 1, 409: RACERS - 1}, [
            (r.status_code, r.json()) for r in responses if r.status_code not in (202, 409)]
        # Refused because the first one is under way, not because of a lost race.
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"conflict"}
    if target == "staging":  # no approval: each was deployed, once
        assert set(ModelVersion.objects.values_list("stage", flat=True)) == {"staging"}
        assert Deployment.objects.filter(to_stage="staging", status="completed").count() == 3
        assert AuditEvent.objects.filter(action="deployment.requested").count() == 3
    else:
        assert ApprovalRequest.objects.filter(status="pending").count() == 3
        assert AuditEvent.objects.filter(action="request.created").count() == 3


@pytest.fixture
def approvers(approver, second_approver, django_user_model):
    from core import roles
    from tests.conftest import _person

    return [approver, second_approver] + [
        _person(django_user_model, f"approver{i}", roles.APPROVER) for i in range(RACERS - 2)]


def test_approvers_deciding_at_once_give_one_decision_and_409s(api, approvers, promotion):
    url = f"/api/v1/approvals/{promotion['request_id']}/approve"
    responses = all_at_once(*[_post(api(person), url, {"comment": "ok"})
                              for person in approvers])
    assert _statuses(responses) == {200: 1, 409: RACERS - 1}, [r.json() for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"request_closed"}
    assert ModelVersion.objects.get(version="1.1.0").stage == "production"
    assert AuditEvent.objects.filter(action="request.approval_given").count() == 1


def test_the_same_approver_at_once_gives_one_decision_and_409s(api, approver, promotion):
    url = f"/api/v1/approvals/{promotion['request_id']}/approve"
    responses = all_at_once(*[_post(api(approver), url, {"comment": "ok"})
                              for _ in range(RACERS)])
    assert _statuses(responses) == {200: 1, 409: RACERS - 1}, [r.json() for r in responses]
    assert ModelVersion.objects.get(version="1.1.0").stage == "production"
    assert AuditEvent.objects.filter(action="request.approval_given").count() == 1


def test_a_deadlock_that_still_happens_is_a_409_try_again(data_scientist, other_data_scientist):
    """Two transactions that lock two rows in opposite orders: PostgreSQL aborts one with a
    real deadlock error, which the API's error handler turns into a 409."""
    from django.db import OperationalError, transaction

    from core.errors import exception_handler
    from registry.models import RegisteredModel
    from tests import helpers

    rows = [helpers.create_model(owner=data_scientist, name="first").pk,
            helpers.create_model(owner=other_data_scientist, name="second").pk]
    barrier = threading.Barrier(2)
    errors = []

    def lock_both(order):
        try:
            with transaction.atomic():
                RegisteredModel.objects.select_for_update().get(pk=order[0])
                barrier.wait()
                RegisteredModel.objects.select_for_update().get(pk=order[1])
        except OperationalError as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    all_at_once(lambda: lock_both(rows), lambda: lock_both(rows[::-1]))
    assert len(errors) == 1, errors
    response = exception_handler(errors[0], {"view": None})
    assert response.status_code == 409
    assert response.data["code"] == "concurrent_change"
    assert "try again" in response.data["detail"]
