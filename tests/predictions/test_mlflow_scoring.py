"""MLflow's scoring protocol (`mlflow models serve`): /invocations, /ping, /version.

Bodies are the exact ones `pandas.DataFrame.to_json(orient=...)` and `.to_csv()` produce,
as a script written for MLflow's server sends them."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest
from rest_framework.test import APIClient

from predictions import logs
from predictions.models import PredictionError, PredictionLog
from tests import helpers

ROWS = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2], [-0.7, 0.1, 0.0]]
FRAME = pd.DataFrame(ROWS, columns=helpers.FEATURES)
PATH = "/mlflow/churn_prediction/invocations"


def _expected():
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    return model.predict(np.array(ROWS)).tolist()


def _json(orient: str, frame=FRAME) -> str:
    """What an MLflow script sends: `{"dataframe_<orient>": <frame.to_json(orient)>}`."""
    return '{"dataframe_' + orient + '": ' + frame.to_json(orient=orient) + "}"


def _post(client, body, content_type="application/json", path=PATH, **extra):
    return client.post(path, body, content_type=content_type, **extra)


def _logged() -> tuple[int, int]:
    logs.flush()
    return PredictionLog.objects.count(), PredictionError.objects.count()


BODIES = {
    "dataframe_split": _json("split"),
    "dataframe_records": _json("records"),
    "dataframe_split, columns reordered": _json("split", FRAME[helpers.FEATURES[::-1]]),
    "instances as records": json.dumps({"instances": FRAME.to_dict(orient="records")}),
    "instances as rows": json.dumps({"instances": ROWS}),
    "inputs as rows": json.dumps({"inputs": ROWS}),
    "inputs as columns": json.dumps({"inputs": FRAME.to_dict(orient="list")}),
    "instances as columns": json.dumps({"instances": FRAME.to_dict(orient="list")}),
    "inputs as records": json.dumps({"inputs": FRAME.to_dict(orient="records")}),
    "with params": json.dumps({"dataframe_split": json.loads(FRAME.to_json(orient="split")),
                               "params": {"threshold": 0.5}}),
}


@pytest.mark.parametrize("shape", list(BODIES))
def test_every_json_shape_mlflow_takes(service, served, shape):
    served()
    response = _post(service, BODIES[shape])
    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": _expected()}
    assert response["X-Model-Version"] == "1.0.0"
    logs.flush()
    log = PredictionLog.objects.get()
    assert (log.protocol, log.n_rows, log.request_id) == ("mlflow", 3, response["X-Prediction-Request-Id"])


def test_csv_as_pandas_writes_it_with_and_without_its_index(service, served):
    served()
    for text in (FRAME.to_csv(), FRAME.to_csv(index=False),
                 FRAME[helpers.FEATURES[::-1]].to_csv(index=False)):
        response = _post(service, text, "text/csv")
        assert response.status_code == 200, (text, response.content)
        assert response.json() == {"predictions": _expected()}
    response = _post(service, FRAME.to_csv(index=False), "text/csv; charset=utf-8")
    assert response.status_code == 200


def test_the_model_named_by_a_header_and_the_same_rules_as_the_rest_api(service, served):
    served()
    response = _post(service, _json("split"), path="/invocations",
                     HTTP_X_MODEL_NAME="churn_prediction")
    assert response.json() == {"predictions": _expected()}
    rest = service.post("/api/v1/models/churn_prediction/predict/",
                        json.dumps({"inputs": ROWS}), content_type="application/json")
    assert rest.json()["predictions"] == _expected()


def test_a_string_classifier_answers_its_labels(service, served):
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(60, 3))
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression().fit(X, np.where(X[:, 0] > 0, "late", "on_time")), buffer)
    served(data=buffer.getvalue())
    predictions = _post(service, _json("records")).json()["predictions"]
    assert set(predictions) <= {"late", "on_time"} and len(predictions) == 3


def _error(response, status, code, words=""):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    assert words in body["message"], body


def test_bad_requests_get_mlflows_error_body_and_nothing_is_logged(service, served):
    served()
    cases = [
        ('{"dataframe_split": ', "application/json", 400, "BAD_REQUEST", "not valid JSON"),
        (_json("split"), "application/xml", 415, "BAD_REQUEST", "application/json or text/csv"),
        (_json("split"), "application/json; charset=latin-1", 415, "BAD_REQUEST", "UTF-8"),
        ("", "text/csv", 400, "BAD_REQUEST", "empty"),
        (b"tenure,visits\n\xff,1\n", "text/csv", 400, "BAD_REQUEST", "UTF-8"),
    ]
    for body, content_type, status, code, words in cases:
        _error(_post(service, body, content_type), status, code, words)
    _error(_post(service, _json("split"), path="/invocations"), 400, "BAD_REQUEST",
           "X-Model-Name")
    _error(_post(service, _json("split"), path="/mlflow/nope/invocations"), 404,
           "RESOURCE_DOES_NOT_EXIST", "nope")
    _error(_post(service, _json("split"), path="/invocations", HTTP_X_MODEL_NAME="nope"), 404,
           "RESOURCE_DOES_NOT_EXIST", "nope")
    assert _logged() == (0, 0)


def test_rows_the_model_cannot_take_are_named_as_the_rest_api_names_them(service, served):
    served()
    bad = FRAME.copy().astype(object)
    bad.loc[1, "visits"] = "many"
    _error(_post(service, _json("split", bad)), 422,
           "INVALID_PARAMETER_VALUE", "row 1, feature 'visits'")
    _error(_post(service, "tenure,visits,late_returns\n1,,2\n", "text/csv"), 422,
           "INVALID_PARAMETER_VALUE", "row 0, feature 'visits'")
    _error(_post(service, "tenure,visit,late_returns\n1,2,3\n", "text/csv"), 422,
           "INVALID_PARAMETER_VALUE", "did you mean 'visits'")
    _error(_post(service, json.dumps({"inputs": {"tenure": [1, 2], "visits": [1],
                                                 "late_returns": [1, 2]}})), 400,
           "BAD_REQUEST", "different lengths")
    _error(_post(service, json.dumps({"inputs": ROWS, "params": [1]})), 400, "BAD_REQUEST",
           "params")
    _error(_post(service, "[1, 2]"), 400, "BAD_REQUEST", "JSON object with one of")
    assert _logged()[0] == 0  # refusals are counted as such (monitoring), never as answers


def test_a_token_is_needed(served, db):
    served()
    anonymous = APIClient()
    _error(_post(anonymous, _json("split")), 401, "UNAUTHENTICATED")
    _error(_post(anonymous, _json("split"), path="/invocations",
                 HTTP_X_MODEL_NAME="churn_prediction"), 401, "UNAUTHENTICATED")
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer mgt_abc_def")
    _error(_post(wrong, _json("split")), 401, "UNAUTHENTICATED")
    assert anonymous.get("/mlflow/churn_prediction/ping").status_code == 401
    assert _logged() == (0, 0)


def test_ping_and_version(service, served, db):
    anonymous = APIClient()
    assert anonymous.get("/ping").status_code == 200
    assert anonymous.get("/version").content.decode() == "2"
    _error(service.get("/mlflow/churn_prediction/ping"), 404, "RESOURCE_DOES_NOT_EXIST")
    served()
    assert service.get("/mlflow/churn_prediction/ping").status_code == 200
    _error(service.get("/mlflow/churn_prediction/nothing"), 404, "RESOURCE_DOES_NOT_EXIST")
