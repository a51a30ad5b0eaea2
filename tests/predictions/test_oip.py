"""The Open Inference Protocol (KServe v2) over REST."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
from rest_framework.test import APIClient

from predictions import logs
from tests import helpers

ROWS = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]]


def _infer(client, body, path="/v2/models/churn_prediction/infer"):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_health_and_server_metadata_need_no_login(db):
    client = APIClient()
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True, "degraded": {}}
    assert client.get("/v2").json()["name"] == "model-governance"


def test_model_metadata_and_readiness(service, served):
    served()
    metadata = service.get("/v2/models/churn_prediction").json()
    assert metadata["versions"] == ["1.0.0"]
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 3]}]
    assert metadata["parameters"]["features"] == helpers.FEATURES
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    assert service.get("/v2/models/churn_prediction/ready").json() == {
        "name": "churn_prediction", "ready": True}
    assert APIClient().get("/v2/models/churn_prediction").status_code == 401


def test_infer_with_one_tensor_in_signature_order(service, served):
    served()
    body = {"id": "req-1", "inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                                       "data": [v for row in ROWS for v in row]}]}
    response = _infer(service, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert answer["model_name"] == "churn_prediction" and answer["id"] == "req-1"
    assert outputs["predict"]["shape"] == [2]
    assert outputs["predict"]["datatype"] == "INT64"
    assert outputs["predict"]["data"] == model.predict(np.array(ROWS)).tolist()
    assert outputs["predict_proba"]["shape"] == [2, 2]
    assert logs.flush() == 1


def test_infer_with_a_tensor_per_feature_and_chosen_outputs(service, served):
    served()
    columns = list(zip(*ROWS, strict=True))
    body = {"inputs": [{"name": name, "shape": [2], "datatype": "FP32", "data": list(values)}
                       for name, values in zip(helpers.FEATURES, columns, strict=True)],
            "outputs": [{"name": "predict_proba"}]}
    answer = _infer(service, body).json()
    assert [o["name"] for o in answer["outputs"]] == ["predict_proba"]


def test_infer_errors_are_the_protocols_and_name_the_culprit(service, served):
    served()
    cases = [
        ({"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64",
                      "data": [1, 2]}]}, 422, "shape [1, 2]"),
        ({"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                      "data": [1, 2, 3]}]}, 400, "do not fill shape"),
        ({"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1]},
                     {"name": "visit", "shape": [1], "datatype": "FP64", "data": [1]}]},
         422, "did you mean 'visits'"),
        ({"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                      "data": [1, "x", 3]}]}, 422, "row 0, feature 'visits'"),
        ({"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP99",
                      "data": [1, 2, 3]}]}, 400, "unknown datatype"),
        ({"inputs": []}, 400, "non-empty 'inputs'"),
        ({"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                      "data": [1, 2, 3]}], "outputs": [{"name": "logits"}]}, 400,
         "unknown output 'logits'"),
    ]
    for body, status, words in cases:
        response = _infer(service, body)
        assert response.status_code == status, (body, response.content)
        assert set(response.json()) == {"error"}
        assert words in response.json()["error"]
    assert logs.flush() == 0


def test_a_named_version_and_an_unknown_model(service, api, data_scientist, served):
    served("1.0.0")
    served("1.1.0", stage="staging")
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                        "data": [1, 2, 3]}]}
    staged = "/v2/models/churn_prediction/versions/1.1.0/infer"
    assert _infer(service, body, staged).status_code == 404
    assert _infer(api(data_scientist), body, staged).json()["model_version"] == "1.1.0"
    missing = _infer(service, body, "/v2/models/nope/infer")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_a_huge_shape_is_refused_at_once_not_built(service, served):
    served()
    body = {"inputs": [{"name": "input-0", "shape": [2**61 + 1, 3], "datatype": "FP64",
                        "data": [1, 2, 3]}]}
    response = _infer(service, body)
    assert response.status_code == 400  # 3 values do not fill it (exact arithmetic)
    body["inputs"][0]["shape"] = [10**6, 3]
    body["inputs"][0]["data"] = [1.0, 2.0, 3.0] * 10**6
    response = _infer(service, body)
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_a_service_cannot_read_a_staged_versions_metadata(service, api, data_scientist,
                                                          served):
    served("1.0.0")
    served("1.1.0", stage="staging")
    path = "/v2/models/churn_prediction/versions/1.1.0"
    assert service.get(path).status_code == 404
    assert service.get(path + "/ready").status_code == 404
    metadata = api(data_scientist).get(path).json()
    assert metadata["versions"] == ["1.0.0", "1.1.0"]  # what she may call
    assert metadata["parameters"]["version"] == "1.1.0"  # what this page describes
    # Outside production it is loaded only in the sandbox, where its outputs are asked too.
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
        ("predict", "INT64"), ("predict_proba", "FP64")]
