"""Registering, listing, reading, downloading and editing versions over the REST API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.models import AuditEvent
from registry.models import ModelVersion
from tests import helpers
from tests.helpers import Unchanged, register, registration_form, upload

URL = "/api/v1/models/churn_prediction/versions/"


def test_it_registers_a_version_with_its_files_in_the_experiments_folder(
    api, data_scientist, churn_model, store_root
):
    model_bytes = helpers.sklearn_bytes()
    scaler = helpers.sklearn_bytes("scaler")
    response = register(
        api(data_scientist),
        "churn_prediction",
        "1.2.0",
        files=[upload("model.joblib", model_bytes), upload("README.md", b"# notes\n")],
        preprocessors=[upload("scaler.pkl", scaler)],
        sha256=helpers.sha256(model_bytes),
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stage"] == "experiment"
    assert body["sha256"] == helpers.sha256(model_bytes)
    assert [(f["filename"], f["role"], f["position"]) for f in body["files"]] == [
        ("model.joblib", "model", 0),
        ("scaler.pkl", "preprocessor", 1),
        ("README.md", "other", 2),
    ]
    assert response["Location"].endswith("/api/v1/models/churn_prediction/versions/1.2.0/")

    folder = Path(store_root) / "experiments" / "churn_prediction" / "v1.2.0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "metadata.json", "model.joblib", "scaler.pkl",
    ]
    assert (folder / "model.joblib").read_bytes() == model_bytes
    written = json.loads((folder / "metadata.json").read_text())
    assert written["name"] == "churn_prediction"
    assert written["version"] == "1.2.0"
    assert written["metrics"] == {"accuracy": 0.82, "f1_score": 0.79}
    assert written["files"][0] == {
        "name": "model.joblib", "role": "model", "size": len(model_bytes),
        "sha256": helpers.sha256(model_bytes),
    }
    assert list((Path(store_root) / ".incoming").iterdir()) == []

    event = AuditEvent.objects.get(action="version.registered")
    assert event.actor == data_scientist
    assert event.model_name == "churn_prediction"
    assert json.loads(event.after)["files"]["model.joblib"] == helpers.sha256(model_bytes)


def test_it_keeps_unknown_metadata_keys_and_writes_them_back(api, data_scientist, churn_model,
                                                              store_root):
    meta = helpers.metadata(model_architecture={"type": "HybridRecommender"}, status="active")
    response = register(api(data_scientist), "churn_prediction", meta=meta)
    assert response.status_code == 201, response.json()
    assert response.json()["extra_metadata"] == {
        "model_architecture": {"type": "HybridRecommender"}, "status": "active",
    }
    written = json.loads(
        (Path(store_root) / "experiments/churn_prediction/v1.0.0/metadata.json").read_text()
    )
    assert written["model_architecture"] == {"type": "HybridRecommender"}


def test_it_accepts_metadata_sent_as_a_file_part(api, data_scientist, churn_model):
    form = registration_form()
    form["metadata"] = upload("metadata.json", json.dumps(helpers.metadata()).encode())
    response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["algorithm"] == "LogisticRegression"


def test_the_catalogue_lists_every_version_after_commit(
    api, data_scientist, churn_model, store_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert register(api(data_scientist), "churn_prediction", "1.0.0").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert register(api(data_scientist), "churn_prediction", "1.10.0").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert register(api(data_scientist), "churn_prediction", "1.9.0").status_code == 201
    catalogue = json.loads(
        (Path(store_root) / "metadata" / "model_registry.json").read_text()
    )
    entry = catalogue["models"]["churn_prediction"]
    assert entry["latest_version"] == "1.10.0"
    assert sorted(entry["versions"]) == ["1.0.0", "1.10.0", "1.9.0"]
    assert entry["versions"]["1.9.0"]["path"] == "experiments/churn_prediction/v1.9.0"


# --- bad input: a clear error, and nothing changed --------------------------------------------


def _errors(response) -> dict:
    body = response.json()
    assert set(body) >= {"status", "code", "detail", "errors"}
    return body["errors"]


def test_a_duplicate_version_is_a_conflict(api, data_scientist, churn_model):
    assert register(api(data_scientist), "churn_prediction", "1.0.0").status_code == 201
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction", "1.0.0")
    assert response.status_code == 409
    assert "version" in _errors(response)


@pytest.mark.parametrize(
    "version", ["1.0", "v1.0.0", "1.0.0+build.5", "01.0.0", "1.0.0-", "latest", "1.0.0/../x", ""]
)
def test_a_version_that_is_not_semver_is_refused(api, data_scientist, churn_model, version):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction", version)
    assert response.status_code == 400
    assert "version" in _errors(response)


@pytest.mark.parametrize("name", ["..%2F..%2Fetc", "a%2Fb", "bad%00name", "Upper", "..", "a%5Cb"])
def test_a_model_name_that_could_escape_the_store_is_refused(api, data_scientist, name):
    with Unchanged():
        response = api(data_scientist).post(
            "/api/v1/models/", {"name": name.replace("%2F", "/").replace("%00", "\0")
                                .replace("%5C", "\\"), "task_type": "classification"},
            format="json",
        )
    assert response.status_code == 400
    assert "name" in _errors(response)


@pytest.mark.parametrize(
    "filename",
    ["../../config/settings.py", "/etc/passwd", "..\\..\\config\\settings.py", "a/b.pkl",
     "model\0.pkl", "metadata.json", ".hidden.pkl", "..pkl", "model.pkl\n", "&#47;etc&#47;x.pkl"],
)
def test_a_file_name_that_is_not_a_plain_name_is_refused(
    api, data_scientist, churn_model, filename, store_root
):
    with Unchanged():
        response = helpers.register_raw(
            api(data_scientist), "churn_prediction",
            [("file", filename, helpers.sklearn_bytes())],
        )
    assert response.status_code == 400, response.json()
    assert "file" in _errors(response)
    assert not (Path(store_root).parent / "config").exists()


def test_an_unsafe_preprocessor_name_is_refused_after_a_good_model_part(
    api, data_scientist, churn_model
):
    with Unchanged():
        response = helpers.register_raw(
            api(data_scientist), "churn_prediction",
            [("file", "model.joblib", helpers.sklearn_bytes()),
             ("preprocessor", "../scaler.pkl", helpers.sklearn_bytes("scaler"))],
        )
    assert response.status_code == 400
    assert "preprocessor" in _errors(response)


def test_a_declared_sha256_that_differs_from_the_bytes_is_refused(
    api, data_scientist, churn_model
):
    with Unchanged():
        response = register(
            api(data_scientist), "churn_prediction", sha256=helpers.sha256(b"something else")
        )
    assert response.status_code == 422
    assert "sha256" in _errors(response)


def test_a_malformed_sha256_is_refused(api, data_scientist, churn_model):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction", sha256="abc123")
    assert response.status_code == 400
    assert "sha256" in _errors(response)


def test_a_declared_sha256_with_the_seeds_prefix_is_accepted(api, data_scientist, churn_model):
    declared = "sha256:" + helpers.sha256(helpers.sklearn_bytes())
    assert register(api(data_scientist), "churn_prediction", sha256=declared).status_code == 201


def test_an_upload_over_the_size_limit_is_refused_before_it_is_stored(
    api, data_scientist, churn_model, settings
):
    settings.MODEL_MAX_UPLOAD_BYTES = 4096
    with Unchanged():
        response = register(
            api(data_scientist), "churn_prediction",
            files=[upload("model.joblib", b"x" * 10_000)],
        )
    assert response.status_code == 413
    assert "file" in _errors(response)


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ("[1, 2]", "metadata"),
        ("not json", "metadata"),
        ('"a string"', "metadata"),
        (json.dumps(helpers.metadata(metrics={"accuracy": "high"})), "metadata.metrics"),
        (json.dumps(helpers.metadata(metrics=[0.8])), "metadata.metrics"),
        (json.dumps(helpers.metadata(features="tenure")), "metadata.features"),
        (json.dumps(helpers.metadata(tags=[1, 2])), "metadata.tags[0]"),
        (json.dumps(helpers.metadata(author=42)), "metadata.author"),
        (json.dumps(helpers.metadata(hyperparameters=[1])), "metadata.hyperparameters"),
        (json.dumps(helpers.metadata(signature=[{"name": "x", "dtype": "complex"}])),
         "metadata.signature[0].dtype"),
        (json.dumps(helpers.metadata(version="2.0.0")), "metadata.version"),
        (json.dumps(helpers.metadata(framework="torch")), "metadata.framework"),
        (json.dumps(helpers.metadata(metrics={"accuracy": float("nan")})), "metadata"),
    ],
)
def test_metadata_that_is_not_an_object_or_has_wrong_types_is_refused(
    api, data_scientist, churn_model, meta, field
):
    form = registration_form()
    form["metadata"] = meta
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400, response.json()
    errors = _errors(response)
    assert any(key.startswith(field) for key in errors), errors


def test_an_unknown_framework_is_refused(api, data_scientist, churn_model):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction", framework="tensorflow")
    assert response.status_code == 400
    assert "framework" in _errors(response)


def test_a_model_file_that_does_not_suit_its_framework_is_refused(api, data_scientist, churn_model):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction", framework="torch")
    assert response.status_code == 400
    assert "file" in _errors(response)


def test_a_registration_without_a_file_is_refused(api, data_scientist, churn_model):
    form = registration_form()
    del form["file"]
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400
    assert "file" in _errors(response)


def test_a_file_part_under_an_unknown_field_is_refused(api, data_scientist, churn_model):
    form = registration_form(weights=upload("w.pkl", b"123"))
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400
    assert "weights" in _errors(response)


def test_a_json_body_is_unsupported(api, data_scientist, churn_model):
    with Unchanged():
        response = api(data_scientist).post(URL, {"version": "1.0.0"}, format="json")
    assert response.status_code == 415


def test_registering_under_an_unknown_model_is_not_found(api, data_scientist):
    with Unchanged():
        response = register(api(data_scientist), "no_such_model")
    assert response.status_code == 404


def test_a_request_without_a_token_is_unauthorised(api, churn_model):
    with Unchanged():
        response = register(api(), "churn_prediction")
    assert response.status_code == 401


def test_a_viewer_cannot_register(api, viewer, churn_model):
    with Unchanged():
        response = register(api(viewer), "churn_prediction")
    assert response.status_code == 403


def test_an_outsider_can_neither_register_nor_read(api, outsider, churn_model):
    with Unchanged():
        assert register(api(outsider), "churn_prediction").status_code == 403
    assert api(outsider).get(URL).status_code == 403
    assert api(outsider).get("/api/v1/models/").status_code == 403


def test_a_session_user_registers_with_a_csrf_token(client, data_scientist, churn_model):
    """The browsable API path: session auth reads the body for CSRF before the view runs."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(data_scientist)
    browser.get("/admin/login/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    refused = helpers.register_raw(
        browser, "churn_prediction", [("file", "../../config/settings.py", b"x")],
        HTTP_X_CSRFTOKEN=token,
    )
    assert refused.status_code == 400
    assert "file" in refused.json()["errors"]
    response = browser.post(URL, registration_form(), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.json()
    missing_token = browser.post(URL, registration_form("2.0.0"))
    assert missing_token.status_code == 403
    assert not ModelVersion.objects.filter(version="2.0.0").exists()


# --- reading ----------------------------------------------------------------------------------


@pytest.fixture
def three_versions(data_scientist, churn_model):

    v1 = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                 meta=helpers.metadata(metrics={"accuracy": 0.70}))
    helpers.register_direct("churn_prediction", "1.10.0", actor=data_scientist,
                            meta=helpers.metadata(metrics={"accuracy": 0.90}, tags=["xgb"]))
    helpers.register_direct("churn_prediction", "1.9.0-rc.1", actor=data_scientist,
                            meta=helpers.metadata(metrics={"accuracy": 0.85}))
    helpers.force_stage(v1, "production")
    return v1


def test_versions_list_highest_version_first(api, viewer, three_versions):
    response = api(viewer).get(URL)
    assert response.status_code == 200
    assert [v["version"] for v in response.json()["results"]] == ["1.10.0", "1.9.0-rc.1", "1.0.0"]


def test_versions_filter_by_stage_tag_and_metric(api, viewer, three_versions):
    client = api(viewer)

    def versions(query):
        response = client.get(URL + query)
        assert response.status_code == 200, response.json()
        return [v["version"] for v in response.json()["results"]]

    assert versions("?stage=production") == ["1.0.0"]
    assert versions("?stage=experiment&ordering=version") == ["1.9.0-rc.1", "1.10.0"]
    assert versions("?tag=XGB") == ["1.10.0"]
    assert versions("?metric_min=accuracy:0.8") == ["1.10.0", "1.9.0-rc.1"]
    assert versions("?metric_max=accuracy:0.85") == ["1.9.0-rc.1", "1.0.0"]
    assert versions("?metric_min=accuracy:0.8&metric_max=accuracy:0.86") == ["1.9.0-rc.1"]
    assert versions("?framework=onnx") == []
    assert versions("?created_after=2000-01-01T00:00:00Z") == ["1.10.0", "1.9.0-rc.1", "1.0.0"]
    assert versions("?created_before=2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("?metric_min=accuracy", "metric_min"), ("?metric_min=acc-uracy:1", "metric_min"),
     ("?stage=deployed", "stage"), ("?ordering=secret", "ordering"),
     ("?created_after=yesterday", "created_after")],
)
def test_bad_filters_are_named(api, viewer, three_versions, query, field):
    response = api(viewer).get(URL + query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_the_list_uses_the_same_number_of_queries_for_any_page_size(
    api, viewer, data_scientist, churn_model
):
    for minor in range(12):
        helpers.register_direct("churn_prediction", f"1.{minor}.0", actor=data_scientist)
    client = api(viewer)

    def count(page_size):
        with helpers.QueryCount() as queries:
            response = client.get(f"{URL}?page_size={page_size}")
        assert response.status_code == 200
        assert len(response.json()["results"]) == page_size
        return len(queries)

    assert count(2) == count(12) > 0
    with helpers.QueryCount() as small:
        api(viewer).get("/api/v1/versions/?page_size=1")
    with helpers.QueryCount() as large:
        api(viewer).get("/api/v1/versions/?page_size=12")
    assert len(small) == len(large) > 0


def test_the_model_list_uses_the_same_number_of_queries_for_any_page_size(
    api, viewer, data_scientist
):
    for index in range(6):
        helpers.create_model(owner=data_scientist, name=f"model_{index}")
    with helpers.QueryCount() as small:
        assert len(api(viewer).get("/api/v1/models/?page_size=1").json()["results"]) == 1
    with helpers.QueryCount() as large:
        assert len(api(viewer).get("/api/v1/models/?page_size=6").json()["results"]) == 6
    assert len(small) == len(large) > 0


def test_pagination_pages_through_every_version(api, viewer, data_scientist, churn_model):
    for patch in range(5):
        helpers.register_direct("churn_prediction", f"2.0.{patch}", actor=data_scientist)
    first = api(viewer).get(URL + "?page_size=2").json()
    assert first["count"] == 5
    assert [v["version"] for v in first["results"]] == ["2.0.4", "2.0.3"]
    third = api(viewer).get(first["next"].replace("http://testserver", "")).json()
    third = api(viewer).get(third["next"].replace("http://testserver", "")).json()
    assert [v["version"] for v in third["results"]] == ["2.0.0"]
    assert third["next"] is None


def test_a_version_detail_shows_stage_metrics_and_checksum(api, viewer, three_versions):
    response = api(viewer).get(URL + "1.0.0/")
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "production"
    assert body["metrics"] == {"accuracy": 0.70}
    assert body["sha256"] == helpers.sha256(helpers.sklearn_bytes())
    assert api(viewer).get(URL + "9.9.9/").status_code == 404


def test_a_file_downloads_as_a_stream_with_its_checksum(api, viewer, three_versions):
    response = api(viewer).get(URL + "1.0.0/files/model.joblib")
    assert response.status_code == 200
    assert response.streaming
    data = b"".join(response.streaming_content)
    assert data == helpers.sklearn_bytes()
    assert response["X-Checksum-SHA256"] == helpers.sha256(data)
    assert response["Content-Length"] == str(len(data))
    assert "attachment" in response["Content-Disposition"]


@pytest.mark.parametrize(
    "filename", ["metadata.json", "..%2F..%2Fconfig%2Fsettings.py", "nothing.pkl", "%2Fetc%2Fpasswd"]
)
def test_only_registered_files_can_be_downloaded(api, viewer, three_versions, filename):
    response = api(viewer).get(URL + f"1.0.0/files/{filename}")
    assert response.status_code == 404


def test_no_response_exposes_a_server_path(api, data_scientist, three_versions, store_root,
                                           settings):
    client = api(data_scientist)
    responses = [
        client.get(URL), client.get(URL + "1.0.0/"), client.get("/api/v1/models/"),
        client.get("/api/v1/versions/"), register(client, "churn_prediction", "1.0.0"),
        register(client, "churn_prediction", "3.0.0", files=[upload("../x.pkl", b"x")]),
        client.get(URL + "1.0.0/files/nothing.pkl"),
    ]
    for response in responses:
        text = response.content.decode()
        assert str(store_root) not in text
        assert str(settings.BASE_DIR) not in text
        assert "/tmp" not in text


def test_a_missing_file_on_disk_is_reported_without_a_path(api, viewer, three_versions,
                                                            store_root):
    (Path(store_root) / "production/churn_prediction/v1.0.0/model.joblib").unlink()
    response = api(viewer).get(URL + "1.0.0/files/model.joblib")
    assert response.status_code == 409
    assert str(store_root) not in response.content.decode()
    assert response.json()["code"] == "integrity_failed"
    assert "failed its sha256 check" in response.json()["detail"]


# --- editing ----------------------------------------------------------------------------------


def test_a_data_scientist_edits_description_and_tags(api, data_scientist, three_versions,
                                                     store_root):
    response = api(data_scientist).patch(
        URL + "1.10.0/", {"description": "Retrained on November data", "tags": ["xgb", "nov"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["tags"] == ["nov", "xgb"]
    written = json.loads(
        (Path(store_root) / "experiments/churn_prediction/v1.10.0/metadata.json").read_text()
    )
    assert written["description"] == "Retrained on November data"
    event = AuditEvent.objects.filter(action="version.updated").get()
    assert json.loads(event.before) == {"description": "Churn model", "tags": ["xgb"]}
    assert json.loads(event.after) == {
        "description": "Retrained on November data", "tags": ["nov", "xgb"],
    }


@pytest.mark.parametrize(
    "change",
    [{"stage": "production"}, {"sha256": "0" * 64}, {"created_by": "ada"},
     {"path": "/etc/passwd"}, {"files": []}, {"metrics": {"accuracy": 1.0}},
     {"description": "ok", "stage": "production"}],
)
def test_a_patch_of_a_read_only_field_is_refused_and_changes_nothing(
    api, data_scientist, three_versions, change
):
    with Unchanged():
        response = api(data_scientist).patch(URL + "1.0.0/", change, format="json")
    assert response.status_code == 400
    field = next(key for key in change if key != "description")
    assert field in _errors(response)
    assert ModelVersion.objects.get(version="1.0.0").description == "Churn model"


def test_a_viewer_cannot_edit_a_version(api, viewer, three_versions):
    with Unchanged():
        response = api(viewer).patch(URL + "1.0.0/", {"description": "x"}, format="json")
    assert response.status_code == 403


# --- more bad input: form fields, JSON constants, NUL, oversized parts, interrupted uploads ---


@pytest.mark.parametrize(("field", "value"), [("stage", "production"), ("stage", "bogus"),
                                              ("created_by", "ada"), ("path", "/tmp/x")])
def test_a_registration_with_an_unknown_form_field_is_refused(
    api, data_scientist, churn_model, field, value
):
    form = registration_form(**{field: value})
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400, response.json()
    assert field in _errors(response)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_anywhere_in_the_metadata_are_refused(
    api, data_scientist, churn_model, constant
):
    form = registration_form()
    form["metadata"] = json.dumps(helpers.metadata()).replace(
        '"hyperparameters": {', f'"hyperparameters": {{"alpha": {constant}, ')
    assert constant in form["metadata"]
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400, response.json()
    assert constant in _errors(response)["metadata"][0]


def test_a_nul_character_in_the_metadata_is_refused(api, data_scientist, churn_model):
    form = registration_form()
    form["metadata"] = json.dumps(helpers.metadata(model_architecture={"type": "a\x00b"}))
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 400
    assert "NUL" in _errors(response)["metadata"][0]


@pytest.mark.parametrize("path", [
    "/api/v1/models/churn%00prediction/",
    "/api/v1/models/churn_prediction/versions/1.0.0%00/",
    "/api/v1/models/churn_prediction/versions/1.0.0/files/model%00.joblib",
    "/api/v1/models/?name=churn%00",
    "/api/v1/versions/?model=a%00b",
])
def test_a_nul_character_in_the_url_is_a_bad_request_not_a_server_error(
    api, viewer, three_versions, path
):
    response = api(viewer).get(path)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_governance_keys_in_uploaded_metadata_are_not_stored(api, data_scientist, churn_model,
                                                             store_root):
    lifecycle = {"retired_by": "ada", "replaced_by": "9.9.9", "deployed_at": "2020-01-01",
                 "metrics_comparison": {}, "requested_by": "ada", "deployed_by": "ada",
                 "approved_by": [{"by": "april", "at": "2020-01-01", "comment": "fine"}],
                 "retirement_approved_by": [{"by": "april"}]}
    forged = helpers.metadata(**lifecycle, model_architecture={"type": "kept"})
    assert register(api(data_scientist), "churn_prediction", meta=forged).status_code == 201
    written = json.loads(
        (Path(store_root) / "experiments/churn_prediction/v1.0.0/metadata.json").read_text())
    assert not set(lifecycle) & set(written)
    assert written["model_architecture"] == {"type": "kept"}


def test_a_metadata_field_over_the_form_limit_is_too_large(api, data_scientist, churn_model,
                                                           settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    form = registration_form()
    form["metadata"] = json.dumps(helpers.metadata(description="x" * 20_000))
    with Unchanged():
        response = api(data_scientist).post(URL, form, format="multipart")
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "too_large"


def test_too_many_file_parts_is_a_bad_request(api, data_scientist, churn_model, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [("file", f"f{i}.bin", b"x") for i in range(5)]
    with Unchanged():
        response = helpers.register_raw(api(data_scientist), "churn_prediction", files)
    assert response.status_code == 400, response.content
    assert "refused" in response.json()["detail"]


def test_an_upload_cut_off_mid_file_leaves_no_file_and_no_writer_behind(
    api, data_scientist, churn_model, store_root
):
    import io
    import threading

    body, content_type = helpers.raw_multipart(
        {"version": "1.0.0", "framework": "sklearn"},
        [("file", "model.joblib", b"x" * 3_000_000)])

    class ConnectionReset(io.BytesIO):
        """The client goes away half-way through the file."""

        def read(self, size=-1):
            if self.tell() > len(body) // 2:
                raise ConnectionResetError("the client went away")
            return super().read(size if 0 < size < 65536 else 65536)

    with Unchanged():
        response = api(data_scientist).post(URL, body, content_type=content_type,
                                            **{"wsgi.input": ConnectionReset(body)})
    assert response.status_code == 400
    assert response.json()["code"] == "incomplete_body"
    assert list((Path(store_root) / ".incoming").iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "hashing-writer"]


def test_registration_never_unpickles_the_upload(api, data_scientist, churn_model, tmp_path):
    """A pickle is code: storing one must not run it (validation runs it, later, sandboxed).
    This test does not commit, so the validation queued on commit never starts here."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "the pickle ran"))

    response = register(api(data_scientist), "churn_prediction",
                        files=[upload("model.pkl", pickle.dumps(Payload()))])
    assert response.status_code == 201, response.json()
    assert not marker.exists()


def test_another_data_scientist_cannot_edit_someone_elses_version(
    api, other_data_scientist, three_versions
):
    with Unchanged():
        response = api(other_data_scientist).patch(URL + "1.0.0/", {"description": "x"},
                                                   format="json")
    assert response.status_code == 403
    assert ModelVersion.objects.get(version="1.0.0").description == "Churn model"


def test_the_json_endpoints_take_no_file_uploads(api, data_scientist, churn_model):
    with Unchanged():
        response = api(data_scientist).patch(
            "/api/v1/models/churn_prediction/", {"description": "x",
                                                 "f": upload("big.bin", b"x" * 1000)},
            format="multipart")
    assert response.status_code == 415


def test_the_fast_representation_matches_the_declared_fields(api, viewer, data_scientist,
                                                            churn_model):
    from rest_framework import serializers
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from registry import selectors
    from registry.serializers import VersionOutputSerializer

    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    ModelVersion.objects.filter(version="1.0.0").update(tags=["b", "a"], description="d\u2028")
    request = Request(APIRequestFactory().get("/", HTTP_HOST="localhost"))
    for found in (selectors.version_get("churn_prediction", "1.0.0", user=viewer),
                  selectors.version_listing(user=viewer).get(version="1.0.0")):
        serializer = VersionOutputSerializer(found, context={"request": request})
        declared = serializers.ModelSerializer.to_representation(serializer, found)
        assert serializer.data == declared
        assert list(serializer.data) == list(declared)


def test_a_version_is_read_in_three_queries_who_asks_the_row_and_its_files(
        api, viewer, data_scientist, churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    client = api(viewer)
    with helpers.QueryCount() as queries:
        response = client.get(URL + "1.0.0/")
    assert response.status_code == 200
    assert len(queries) == 3, queries.statements


def test_datetimes_are_written_as_drf_writes_them_in_any_time_zone(settings):
    import datetime

    from django.utils import timezone
    from rest_framework import serializers

    from registry.serializers import _datetime

    moments = [datetime.datetime(2026, 12, 2, 15, 0, 1, 250, tzinfo=datetime.UTC),
               datetime.datetime(2026, 12, 2, 15, 0, tzinfo=datetime.UTC),
               datetime.datetime(2026, 6, 2, 15, 0, tzinfo=datetime.timezone(
                   datetime.timedelta(hours=2)))]
    for zone in ("UTC", "Europe/Paris"):
        with timezone.override(zone):
            for moment in moments:
                assert _datetime(moment) == serializers.DateTimeField().to_representation(moment)
