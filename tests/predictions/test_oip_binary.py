"""The Open Inference Protocol's binary tensor data extension (what tritonclient and KServe's
client send by default), and model metadata that matches what `infer` answers.

Requests are built by tritonclient itself (`generate_request_body`, the bytes its `infer`
sends) and answers read by it (`parse_response_body`), through Django's test client."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pytest
import tritonclient.http as triton

from predictions import logs
from predictions.models import PredictionError, PredictionLog
from tests import helpers

ROWS = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]], dtype=np.float32)
INFER = "/v2/models/churn_prediction/infer"
HEADER = "Inference-Header-Content-Length"


def _post(client, body: bytes, header_length, path=INFER):
    extra = {} if header_length is None else {"HTTP_INFERENCE_HEADER_CONTENT_LENGTH":
                                              str(header_length)}
    return client.post(path, body, content_type="application/octet-stream", **extra)


def _request(inputs, outputs=None):
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs,
                                                                         outputs=outputs)
    return body, json_size


def _input(rows=ROWS, datatype="FP32", name="input-0", binary=True):
    tensor = triton.InferInput(name, list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def _result(response):
    length = response.headers.get(HEADER)
    return triton.InferenceServerClient.parse_response_body(
        response.content, header_length=None if length is None else int(length))


def _nothing_logged():
    logs.flush()
    return PredictionLog.objects.count() == 0 and PredictionError.objects.count() == 0


def test_server_metadata_advertises_the_extension(db):
    from rest_framework.test import APIClient

    assert "binary_tensor_data" in APIClient().get("/v2").json()["extensions"]


def test_binary_inputs_and_binary_outputs_by_default(service, served):
    served()
    body, json_size = _request([_input()])  # no outputs named: all of them, in binary
    assert json_size is not None
    response = _post(service, body, json_size)
    assert response.status_code == 200, response.content
    header = json.loads(response.content[:int(response[HEADER])])
    assert all(o["parameters"]["binary_data_size"] > 0 for o in header["outputs"])
    result = _result(response)
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(ROWS))
    assert result.as_numpy("predict").dtype == np.int64
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(ROWS))
    logs.flush()
    assert PredictionLog.objects.get().n_rows == 2


def test_outputs_come_back_binary_or_json_as_each_asks(service, served):
    served()
    outputs = [triton.InferRequestedOutput("predict", binary_data=False),
               triton.InferRequestedOutput("predict_proba")]
    body, json_size = _request([_input(datatype="FP32")], outputs)
    response = _post(service, body, json_size)
    assert response.status_code == 200, response.content
    header = json.loads(response.content[:int(response[HEADER])])
    by_name = {o["name"]: o for o in header["outputs"]}
    assert "data" in by_name["predict"] and "parameters" not in by_name["predict"]
    assert by_name["predict_proba"]["parameters"]["binary_data_size"] == 2 * 2 * 8
    assert _result(response).as_numpy("predict_proba").shape == (2, 2)
    # All JSON: no header, a JSON body.
    body, json_size = _request([_input(binary=False)],
                               [triton.InferRequestedOutput("predict", binary_data=False)])
    assert json_size is None
    response = service.post(INFER, body, content_type="application/json")
    assert HEADER not in response and response.json()["outputs"][0]["datatype"] == "INT64"


@pytest.mark.parametrize("datatype,dtype", [("FP64", np.float64), ("INT32", np.int32),
                                            ("UINT8", np.uint8), ("INT64", np.int64)])
def test_every_numeric_datatype_in_binary(service, served, datatype, dtype):
    served()
    rows = np.array([[1, 2, 3], [0, 4, 1]], dtype=dtype)
    body, json_size = _request([_input(rows, datatype)])
    response = _post(service, body, json_size)
    assert response.status_code == 200, response.content
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    np.testing.assert_array_equal(_result(response).as_numpy("predict"), model.predict(rows))


def test_a_tensor_per_feature_in_binary(service, served):
    served()
    inputs = [_input(ROWS[:, i].copy(), "FP32", name=name)
              for i, name in enumerate(helpers.FEATURES)]
    body, json_size = _request(inputs)
    response = _post(service, body, json_size)
    assert response.status_code == 200, response.content
    assert _result(response).as_numpy("predict").shape == (2,)


def _bad_bodies():
    """(why, body, header length, words of the error)."""
    good, size = _request([_input()])
    header = json.loads(good[:size])
    raw = good[size:]

    def framed(document, payload):
        text = json.dumps(document).encode()
        return text + payload, len(text)

    def with_size(n):
        document = json.loads(json.dumps(header))
        document["inputs"][0]["parameters"]["binary_data_size"] = n
        return document

    return [
        ("a header length that is not a number", good, "abc", HEADER),
        ("a header length of 0", good, 0, HEADER),
        ("a header length beyond the body", good, len(good) + 1, HEADER),
        ("a header length that cuts the JSON", good, size - 3, "not valid JSON"),
        ("a header length that overshoots the JSON", good, size + 3, "not valid JSON"),
        ("the body truncated", good[:-5], size, "truncated"),
        ("bytes after the last input", good + b"\0\0\0\0", size, "bytes after the last"),
        ("a size the shape does not take", *framed(with_size(len(raw) - 4), raw[:-4]),
         "takes 24"),
        ("a size larger than the body", *framed(with_size(len(raw) + 4), raw), "truncated"),
        ("a negative size", *framed(with_size(-1), raw), "whole number of bytes"),
        ("a size that is text", *framed(with_size("24"), raw), "whole number of bytes"),
    ]


def test_bad_binary_bodies_are_refused_with_400_and_nothing_logged(service, served):
    served()
    for why, body, length, words in _bad_bodies():
        response = _post(service, body, length)
        assert response.status_code == 400, (why, response.content)
        assert set(response.json()) == {"error"}, why
        assert words in response.json()["error"], (why, response.json())
    assert _nothing_logged()


def test_bad_bool_and_bytes_elements_are_refused(service, served):
    served()
    cases = []
    bools = _input(np.array([[True, False, True]]), "BOOL")
    body, size = _request([bools])
    cases.append((body[:size] + b"\x02" + body[size + 1:], size, "0 or 1"))
    texts = _input(np.array([["a", "b", "c"]], dtype=object), "BYTES")
    body, size = _request([texts])
    cases.append((body[:size] + b"\xff\x00\x00\x00" + body[size + 4:], size, "BYTES elements"))
    for body, length, words in cases:
        response = _post(service, body, length)
        assert response.status_code == 400, response.content
        assert words in response.json()["error"]
    assert _nothing_logged()


def test_bool_and_bytes_tensors_are_refused_for_numeric_features_in_json_and_binary(
        service, served):
    served()
    bools = np.array([[True, False, True]])
    texts = np.array([["1", "2", "3"]], dtype=object)
    for rows, datatype in ((bools, "BOOL"), (texts, "BYTES")):
        for binary in (True, False):
            body, size = _request([_input(rows, datatype, binary=binary)])
            response = _post(service, body, size) if size else service.post(
                INFER, body, content_type="application/json")
            assert response.status_code == 422, (datatype, binary, response.content)
            assert f"is {datatype}, but feature 'tenure' takes numbers" in (
                response.json()["error"])
    assert PredictionLog.objects.count() == 0


def test_the_body_limit_holds_for_binary_bodies(service, served, settings):
    served()
    body, size = _request([_input()])
    settings.PREDICTION_MAX_BODY_BYTES = len(body) - 1
    response = _post(service, body, size)
    assert response.status_code == 413 and "limit" in response.json()["error"]


# --- metadata matches infer ------------------------------------------------------------------


def _model_bytes(kind: str) -> bytes:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(helpers.FEATURES)))
    if kind == "labels":
        model = LogisticRegression().fit(X, np.where(X[:, 0] > 0, "late", "on_time"))
    elif kind == "kmeans":
        model = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
    else:
        raise ValueError(kind)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind,predict,proba", [
    ("logreg", "INT64", True),
    ("labels", "BYTES", True),
    ("kmeans", "INT64", False),
    ("linreg", "FP64", False),
])
def test_metadata_outputs_are_what_infer_answers(service, served, kind, predict, proba):
    data = helpers.sklearn_bytes(kind) if kind in ("logreg", "linreg") else _model_bytes(kind)
    served(data=data)
    metadata = service.get("/v2/models/churn_prediction").json()
    declared = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert declared == ({"predict": predict, "predict_proba": "FP64"} if proba
                        else {"predict": predict})
    for binary in (True, False):
        body, size = _request([_input(binary=binary)])
        response = _post(service, body, size) if size else service.post(
            INFER, body, content_type="application/json")
        assert response.status_code == 200, response.content
        length = response.headers.get(HEADER)
        header = json.loads(response.content[:int(length)] if length else response.content)
        assert {o["name"]: o["datatype"] for o in header["outputs"]} == declared
    if kind == "labels":
        answer = _result(response).as_numpy("predict")
        assert set(answer.tolist()) <= {b"late", b"on_time", "late", "on_time"}
    asked = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                                    "data": [1, 2, 3]}], "outputs": [{"name": "predict_proba"}]})
    refused = service.post(INFER, asked, content_type="application/json")
    assert refused.status_code == (200 if proba else 400)


def test_versions_are_those_the_caller_may_call(service, api, data_scientist, served):
    served("1.0.0")
    served("1.1.0", stage="staging")
    assert service.get("/v2/models/churn_prediction").json()["versions"] == ["1.0.0"]
    mine = api(data_scientist).get("/v2/models/churn_prediction").json()
    assert mine["versions"] == ["1.0.0", "1.1.0"]
    for version in mine["versions"]:
        body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                            "data": [1, 2, 3]}]}
        path = f"/v2/models/churn_prediction/versions/{version}/infer"
        answer = api(data_scientist).post(path, json.dumps(body),
                                          content_type="application/json")
        assert answer.status_code == 200, answer.content
