"""Hostile input to the registry API and the token endpoint: a 400 naming what is wrong, never
a 500, and nothing changed."""

from __future__ import annotations

import json

import pytest

from tests import helpers
from tests.helpers import Unchanged

MODELS = "/api/v1/models/"
VERSIONS = "/api/v1/models/churn_prediction/versions/"


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


# Python's json recursed through this and failed with a RecursionError (a 500).
TOO_DEEP_TO_PARSE = f'{{"a": {nested(100_000)}}}'


def _errors(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) >= {"status", "code", "detail", "errors"}
    return body["errors"]


def _raw(client, method: str, url: str, body: str):
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.mark.parametrize(("method", "url"), [
    ("post", MODELS),
    ("patch", MODELS + "churn_prediction/"),
    ("patch", VERSIONS + "1.0.0/"),
])
def test_a_deeply_nested_body_is_a_400_naming_the_body(api, data_scientist, churn_model,
                                                      method, url):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    with Unchanged():
        response = _raw(api(data_scientist), method, url, TOO_DEEP_TO_PARSE)
    assert "nested more than 64 levels" in _errors(response)["body"][0]


@pytest.mark.parametrize("url", ["/api/v1/auth/token/", "/api/v1/auth/token/refresh/"])
def test_the_token_endpoints_refuse_a_deeply_nested_body(api, data_scientist, url):
    with Unchanged():
        response = _raw(api(), "post", url, TOO_DEEP_TO_PARSE)
    assert "nested more than 64 levels" in _errors(response)["body"][0]
    assert "access" not in response.json()


def test_a_body_one_level_too_deep_is_refused_before_its_fields(api, data_scientist):
    body = {"name": "deep", "task_type": "classification", "tags": ["a"]}
    text = json.dumps(body)[:-1] + ', "x": ' + nested(64) + "}"  # the object is level 1
    with Unchanged():
        response = _raw(api(data_scientist), "post", MODELS, text)
    assert set(_errors(response)) == {"body"}
    assert response.json()["detail"].startswith("body: the body is nested more than 64")
    # 64 levels are fine: the unknown field is then refused by name.
    fits = json.dumps(body)[:-1] + ', "x": ' + nested(63) + "}"
    assert set(_errors(_raw(api(data_scientist), "post", MODELS, fits))) == {"x"}


def test_broken_json_is_a_400_naming_the_body(api, data_scientist):
    with Unchanged():
        response = _raw(api(data_scientist), "post", MODELS, '{"name": "x", ')
    assert "not valid JSON" in _errors(response)["body"][0]


@pytest.mark.parametrize("metadata", [
    # Parsed, then written into a JSONField by recursive code: more than 64 levels is refused.
    f'{{"model_architecture": {nested(100)}}}',
    TOO_DEEP_TO_PARSE,
    # Too large for a float: `math.isfinite` raised OverflowError on the metric.
    f'{{"metrics": {{"accuracy": 1{"0" * 400}}}}}',
    '{"hyperparameters": {"C": 1e400}}',
], ids=["100 levels", "100000 levels", "10**400", "1e400"])
def test_registration_metadata_too_deep_or_out_of_range_is_a_400(api, data_scientist,
                                                                 churn_model, metadata):
    form = helpers.registration_form()
    form["metadata"] = metadata
    with Unchanged():
        response = api(data_scientist).post(VERSIONS, form, format="multipart")
    assert list(_errors(response)) == ["metadata"]


DATE_LISTS = [MODELS, "/api/v1/versions/", VERSIONS]


@pytest.mark.parametrize("url", DATE_LISTS)
@pytest.mark.parametrize("param", ["created_after", "created_before"])
@pytest.mark.parametrize("value", [
    "2026-01-01T00:00:00+99:00", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00-25:30",
    "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
    # Valid ISO 8601, but before year 1 or after 9999 once in UTC: an OverflowError (SQLite)
    # or a DataError (PostgreSQL) in the query.
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00",
])
def test_a_date_filter_out_of_range_is_a_400_naming_the_parameter(api, viewer, churn_model,
                                                                  url, param, value):
    response = api(viewer).get(url, {param: value})
    assert list(_errors(response)) == [param]


@pytest.mark.parametrize("url", DATE_LISTS)
def test_a_date_filter_with_a_large_valid_offset_works(api, viewer, data_scientist,
                                                       churn_model, url):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    # PostgreSQL refuses offsets beyond ±15:59 in a query (a DataError): the filter asks in UTC.
    before = api(viewer).get(url, {"created_before": "2999-01-01T00:00:00+20:00"})
    assert before.status_code == 200, before.json()
    assert before.json()["count"] == 1
    after = api(viewer).get(url, {"created_after": "2999-01-01T00:00:00-23:59"})
    assert after.json()["count"] == 0
