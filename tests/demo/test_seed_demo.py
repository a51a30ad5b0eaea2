"""`manage.py seed_demo`: five trained models over the stages, loadable, and safe to rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from registry import load_model
from registry.models import ModelVersion, RegisteredModel
from registry.reconcile import reconcile

pytestmark = pytest.mark.django_db

EXPECTED = {
    "overdue_prediction": {"0.9.2": "archived", "1.0.0": "production", "1.1.0": "staging"},
    "churn_prediction": {"0.7.3": "archived", "1.0.0": "production", "1.1.0": "experiment"},
    "recommendation_engine": {"1.0.0": "production", "1.2.0": "staging"},
    "member_segmentation": {"1.0.0": "production", "1.1.0": "experiment"},
    "demand_forecasting": {"1.0.0": "production", "1.1.0": "experiment"},
}


def test_seed_demo_registers_five_trained_models_that_predict_even_when_interrupted(
        store_root, capsys, monkeypatch):
    """The demo is seeded the way `make run` may meet it: interrupted twice, then run again,
    which finishes it (a half-seeded model is finished, not skipped). One test, since a full
    seeding costs a minute or two."""
    output = _seed_interrupted_twice(monkeypatch, capsys)
    assert "finishing what an interrupted run began" in output
    assert ModelVersion.objects.count() == 12
    # A fresh demo has traffic whose request ids trace to the approval that made them live.
    from compliance.trace import prediction_trace
    from predictions.models import PredictionLog

    traced = output.rsplit("A request id to trace", 1)[1].split("\n")[0].rsplit(": ", 1)[1]
    assert PredictionLog.objects.filter(request_id=traced).exists()
    cora = get_user_model().objects.get(username="cora")
    chain = json.dumps(prediction_trace(request_id=traced, user=cora), default=str)
    assert "april" in chain and "overdue_prediction" in chain

    stages = {
        name: dict(ModelVersion.objects.filter(model__name=name).values_list("version", "stage"))
        for name in EXPECTED
    }
    assert stages == EXPECTED
    forest = ModelVersion.objects.get(model__name="overdue_prediction", version="1.0.0")
    assert forest.algorithm == "RandomForestClassifier"
    assert 0.5 < forest.metrics["accuracy"] <= 1.0
    assert {"precision", "recall", "f1_score", "auc_roc"} <= set(forest.metrics)

    for name in EXPECTED:
        version = ModelVersion.objects.get(model__name=name, stage="production")
        loaded = load_model(name, stage="production")
        rows = np.asarray(version.input_example, dtype=float)
        predictions = loaded.predict(rows)
        assert len(predictions) == len(rows)
        assert np.all(np.isfinite(np.asarray(predictions, dtype=float)))

    churn = ModelVersion.objects.get(model__name="churn_prediction", version="0.7.3")
    roles = [f.role for f in churn.files.all()]
    assert roles[:3] == ["model", "preprocessor", "reference"]
    # Validation measured it on the labelled held-out rows (governance.evaluation).
    assert {f.filename for f in churn.files.all() if f.role == "evaluation"} >= {
        "evaluation/metrics.json", "evaluation/confusion_matrix.png", "evaluation/roc_curve.png"}
    assert churn.evaluation["metrics"]["accuracy"] > 0.5
    from governance.models import ValidationCheck

    # The demo's claimed metrics were measured on those rows: every claim holds.
    claims = ValidationCheck.objects.filter(name="claimed_metrics")
    assert claims.exists()
    assert not claims.filter(status__in=["failed", "warning"]).exists(), \
        list(claims.exclude(status="passed").values_list("detail", flat=True))
    # Every production version has a reference profile (its held-out rows), predictions too.
    from governance.models import ReferenceProfile

    profiles = ReferenceProfile.objects.filter(version__stage="production")
    assert profiles.count() == 5
    assert all(p.predictions and p.predicted_rows > 0 for p in profiles)
    folder = Path(store_root) / "production" / "demand_forecasting" / "v1.0.0"
    assert json.loads((folder / "metadata.json").read_text())["framework"] == "torch"
    overdue = ModelVersion.objects.get(model__name="overdue_prediction", stage="production")
    assert set(overdue.model_card) == {"intended_use", "out_of_scope_uses", "training_data",
                                       "evaluation_data", "limitations",
                                       "ethical_considerations"}
    card = Path(store_root) / "production" / "overdue_prediction" / "v1.0.0" / "model_card.md"
    assert overdue.model_card["limitations"] in card.read_text()
    assert reconcile() == []

    _the_service_account_gets_answers_from_every_model_over_both_protocols(capsys)

    # The inventory: every model's tier set by april, one overdue review with one alert.
    from monitoring.models import ACTIVE_ALERT, Alert, AlertMetric

    assert set(RegisteredModel.objects.values_list("risk_tier", flat=True)) == {
        "low", "medium", "high"}
    overdue = Alert.objects.filter(ACTIVE_ALERT, rule__metric=AlertMetric.REVIEW_OVERDUE)
    assert [a.model.name for a in overdue] == ["overdue_prediction"]

    call_command("seed_demo")
    assert "already seeded" in capsys.readouterr().out
    assert RegisteredModel.objects.count() == 5
    assert ModelVersion.objects.count() == 12
    assert Alert.objects.filter(rule__metric=AlertMetric.REVIEW_OVERDUE).count() == 1


def _the_service_account_gets_answers_from_every_model_over_both_protocols(capsys):
    """What `make run` sets up: loans-service with an API token, answered by each model."""
    from rest_framework.test import APIClient

    capsys.readouterr()
    call_command("create_admin")
    call_command("create_api_token", "--user", "loans-service", "--name", "demo", "--by",
                 "admin", "--once")
    token = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert token.startswith("mgt_")
    call_command("create_api_token", "--user", "loans-service", "--name", "demo", "--by",
                 "admin", "--once")
    assert "already has the API token" in capsys.readouterr().out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for name in EXPECTED:
        version = ModelVersion.objects.get(model__name=name, stage="production")
        rows = version.input_example
        rest = client.post(f"/api/v1/models/{name}/predict/", {"inputs": rows}, format="json")
        assert rest.status_code == 200, (name, rest.content)
        assert (rest.json()["version"], len(rest.json()["predictions"])) == ("1.0.0", len(rows))
        flat = [value for row in rows for value in row]
        v2 = client.post(f"/v2/models/{name}/infer", {"inputs": [{
            "name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64",
            "data": flat}]}, format="json")
        assert v2.status_code == 200, (name, v2.content)
        assert v2.json()["outputs"][0]["shape"][0] == len(rows)


def _seed_interrupted_twice(monkeypatch, capsys) -> str:
    """Ctrl-C in the middle of a folder move, then in the middle of a model's registrations,
    then a run to the end; returns what the last run printed."""
    from governance import services
    from governance.models import ApprovalRequest, Deployment
    from registry import services as registry_services

    real_deploy = services.deployment_execute
    deploys = []

    def deploy_interrupted_at_the_fourth(pk, checkpoint=None):
        deploys.append(pk)
        if len(deploys) == 4:  # overdue_prediction 1.0.0 replacing 0.9.2: two folders to move

            def interrupt(step):
                if step == 0:  # after the first folder moved
                    raise KeyboardInterrupt
            return real_deploy(pk, checkpoint=interrupt)
        return real_deploy(pk)

    monkeypatch.setattr(services, "deployment_execute", deploy_interrupted_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        call_command("seed_demo")
    monkeypatch.undo()
    assert Deployment.objects.filter(status="moving").count() == 1

    real_register = registry_services.version_register
    registrations = []

    def register_interrupted_at_the_third(**kwargs):
        registrations.append(kwargs["version"])
        if len(registrations) == 3:  # the second model's second version
            raise KeyboardInterrupt
        return real_register(**kwargs)

    monkeypatch.setattr(registry_services, "version_register", register_interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        call_command("seed_demo")
    monkeypatch.undo()
    assert not Deployment.objects.filter(status="moving").exists()

    capsys.readouterr()
    call_command("seed_demo")
    output = capsys.readouterr().out
    pending = ApprovalRequest.objects.filter(status="pending")
    assert [(r.version.model.name, r.version.version) for r in pending] == [
        ("overdue_prediction", "1.1.0")]
    return output
