"""Under the APIs every answer is JSON: an unknown path is a 404 in that API's error shape, a
wrong method a 405, and neither changes anything."""

from __future__ import annotations

import pytest

from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v2/models/", "/api/",
                                  "/api/v1/models/churn_prediction/versions/1.0.0/nope/"])
def test_an_unknown_path_under_api_is_a_json_404_naming_it(api, data_scientist, path):
    with Unchanged():
        response = api(data_scientist).post(path, {"a": 1}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 404 and body["code"] == "not_found"
    assert path in body["detail"]


def test_an_unknown_path_under_api_is_json_also_without_credentials(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_known_api_path_without_its_slash_is_redirected_for_a_get(api, data_scientist):
    response = api(data_scientist).get("/api/v1/models?page=2")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/models/?page=2"


def test_a_post_to_a_known_api_path_without_its_slash_is_told_the_right_path(
        api, data_scientist):
    with Unchanged():
        response = api(data_scientist).post("/api/v1/models", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert "/api/v1/models/" in response.json()["detail"]


def test_a_wrong_method_under_api_is_a_json_405(api, data_scientist):
    with Unchanged():
        response = api(data_scientist).delete("/api/v1/models/")
    assert response.status_code == 405
    body = response.json()
    assert body["status"] == 405 and "DELETE" in body["detail"]


@pytest.mark.parametrize("path", ["/v2/nothing", "/v2/models/churn_prediction/explain",
                                  "/v2/health/everything"])
def test_an_unknown_path_under_v2_is_an_open_inference_error(client, path):
    response = client.post(path, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"error"}
    assert path in response.json()["error"]


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/v2"])
def test_a_wrong_method_under_v2_is_an_open_inference_error(client, path):
    response = client.delete(path)
    assert response.status_code == 405
    assert set(response.json()) == {"error"}


def test_paths_outside_the_apis_keep_the_html_404(client):
    response = client.get("/admin-nothing/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
