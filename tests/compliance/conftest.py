"""Compliance fixtures: a prediction answered by a version that went the whole way through
the real services (register, validate, request, approve, deploy, predict)."""

from __future__ import annotations

import pytest

from core import roles
from tests import helpers
from tests.conftest import _person

APPROVAL_COMMENT = "Checked the November backtest; recall holds at 0.79"
ROWS = [[12.0, 3.0, 0.0], [40.0, 0.0, 1.0]]


@pytest.fixture
def cora(db, django_user_model):
    """The compliance officer of the demo: a staff viewer, who reads every team's models."""
    return _person(django_user_model, "cora", roles.VIEWER, is_staff=True, first_name="Cora")


@pytest.fixture
def traced(api, data_scientist, approver, churn_model, settings):
    """traced(sample_rate=1.0) -> {"request_id", "version", "request", "sha256"}: churn_prediction
    1.0.0 registered and validated, moved to staging, requested for production by dana,
    approved by april with APPROVAL_COMMENT, deployed, then asked to predict by dana."""

    def make(sample_rate: float = 1.0) -> dict:
        from governance.models import ApprovalRequest
        from predictions import logs

        version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
        client = api(data_scientist)
        base = "/api/v1/models/churn_prediction/versions/1.0.0/transitions/"
        response = client.post(base, {"to_stage": "staging", "reason": "ready for review"},
                               format="json")
        assert response.status_code == 202, response.json()
        response = client.post(base, {"to_stage": "production",
                                      "reason": "Better on November data"}, format="json")
        assert response.status_code == 202, response.json()
        request = ApprovalRequest.objects.get(pk=response.json()["request"]["id"])
        response = api(approver).post(f"/api/v1/approvals/{request.pk}/approve",
                                      {"comment": APPROVAL_COMMENT}, format="json")
        assert response.json()["deployment"]["status"] == "completed", response.json()

        settings.PREDICTION_LOG_SAMPLE_RATE = sample_rate
        response = client.post("/api/v1/models/churn_prediction/predict/", {"inputs": ROWS},
                               format="json")
        assert response.status_code == 200, response.content
        assert logs.flush() == 1
        return {"request_id": response.json()["request_id"], "version": version,
                "request": request, "sha256": helpers.sha256(helpers.sklearn_bytes()),
                "predictions": response.json()["predictions"]}

    return make
