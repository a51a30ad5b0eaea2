"""Ground truth, matched to the rows of an answered request."""

from __future__ import annotations

import json

from predictions.models import Feedback


def _predict(service, rows=3):
    body = json.dumps({"inputs": [[1.0, 2.0, 3.0]] * rows})
    response = service.post("/api/v1/models/churn_prediction/predict/", body,
                            content_type="application/json")
    return response.json()["request_id"]


def _feedback(client, request_id, items):
    return client.post(f"/api/v1/predictions/{request_id}/feedback/",
                       json.dumps({"feedback": items}), content_type="application/json")


def test_feedback_is_recorded_for_the_rows_of_a_request(served, service):
    served()
    request_id = _predict(service)
    response = _feedback(service, request_id, [{"row": 0, "actual": 1},
                                               {"row": 2, "actual": 0}])
    assert response.status_code == 201, response.json()
    assert response.json() == {"request_id": request_id, "recorded": 2}
    assert sorted(Feedback.objects.values_list("row_index", "actual")) == [(0, 1), (2, 0)]


def test_bad_feedback_changes_nothing(served, service, api, viewer):
    served()
    request_id = _predict(service)
    cases = [
        ("0" * 32, [{"row": 0, "actual": 1}], 404),
        (request_id, [{"row": 3, "actual": 1}], 400),
        (request_id, [{"row": 0}], 400),
        (request_id, [{"row": 0, "actual": None}], 400),
        (request_id, [], 400),
        (request_id, [{"row": 1, "actual": 1}, {"row": 1, "actual": 0}], 400),
    ]
    for rid, items, status in cases:
        assert _feedback(service, rid, items).status_code == status, items
    assert _feedback(api(viewer), request_id, [{"row": 0, "actual": 1}]).status_code == 403
    assert not Feedback.objects.exists()


def test_ground_truth_is_not_overwritten(served, service):
    served()
    request_id = _predict(service)
    assert _feedback(service, request_id, [{"row": 0, "actual": 1}]).status_code == 201
    again = _feedback(service, request_id, [{"row": 0, "actual": 0}])
    assert again.status_code == 409
    assert Feedback.objects.get().actual == 1


def test_another_service_cannot_report_on_someone_elses_requests(served, service,
                                                                 django_user_model,
                                                                 admin_user):
    from rest_framework.test import APIClient

    from core import roles
    from predictions import services
    from tests.conftest import _person

    served()
    request_id = _predict(service)
    other = _person(django_user_model, "other-service", roles.SERVICE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + services.api_token_create(
        user=other, name="other", actor=admin_user)[1])
    assert _feedback(client, request_id, [{"row": 0, "actual": 1}]).status_code == 404
    assert not Feedback.objects.exists()


def test_an_outcome_must_be_a_finite_number_or_a_label(served, service):
    served()
    request_id = _predict(service)
    for body in ('{"feedback": [{"row": 0, "actual": NaN}]}',
                 '{"feedback": [{"row": 0, "actual": Infinity}]}',
                 '{"feedback": [{"row": 0, "actual": ""}]}'):
        response = service.post(f"/api/v1/predictions/{request_id}/feedback/", body,
                                content_type="application/json")
        assert response.status_code == 400, body
    assert not Feedback.objects.exists()
