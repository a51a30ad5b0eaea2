"""The prediction API under gunicorn: a standard Open Inference Protocol client (Triton's),
the REST API with a service token, a deployment noticed within a second, logs written in
the background."""

from __future__ import annotations

import io
import json
import time

import joblib
import numpy as np
import pytest
import requests

from predictions.models import PredictionLog
from tests import helpers

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"),
              pytest.mark.django_db(transaction=True)]

ROWS = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]])


@pytest.fixture
def production(data_scientist, churn_model):
    from governance import services as governance

    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    governance.validation_request_now(version)
    return helpers.force_stage(version, "production")


@pytest.fixture
def token(admin_user, django_user_model):
    from core import roles
    from predictions import services
    from tests.conftest import _person

    account = _person(django_user_model, "loans-service", roles.SERVICE)
    return services.api_token_create(user=account, name="e2e", actor=admin_user)[1]


def test_a_standard_oip_client_and_rest_get_answers_and_see_a_deployment(
    production, token, live_app, data_scientist
):
    import tritonclient.http as triton

    from governance import services as governance

    headers = {"Authorization": f"Bearer {token}"}
    host = live_app.removeprefix("http://")
    client = triton.InferenceServerClient(url=host)
    assert client.is_server_live()
    assert client.is_model_ready("churn_prediction", headers=headers)
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    # The client's defaults: binary inputs, binary outputs (the binary tensor extension).
    # (tritonclient writes Inference-Header-Content-Length into the headers dict it is given:
    # each call gets a copy, or a later all-JSON call would carry a stale length.)
    metadata = client.get_model_metadata("churn_prediction", headers=headers)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    rows32 = ROWS.astype(np.float32)
    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(rows32)
    result = client.infer("churn_prediction", [tensor], headers=dict(headers))
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows32))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows32))
    declared = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert declared == {o["name"]: o["datatype"] for o in result.get_response()["outputs"]}
    wanted = [triton.InferRequestedOutput("predict")]
    result = client.infer("churn_prediction", [tensor], outputs=wanted,
                          headers=dict(headers))
    assert result.as_numpy("predict").dtype == np.int64
    # And all in JSON, as before.
    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=False)
    wanted = [triton.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("churn_prediction", [tensor], outputs=wanted,
                          headers=dict(headers))
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(ROWS))

    session = requests.Session()
    session.headers.update(headers)
    url = f"{live_app}/api/v1/models/churn_prediction/predict/"
    answer = session.post(url, json={"inputs": ROWS.tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == "1.0.0"

    # A deployment in another process: the server answers with it once its routing cache
    # expires (PREDICTION_ROUTING_TTL); how soon is bench/'s business, not a test's.
    new = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist,
                                  data=helpers.sklearn_bytes(seed=1))
    governance.validation_request_now(new)
    helpers.force_stage(new, "production")
    deployed = time.monotonic()
    versions = set()
    while time.monotonic() - deployed < 300:
        versions = {session.post(url, json={"inputs": ROWS.tolist()}).json()["version"]
                    for _ in range(4)}  # both gunicorn workers
        if versions == {"1.1.0"}:
            break
        time.sleep(0.1)
    assert versions == {"1.1.0"}

    # The background writer logs every answer (within a second or so on an idle machine).
    request_id = answer.json()["request_id"]
    deadline = time.monotonic() + 300
    while not PredictionLog.objects.filter(request_id=request_id).exists():
        assert time.monotonic() < deadline, "the prediction log was not written"
        time.sleep(0.2)
    log = PredictionLog.objects.get(request_id=request_id)
    assert (log.caller_name, log.n_rows, log.version.version) == ("loans-service", 2, "1.0.0")
    feedback = session.post(f"{live_app}/api/v1/predictions/{request_id}/feedback/",
                            data=json.dumps({"feedback": [{"row": 0, "actual": 1}]}),
                            headers={"Content-Type": "application/json"})
    assert feedback.status_code == 201, feedback.text


def test_with_preloading_the_workers_share_the_masters_models_and_still_see_a_deployment(
    production, token, data_scientist, store_root, broker_dir, tmp_path
):
    from governance import services as governance
    from tests.e2e.conftest import gunicorn

    helpers.create_model(owner=data_scientist, name="fraud_score")
    staged = helpers.register_direct("fraud_score", "1.0.0", actor=data_scientist)
    governance.validation_request_now(staged)
    helpers.force_stage(staged, "staging")
    with gunicorn(store_root, broker_dir, tmp_path, PREDICTION_PRELOAD="true") as (url, log):
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}"})
        predict = f"{url}/api/v1/models/churn_prediction/predict/"
        answer = session.post(predict, json={"inputs": ROWS.tolist()})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == "1.0.0"
        # Each worker logs what it inherited once its start-up is done; the second one may
        # still be starting when the first has answered (a loaded machine), so wait for both.
        inherited = "preloaded nothing more; 1 version(s) inherited from the master"
        deadline = time.monotonic() + 300
        while log.read_text().count(inherited) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        text = log.read_text()
        # Loaded once, in the master, before the fork; only what production serves.
        assert "loaded before fork, shared by the workers: churn_prediction 1.0.0\n" in text
        assert text.count(inherited) == 2

        new = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist,
                                      data=helpers.sklearn_bytes(seed=1))
        governance.validation_request_now(new)
        helpers.force_stage(new, "production")
        deployed = time.monotonic()
        versions = set()
        while time.monotonic() - deployed < 300:
            versions = {session.post(predict, json={"inputs": ROWS.tolist()}).json()["version"]
                        for _ in range(4)}  # both workers, as each request may reach either
            if versions == {"1.1.0"}:
                break
            time.sleep(0.1)
        assert versions == {"1.1.0"}
