"""Hostile bodies to the prediction endpoints: a 4xx naming what is wrong, never a 500."""

from __future__ import annotations

import json

import pytest

from predictions.models import Feedback

PREDICT = "/api/v1/models/churn_prediction/predict/"
INFER = "/v2/models/churn_prediction/infer"


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def _post(client, url, body: str):
    return client.post(url, body, content_type="application/json")


# Too deep for orjson (1024 levels), then for the standard library it falls back to.
TOO_DEEP_TO_PARSE = f'{{"inputs": {nested(100_000)}}}'
# orjson parses these; the checks (and their messages) then walked them recursively.
DEEP_BODIES = {
    "a row value": f'{{"inputs": [[{nested(1000)}, 1, 2]]}}',
    "a record value": f'{{"instances": [{{"tenure": {nested(1000)}, "visits": 1, '
                      f'"late_returns": 2}}]}}',
    "tensor data": f'{{"inputs": [{{"name": "input-0", "shape": [1, 3], "datatype": "FP64", '
                   f'"data": {nested(1000)}}}]}}',
    "one level too many": f'{{"inputs": [[1, 2, {nested(62)}]]}}',
    "with NaN, read by the fallback parser": f'[NaN, {nested(100_000)}]',
}


@pytest.mark.parametrize("body", [TOO_DEEP_TO_PARSE, *DEEP_BODIES.values()],
                         ids=["too deep to parse", *DEEP_BODIES])
def test_a_deeply_nested_body_is_a_400_naming_the_body(service, served, body):
    served()
    response = _post(service, PREDICT, body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"] == {"body": ["the body is nested more than 64 levels deep"]}
    infer = _post(service, INFER, body)
    assert infer.status_code == 400, infer.content[:300]
    assert infer.json() == {"error": "the body is nested more than 64 levels deep"}


def test_sixty_four_levels_are_read(service, served):
    served()
    # The object is level 1, the rows list 2, a row 3: a value nested 61 deeper is level 64,
    # so the body parses and the value is refused by row and feature.
    response = _post(service, PREDICT, f'{{"inputs": [[1, 2, {nested(61)}]]}}')
    assert response.status_code == 422, response.content[:300]
    assert list(response.json()["errors"]) == ["inputs[0].late_returns"]


@pytest.mark.parametrize("shape", ["inputs", "v2"])
def test_an_integer_too_large_for_a_float_is_refused_by_row_and_feature(service, served, shape):
    served()
    huge = "1" + "0" * 400  # orjson refuses it; the standard library reads it as an int
    if shape == "inputs":
        response = _post(service, PREDICT, f'{{"inputs": [[0.5, {huge}, 1]]}}')
        assert response.status_code == 422, response.content[:300]
        assert list(response.json()["errors"]) == ["inputs[0].visits"]
        assert response.json()["feature"] == "visits"
    else:
        response = _post(service, INFER, f'{{"inputs": [{{"name": "input-0", "shape": [1, 3], '
                                         f'"datatype": "FP64", "data": [0.5, {huge}, 1]}}]}}')
        assert response.status_code == 422, response.content[:300]
        assert "feature 'visits'" in response.json()["error"]


def test_feedback_too_deep_or_too_large_records_nothing(service, served):
    served()
    answer = _post(service, PREDICT, json.dumps({"inputs": [[1.0, 2.0, 3.0]]})).json()
    url = f"/api/v1/predictions/{answer['request_id']}/feedback/"
    deep = _post(service, url, f'{{"feedback": {nested(100_000)}}}')
    assert deep.status_code == 400, deep.content[:300]
    assert list(deep.json()["errors"]) == ["body"]
    # Python's json reads 10**400 exactly; `math.isfinite` raised OverflowError on it.
    huge = _post(service, url, f'{{"feedback": [{{"row": 0, "actual": 1{"0" * 400}}}]}}')
    assert huge.status_code == 400, huge.content[:300]
    assert list(huge.json()["errors"]) == ["feedback[0].actual"]
    assert not Feedback.objects.exists()


def test_a_number_beyond_float32_is_the_callers_error_not_the_models(service, served):
    """Trees, torch and onnx compute in float32: 1e308 would overflow inside the model and
    count as its failure (an error-rate alert a caller could raise at will)."""
    from predictions import logs
    from predictions.models import PredictionError

    served()
    response = service.post(PREDICT, json.dumps({"inputs": [[1.0, 2.0, 3.0], [1e308, -1e308, 0]]}),
                            content_type="application/json")
    assert response.status_code == 422
    assert response.json()["row"] == 1 and response.json()["feature"] == "tenure"
    logs.flush()
    assert not PredictionError.objects.filter(kind="failed").exists()
