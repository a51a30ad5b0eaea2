"""MLflow's own client against the app under gunicorn, changed only in its URL and token:
MlflowClient reads the registry, and mlflow.pyfunc loads `models:/<name>@champion`."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest

from tests import helpers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"),
              pytest.mark.django_db(transaction=True)]

ROWS = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]])


@pytest.fixture
def registry(data_scientist, admin_user):
    """churn_prediction: version 1 (1.0.0) in production, version 2 (1.1.0) in staging."""
    from registry import services

    model = helpers.create_model(owner=data_scientist, name="churn_prediction")
    old = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(old, "production")
    new = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist,
                                  data=helpers.sklearn_bytes(seed=1))
    helpers.force_stage(new, "staging")
    return model, services


@pytest.fixture
def mlflow_env(registry, live_app, admin_user, django_user_model, monkeypatch):
    """A service account granted the model, its token in MLFLOW_TRACKING_TOKEN."""
    from core import roles
    from predictions import services as predictions
    from tests.conftest import _person

    model, services = registry
    account = _person(django_user_model, "scoring-service", roles.SERVICE)
    services.model_update(model=model, actor=admin_user, readers=[account])
    token = predictions.api_token_create(user=account, name="mlflow", actor=admin_user)[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_app)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return live_app


@pytest.mark.filterwarnings("ignore:.*get_latest_versions.*is deprecated:FutureWarning")
def test_mlflow_client_lists_reads_and_loads_the_champion(mlflow_env, tmp_path):
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    [model] = client.search_registered_models()
    assert model.name == "churn_prediction"
    assert model.aliases == {"champion": "1", "production": "1"}

    version = client.get_model_version("churn_prediction", "2")
    assert (version.version, version.current_stage) == ("2", "Staging")
    assert version.tags["semver"] == "1.1.0"
    champion = client.get_model_version_by_alias("churn_prediction", "champion")
    assert (champion.version, champion.current_stage) == ("1", "Production")
    latest = client.get_latest_versions("churn_prediction", stages=["Production"])
    assert [v.version for v in latest] == ["1"]

    expected = joblib.load(io.BytesIO(helpers.sklearn_bytes())).predict(ROWS)
    loaded = mlflow.pyfunc.load_model("models:/churn_prediction@champion",
                                      dst_path=str(tmp_path))
    np.testing.assert_array_equal(loaded.predict(ROWS), expected)
    by_number = mlflow.pyfunc.load_model("models:/churn_prediction/1")
    np.testing.assert_array_equal(by_number.predict(ROWS), expected)

    # The staging version is not approved: a service outside the team may not download it.
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        mlflow.pyfunc.load_model("models:/churn_prediction/2")
