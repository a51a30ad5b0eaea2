"""POST /api/v1/models/<name>/predict/: shapes, answers, logs, errors that name the row."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pytest

from predictions import logs
from predictions.models import PredictionLog
from tests import helpers

URL = "/api/v1/models/churn_prediction/predict/"
ROWS = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2], [-2.0, 0.1, 0.0]]
FEATURES = helpers.FEATURES


def _model():
    return joblib.load(io.BytesIO(helpers.sklearn_bytes()))


def _post(client, body, url=URL, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **headers)


SHAPES = {
    "instances": {"instances": [dict(zip(FEATURES, row, strict=True)) for row in ROWS]},
    "inputs": {"inputs": ROWS},
    "dataframe_split": {"dataframe_split": {"columns": list(reversed(FEATURES)),
                                            "data": [list(reversed(r)) for r in ROWS]}},
    "dataframe_records": {"dataframe_records": [dict(zip(FEATURES, row, strict=True))
                                                for row in ROWS]},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_mlflow_shape_gets_the_models_own_answer(service, served, service_account, shape):
    served()
    response = _post(service, SHAPES[shape])
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["model"], body["version"], body["routed_to"]) == (
        "churn_prediction", "1.0.0", "production")
    assert body["predictions"] == _model().predict(np.array(ROWS)).tolist()
    np.testing.assert_allclose(body["probabilities"], _model().predict_proba(np.array(ROWS)))
    assert len(body["request_id"]) == 32

    assert logs.flush() == 1
    log = PredictionLog.objects.get(request_id=body["request_id"])
    assert (log.version.version, log.route, log.caller_name, log.n_rows) == (
        "1.0.0", "production", "loans-service", 3)
    assert log.inputs == ROWS
    assert log.outputs == body["predictions"]
    assert log.latency_ms > 0


def test_a_named_version_can_be_called_by_a_data_scientist_not_a_service(
    api, service, data_scientist, served
):
    served("1.0.0")
    served("1.1.0", stage="staging")
    url = "/api/v1/models/churn_prediction/versions/1.1.0/predict/"
    assert _post(service, {"inputs": ROWS}, url).status_code == 404
    response = _post(api(data_scientist), {"inputs": ROWS}, url)
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["routed_to"]) == ("1.1.0", "direct")
    production = "/api/v1/models/churn_prediction/versions/1.0.0/predict/"
    assert _post(service, {"inputs": ROWS}, production).status_code == 200


def _error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert {"status", "code", "detail", "errors"} <= set(body)
    return body


@pytest.mark.parametrize(
    ("body", "status", "row", "feature", "words"),
    [
        ({"instances": [{"tenure": 1, "visits": 2}]}, 422, 0, "late_returns", "missing"),
        ({"instances": [{"tenure": 1, "visits": 2, "late_returns": 0, "tenur": 5}]}, 422, 0,
         "tenur", "did you mean 'tenure'"),
        ({"dataframe_records": [{"tenure": 1, "visits": 2, "late_returns": 0},
                                {"tenure": "ten", "visits": 2, "late_returns": 0}]},
         422, 1, "tenure", "expected a number"),
        ({"inputs": [[1, 2, 3], [1, None, 3]]}, 422, 1, "visits", "not null"),
        ({"inputs": [[1, 2, 3], [1, 2]]}, 422, 1, None, "2 values, but the model takes 3"),
        ({"inputs": [[1, True, 3]]}, 422, 0, "visits", "expected a number"),
        ({"inputs": []}, 422, None, None, "empty"),
        ({"dataframe_split": {"columns": ["tenure", "visits", "lates"], "data": [[1, 2, 3]]}},
         422, None, "lates", "did you mean 'late_returns'"),
        ({"rows": ROWS}, 400, None, None, "exactly one of"),
        ({"inputs": ROWS, "instances": []}, 400, None, None, "exactly one of"),
        ([1, 2, 3], 400, None, None, "JSON object"),
    ],
)
def test_bad_rows_are_refused_naming_row_and_feature_and_nothing_is_logged(
    service, served, body, status, row, feature, words
):
    served()
    error = _error(_post(service, body), status)
    assert words in error["detail"]
    assert error.get("row") == row
    assert error.get("feature") == feature
    assert logs.flush() == 0
    assert not PredictionLog.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_where_they_are_not_allowed(service, served, literal):
    served()
    body = f'{{"inputs": [[1, 2, 3], [4, {literal}, 6]]}}'
    error = _error(_post(service, body), 422)
    assert (error["row"], error["feature"]) == (1, "visits")
    assert "finite numbers only" in error["detail"]


def test_a_body_that_is_not_json_is_a_bad_request(service, served):
    served()
    assert "not valid JSON" in _error(_post(service, b"{not json"), 400)["detail"]
    assert "empty" in _error(_post(service, b""), 400)["detail"]


def test_bodies_and_batches_over_the_limits_are_too_large(service, served, settings):
    served()
    settings.PREDICTION_MAX_ROWS = 5
    assert "limit of 5" in _error(_post(service, {"inputs": [[1, 2, 3]] * 6}), 413)["detail"]
    settings.PREDICTION_MAX_BODY_BYTES = 40
    assert "limit of 40" in _error(_post(service, {"inputs": [[1, 2, 3]] * 5}), 413)["detail"]
    assert logs.flush() == 0


def test_unknown_models_and_models_without_production_are_not_found(service, served,
                                                                    data_scientist):
    assert _error(_post(service, {"inputs": ROWS}, "/api/v1/models/nope/predict/"), 404)
    helpers.create_model(owner=data_scientist, name="empty_model")
    error = _error(_post(service, {"inputs": ROWS}, "/api/v1/models/empty_model/predict/"), 404)
    assert "no production version" in error["detail"]


def test_a_version_whose_validation_failed_is_never_loaded(service, served, store_root,
                                                           admin_user):
    from pathlib import Path

    from governance import services as governance

    version = served()
    Path(store_root, "production/churn_prediction/v1.0.0/model.joblib").write_bytes(b"evil")
    assert governance.validation_request_now(version).status == "failed"
    error = _error(_post(service, {"inputs": ROWS}), 503)
    assert "failed its latest validation" in error["detail"]


def test_a_torchscript_model_serves(service, served):
    served(framework="torch", data=helpers.torchscript_bytes(), filename="model.pt")
    body = _post(service, {"inputs": ROWS}).json()
    np.testing.assert_allclose(body["predictions"], 2 * np.array(ROWS).sum(axis=1) + 1,
                               rtol=1e-6)
    assert "probabilities" not in body


def test_the_next_request_after_a_deployment_uses_the_new_version(service, served,
                                                                  settings):
    import time

    settings.PREDICTION_ROUTING_TTL = 0.5  # the production default
    served("1.0.0")
    assert _post(service, {"inputs": ROWS}).json()["version"] == "1.0.0"
    served("1.1.0", data=helpers.sklearn_bytes(seed=1))
    time.sleep(0.6)
    assert _post(service, {"inputs": ROWS}).json()["version"] == "1.1.0"


def test_one_unwritable_log_does_not_lose_the_others(service, served):
    served()
    answered = [_post(service, {"inputs": ROWS}).json()["request_id"] for _ in range(3)]
    import dataclasses

    good = logs._buffer.get_nowait()
    # A row the database refuses (NOT NULL), and one that cannot even be encoded.
    bad = dataclasses.replace(good, request_id="bad", caller_name=None)
    broken = dataclasses.replace(good, request_id="broken", matrix=object())
    logs._buffer.put(broken)
    for entry in (good, bad):
        logs._buffer.put(entry)
    assert logs.flush() == 3
    assert set(PredictionLog.objects.values_list("request_id", flat=True)) == set(answered)


def test_text_with_a_nul_character_is_refused(service, data_scientist):
    from registry import services, store

    meta = helpers.metadata(signature=[{"name": "tenure", "dtype": "float64"},
                                       {"name": "visits", "dtype": "float64"},
                                       {"name": "branch", "dtype": "category"}])
    meta.pop("features", None)
    helpers.create_model(owner=data_scientist, name="by_branch")
    incoming = [store.ingest_stream(io.BytesIO(helpers.sklearn_bytes()), name="model.joblib",
                                    role="model")]
    version = services.version_register(model_name="by_branch", version="1.0.0",
                                        framework="sklearn", metadata=meta, files=incoming,
                                        actor=data_scientist)
    helpers.force_stage(version, "production")
    body = {"instances": [{"tenure": 1, "visits": 2, "branch": "north\u0000"}]}
    error = _error(_post(service, body, "/api/v1/models/by_branch/predict/"), 422)
    assert (error["row"], error["feature"]) == (0, "branch")
    assert "NUL" in error["detail"]
    assert logs.flush() == 0


def test_the_watcher_loads_a_new_version_before_requests_are_routed_to_it(
    service, served, monkeypatch
):
    from predictions import serving

    served("1.0.0")
    assert _post(service, {"inputs": ROWS}).json()["version"] == "1.0.0"
    monkeypatch.setattr(serving, "watcher", object())  # a watcher runs: requests don't refresh
    new = served("1.1.0", data=helpers.sklearn_bytes(seed=1))
    assert _post(service, {"inputs": ROWS}).json()["version"] == "1.0.0"  # until the swap
    assert new.pk not in serving.models
    assert serving.routes.refresh_warm()
    assert new.pk in serving.models  # loaded before any request asked for it
    assert _post(service, {"inputs": ROWS}).json()["version"] == "1.1.0"
    assert not serving.routes.refresh_warm()  # nothing changed since


@pytest.mark.parametrize(("body", "field"), [
    ({"inputs": [[1, 2, 3], [1, "x", 3]]}, "inputs[1].visits"),
    ({"instances": [{"tenure": 1, "visits": 2}]}, "instances[0].late_returns"),
    ({"dataframe_records": [{"tenure": 1, "visits": 2, "late_returns": 0, "x": 1}]},
     "dataframe_records[0].x"),
    ({"inputs": [[1, 2, 3], [1, 2]]}, "inputs[1]"),
])
def test_the_error_names_the_value_as_the_body_has_it(service, served, body, field):
    served()
    error = _error(_post(service, body), 422)
    assert list(error["errors"]) == [field]


def test_numbers_sent_as_text_and_booleans_out_of_range_are_refused(service, served,
                                                                    data_scientist):
    served()
    error = _error(_post(service, {"inputs": [[1, "1.5", 3]]}), 422)
    assert (error["row"], error["feature"]) == (0, "visits")
    from registry import services, store

    meta = helpers.metadata(signature=[{"name": "tenure", "dtype": "float64"},
                                       {"name": "member", "dtype": "bool"}])
    meta.pop("features")
    helpers.create_model(owner=data_scientist, name="flags")
    incoming = [store.ingest_stream(io.BytesIO(helpers.sklearn_bytes()), name="m.joblib",
                                    role="model")]
    version = services.version_register(model_name="flags", version="1.0.0",
                                        framework="sklearn", metadata=meta, files=incoming,
                                        actor=data_scientist)
    helpers.force_stage(version, "production")
    error = _error(_post(service, {"inputs": [[1.0, 7]]}, "/api/v1/models/flags/predict/"), 422)
    assert (error["row"], error["feature"]) == (0, "member")


def test_malformed_columns_are_the_callers_fault_not_the_models(service, served):
    from predictions.models import PredictionError

    served()
    body = {"dataframe_split": {"columns": [["tenure"]], "data": [[1]]}}
    assert _error(_post(service, body), 400)["errors"] == {
        "dataframe_split.columns": ["dataframe_split columns are feature names (text)"]}
    logs.flush()
    assert list(PredictionError.objects.values_list("kind", flat=True)) == ["rejected"]


def test_a_version_without_features_is_not_servable_with_a_reason(service, data_scientist):
    helpers.create_model(owner=data_scientist, name="bare")
    meta = helpers.metadata()
    meta.pop("features")
    version = helpers.register_direct("bare", "1.0.0", actor=data_scientist, meta=meta)
    helpers.force_stage(version, "production")
    error = _error(_post(service, {"inputs": ROWS}, "/api/v1/models/bare/predict/"), 503)
    assert "declares no features" in error["detail"]
